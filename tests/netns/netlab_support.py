"""Helpers of the namespace scenarios: map a caller's outcome to what the far end recorded.

Imported as `import netlab_support` (pytest puts this directory on sys.path; no package).

A caller outcome (`b2bua call --json`) carries leg A's Call-ID; the B2BUA's CDR maps it
to leg B's Call-ID, which is what the ECRC or the PSTN gateway recorded (`call_id`).
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable, Iterable

import pytest

from b2bua.netlab.lab import NetLab
from b2bua.netlab.topology import NetlabError, require_root

FAR_ENDS = ("ecrc-primary", "ecrc-secondary", "pstn")


def root_or_skip() -> None:
    """Skip when not root (namespaces need it; CI runs as root); fail when root but `ip` is missing."""
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root (CI runs the netns tests as root)")
    try:
        require_root()
    except NetlabError as error:
        pytest.fail(str(error))


def outcome_lines(outcomes: Iterable[dict]) -> str:
    return "\n".join(f"  {o.get('index')}: {o.get('status')} {o.get('reason')} error={o.get('error')}"
                     for o in outcomes)


def last_ids(lab: NetLab) -> dict[str, int]:
    """The newest record id of each far end: records after a scenario starts have larger ids."""
    return {role: max((r["id"] for r in lab.records(role)), default=0) for role in FAR_ENDS}


def new_records(lab: NetLab, since: dict[str, int]) -> dict[str, list[dict]]:
    return {role: [r for r in lab.records(role) if r["id"] > since.get(role, 0)] for role in FAR_ENDS}


def leg_b_call_id(lab: NetLab, outcome: dict) -> str:
    cdr = lab.cdr_of(outcome)
    assert cdr is not None, f"no CDR for caller Call-ID {outcome['call_id']} (call {outcome.get('index')})"
    assert cdr["b_call_id"], f"CDR without leg B: {cdr}"
    return cdr["b_call_id"]


def where_recorded(records: dict[str, list[dict]], call_id: str) -> list[str]:
    """The far ends that recorded leg B Call-ID `call_id`, once per record."""
    return [role for role, items in records.items() for r in items if r["call_id"] == call_id]


def duplicates(items: list[dict]) -> dict[str, int]:
    counts = Counter(r["call_id"] for r in items)
    return {call_id: n for call_id, n in counts.items() if n > 1}


def wait_until(condition: Callable[[], object], timeout: float, step: float = 0.2) -> object:
    """Poll `condition` until it returns something true or `timeout` passes (returns the
    last value, possibly false)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(step)


def link_events(lab: NetLab, link: str, up: bool) -> list[dict]:
    """B2BUA log events saying link `link` is now up/down, whatever the event is called."""
    found = []
    for event in lab.b2bua_events():
        if link not in (event.get("link"), event.get("name")):
            continue
        state = event.get("up")
        if state is None and isinstance(event.get("state"), str):
            state = event["state"] == "up"
        if state is up:
            found.append(event)
    return found
