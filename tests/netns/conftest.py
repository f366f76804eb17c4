"""Fixtures of the namespace lab tests (tests/netns, marker `netns`; root only).

`netlab` builds the topology and starts the ECRCs and the PSTN gateway once per session;
each scenario (re)starts the B2BUA with its own variant of the configuration. Teardown is
the fixture's finalizer, plus NetLab's own atexit and SIGTERM/SIGHUP handling, plus
pytest's session teardown on Ctrl-C. `test_netlab_teardown.py::test_the_suite_leaves_nothing_behind`
is moved right after the last test that uses the lab: it closes the lab itself and checks
that nothing of it remains.

Every test here is bounded: the `netns_time_limit` fixture arms a SIGALRM for each test
(NETNS_TEST_LIMIT_S, default 240 s), on top of the bounds of every command and wait.
"""

from __future__ import annotations

import os
import signal

import pytest

from b2bua.netlab.lab import NetLab
from netlab_support import root_or_skip

TEST_LIMIT_S = float(os.environ.get("NETNS_TEST_LIMIT_S", "240"))
LAST = "test_the_suite_leaves_nothing_behind"


@pytest.fixture(scope="session")
def netlab(tmp_path_factory: pytest.TempPathFactory):
    root_or_skip()
    lab = NetLab(tmp_path_factory.mktemp("netlab"))
    lab.start()  # tears down what it built if it fails
    try:
        yield lab
    finally:
        left = lab.close()
        assert not left, f"left behind by the lab: {left}"


@pytest.fixture(autouse=True)
def netns_time_limit(request: pytest.FixtureRequest):
    """Fail a test that runs longer than TEST_LIMIT_S (the teardown still runs)."""

    def expired(signum: int, frame: object) -> None:
        raise TimeoutError(f"{request.node.name} ran longer than {TEST_LIMIT_S:g} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, TEST_LIMIT_S)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run the leftover check right after the last test that uses the session's lab."""
    last = [item for item in items if item.name == LAST]
    if not last:
        return
    for item in last:
        items.remove(item)
    users = [index for index, item in enumerate(items) if "netlab" in getattr(item, "fixturenames", ())]
    position = users[-1] + 1 if users else len(items)
    items[position:position] = last
