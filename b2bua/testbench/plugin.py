"""pytest plugin of the E9-1-1 test bench, registered through the `pytest11` entry point
(`e911_b2bua`): installing the package makes these fixtures available to any test suite.

Fixtures (all async, function scope, on free loopback ports, files under `tmp_path`):

    ecrc               one mock ECRC ("ecrc"): `EcrcUnderTest`
    ecrc_factory       `await ecrc_factory("primary", answer="503", tls=False)` -> EcrcUnderTest
    pstn_gateway       the branch PSTN gateway ("pstn"): `EcrcUnderTest` (same handle)
    b2bua_from_config  `await b2bua_from_config(path_or_dict, trunks={"ecrc-primary": ecrc, ...})`
                       -> `B2buaUnderTest`: your configuration, listeners moved to free ports,
                       the named trunks pointed at the bench's UAs
    lab                the whole lab of configs/lab.toml on free ports: `lab.Lab`
    caller             a started `caller.Caller` (TLS verification on)
    caller_factory     `await caller_factory(ca_file=..., tls_verify=False)` -> Caller

Helpers to assert what an ECRC recorded:

    assert_recorded(record, outcome, ecrc="primary", location="byte-exact", verdict=...)
    assert_location_received(record, outcome)      # the PIDF-LO arrived byte for byte
    assert_no_location(record)                     # nothing to route by: ECRC must ask

Nothing of the bench is imported until a fixture runs, so a test session that uses none
of this pays nothing for the plugin. Async fixtures are declared with
`pytest_asyncio.fixture`, so they work in pytest-asyncio's strict mode too (mark your
tests `@pytest.mark.asyncio` there).
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest_asyncio

__all__ = [
    "B2buaUnderTest", "EcrcUnderTest", "assert_location_received", "assert_no_location", "assert_recorded",
    "config_on_free_ports",
]


# -- assertion helpers -------------------------------------------------------------------------------


def assert_recorded(record: dict | None, outcome: Any = None, **expected: Any) -> dict:
    """Fail the test, naming every difference, unless `record` meets the expectation.
    Keywords (see `scenarios.record_problems`): ecrc, verdict (one or a tuple),
    disposition, location ("byte-exact" | "absent"), geolocation (bool), errors (bool),
    warnings (bool), is_test (bool), readback_contains (strings). Returns the record."""
    __tracebackhide__ = True
    from .scenarios import record_problems

    problems = record_problems(record, outcome, **expected)
    if problems:
        raise AssertionError("the ECRC record differs from the expectation:\n  " + "\n  ".join(problems))
    assert record is not None
    return record


def assert_location_received(record: dict | None, outcome: Any) -> dict:
    """The PIDF-LO the ECRC read is, byte for byte, the one the caller sent (sha256)."""
    __tracebackhide__ = True
    return assert_recorded(record, outcome, location="byte-exact")


def assert_no_location(record: dict | None) -> dict:
    """No PIDF-LO arrived: the verdict is no_location and the call-taker must ask."""
    __tracebackhide__ = True
    return assert_recorded(record, None, location="absent", verdict="no_location", disposition="ecrc_must_ask")


# -- a bench UA under test -------------------------------------------------------------------------------


@dataclass
class EcrcUnderTest:
    """A mock ECRC (or the PSTN gateway) started by a fixture: its SIP side, its HTTP API
    and its call store (one SQLite file of its own)."""

    name: str
    running: Any  # ecrc.RunningUas
    store: Any  # store.CallStore
    tls: bool = False

    @property
    def uas(self) -> Any:
        return self.running.uas

    @property
    def url(self) -> str:
        """The HTTP API (docs/ecrc-api.md), e.g. `http://127.0.0.1:41234`."""
        return self.running.api.url

    def address(self, transport: str = "udp") -> Any:
        """The Peer to send to (`udp`, `tcp`, and `tls` when started with tls=True)."""
        from ..sip.transaction import Peer

        host, port = self.running.sip_address(transport)
        return Peer(transport, host, port)

    @property
    def host_port(self) -> str:
        host, port = self.running.sip_address("udp")
        return f"{host}:{port}"

    def set_answer(self, answer: str = "200", *, ring_ms: int = 0, bye_after_s: float | None = None) -> None:
        """How it answers from now on: 200, 486, 503, drop, ring, bye-after (control.py)."""
        from .control import AnswerBehaviour

        self.uas.set_behaviour(AnswerBehaviour(answer, ring_ms, bye_after_s))

    def records(self, **filters: Any) -> list[dict]:
        """Its records, oldest first (filters as `CallStore.list`: since, verdict, call_id)."""
        return list(reversed(self.store.list(limit=None, **filters)))

    def last_record(self) -> dict | None:
        found = self.store.list(limit=1)
        return found[0] if found else None

    def record_of(self, outcome: Any) -> dict | None:
        """The record of a call the caller placed straight to this UA (same Call-ID)."""
        found = self.store.list(call_id=outcome.call_id, limit=1)
        return found[0] if found else None


@dataclass
class B2buaUnderTest:
    """A B2BUA started from a configuration by `b2bua_from_config`."""

    running: Any  # lab.RunningB2bua
    trunks: dict[str, Any] = field(default_factory=dict)  # trunk name -> EcrcUnderTest

    @property
    def config(self) -> Any:
        return self.running.config

    @property
    def node(self) -> Any:
        return self.running.node

    @property
    def cdrs(self) -> list[dict]:
        return self.running.cdrs

    def address(self, profile: str | None = None, transport: str = "udp") -> Any:
        """Where a caller reaches `profile` (default: the first profile)."""
        return self.running.address(profile, transport)

    async def cdr_for(self, outcome_or_call_id: Any, timeout: float = 5.0) -> dict | None:
        call_id = getattr(outcome_or_call_id, "call_id", outcome_or_call_id)
        return await self.running.cdr_for(call_id, timeout)

    async def records_of(self, outcome: Any) -> list[dict]:
        """What every bench UA behind the trunks recorded of one call, oldest first."""
        cdr = await self.cdr_for(outcome)
        if not cdr or not cdr.get("b_call_id"):
            return []
        records: dict[tuple[str, int], dict] = {}
        for handle in self.trunks.values():
            for record in handle.records(call_id=cdr["b_call_id"]):
                records[(str(handle.store.path), record["id"])] = record
        return sorted(records.values(), key=lambda record: (record.get("arrived_at") or "", record.get("id") or 0))

    async def record_of(self, outcome: Any) -> dict | None:
        """The record of the ECRC that answered the call (the CDR's route taken)."""
        from .lab import answering_record

        return answering_record(await self.records_of(outcome), await self.cdr_for(outcome))


# -- building blocks -----------------------------------------------------------------------------------


def _free_port() -> int:
    from .sipp import free_port

    return free_port()


async def start_ecrc(name: str, directory: Path, *, answer: str = "200", ring_ms: int = 0, tls: bool = False,
                     pstn: bool = False, test_numbers: tuple[str, ...] = ("933",)) -> EcrcUnderTest:
    """A mock ECRC (or, with pstn=True, a PSTN gateway) on one free loopback port for UDP
    and TCP (and another for TLS), its HTTP API on a free port, its records in `directory`."""
    from .control import AnswerBehaviour
    from .ecrc import MockEcrc, start_uas
    from .store import CallStore

    directory.mkdir(parents=True, exist_ok=True)
    store = CallStore(directory / f"{name}.sqlite")
    last_error: OSError | None = None
    for _ in range(10):  # a free port may be taken between finding and binding it
        behaviour = AnswerBehaviour(answer, ring_ms)
        if pstn:
            from .pstn import PstnGateway

            uas: Any = PstnGateway(name, store, behaviour, test_numbers=test_numbers)
        else:
            uas = MockEcrc(name, store, behaviour, test_numbers=test_numbers)
        port = _free_port()
        listen = [f"udp:127.0.0.1:{port}", f"tcp:127.0.0.1:{port}"]
        if tls:
            listen.append(f"tls:127.0.0.1:{_free_port()}")
        try:
            running = await start_uas(uas, store, listen, f"127.0.0.1:{_free_port()}",
                                      tls_cert=str(directory / "tls" / "cert.pem") if tls else None,
                                      tls_key=str(directory / "tls" / "key.pem") if tls else None)
        except OSError as error:
            last_error = error
            await uas.stack.close()
            continue
        return EcrcUnderTest(name, running, store, tls)
    store.close()
    raise OSError(f"could not start {name} on a free port: {last_error}")


def config_on_free_ports(data: Mapping[str, Any], trunks: Mapping[str, Any], workdir: Path) -> Any:
    """A B2BUA configuration for a test: `data` (the TOML of your configuration) with every
    listener moved to a free loopback port (UDP and TCP of one profile keep sharing a
    port), each trunk named in `trunks` pointed at a bench UA (an `EcrcUnderTest`) or a
    `host:port`, the CDR file and a missing TLS certificate in `workdir`."""
    from ..config import config_from_dict, parse_listen

    data = copy.deepcopy(dict(data))
    unknown = set(trunks) - {trunk.get("name") for trunk in data.get("trunk") or []}
    if unknown:
        raise KeyError(f"no trunk named {', '.join(sorted(unknown))} in the configuration")
    for profile in data.get("profile") or []:
        shared = _free_port()
        moved = []
        for item in profile.get("listen") or []:
            spec = parse_listen(item)
            port = _free_port() if spec.transport == "tls" else shared
            moved.append(f"{spec.transport}:127.0.0.1:{port}")
        profile["listen"] = moved
        profile.pop("advertised_host", None)
    for trunk in data.get("trunk") or []:
        target = trunks.get(trunk.get("name"))
        if target is None:
            continue
        if isinstance(target, EcrcUnderTest):
            trunk["address"] = target.host_port
            if trunk.get("transports") == ["tls"] and not target.tls:
                trunk["transports"] = ["udp", "tcp"]
        else:
            trunk["address"] = str(target)
        trunk.pop("host_header", None)
    node = data.setdefault("node", {})
    node["cdr_path"] = str(workdir / "cdr.jsonl")
    tls = data.setdefault("tls", {})
    if not (tls.get("cert_file") and Path(tls["cert_file"]).exists() and tls.get("key_file")
            and Path(tls["key_file"]).exists()):
        tls["cert_file"] = str(workdir / "tls" / "cert.pem")
        tls["key_file"] = str(workdir / "tls" / "key.pem")
        tls["self_signed_if_missing"] = True
    return config_from_dict(data, "test configuration")


def _load(config: str | Path | Mapping[str, Any]) -> dict:
    if isinstance(config, Mapping):
        return dict(config)
    from .lab import load_lab_data

    return load_lab_data(config)


# -- fixtures ------------------------------------------------------------------------------------------


@pytest_asyncio.fixture
async def ecrc_factory(tmp_path: Path) -> AsyncIterator[Any]:
    """`await ecrc_factory(name="ecrc", answer="200", ring_ms=0, tls=False)`: start a mock ECRC."""
    started: list[EcrcUnderTest] = []

    async def start(name: str = "ecrc", *, answer: str = "200", ring_ms: int = 0, tls: bool = False) -> EcrcUnderTest:
        handle = await start_ecrc(name, tmp_path / "bench" / name, answer=answer, ring_ms=ring_ms, tls=tls)
        started.append(handle)
        return handle

    yield start
    await _close_all(started)


async def _close_all(handles: list[EcrcUnderTest]) -> None:
    for handle in reversed(handles):
        try:
            await asyncio.wait_for(handle.running.close(), 10)
        finally:
            handle.store.close()


@pytest_asyncio.fixture
async def ecrc(ecrc_factory: Any) -> EcrcUnderTest:
    """One mock ECRC named "ecrc", answering 200."""
    return await ecrc_factory("ecrc")


@pytest_asyncio.fixture
async def pstn_gateway(tmp_path: Path) -> AsyncIterator[EcrcUnderTest]:
    """The branch PSTN gateway ("pstn"): records calls as the PSTN side carries them."""
    handle = await start_ecrc("pstn", tmp_path / "bench" / "pstn", pstn=True)
    yield handle
    await _close_all([handle])


@pytest_asyncio.fixture
async def b2bua_from_config(tmp_path: Path) -> AsyncIterator[Any]:
    """`await b2bua_from_config(path_or_toml_dict, trunks={"ecrc-primary": ecrc}, probe=True)`."""
    started: list[B2buaUnderTest] = []

    async def start(config: str | Path | Mapping[str, Any], *, trunks: Mapping[str, Any] | None = None,
                    probe: bool = True) -> B2buaUnderTest:
        from .lab import RunningB2bua

        workdir = tmp_path / f"b2bua-{len(started) + 1}"
        workdir.mkdir(parents=True, exist_ok=True)
        trunks = dict(trunks or {})
        running = RunningB2bua(config_on_free_ports(_load(config), trunks, workdir))
        handle = B2buaUnderTest(running, {name: t for name, t in trunks.items() if isinstance(t, EcrcUnderTest)})
        started.append(handle)
        await running.start(probe=probe)
        return handle

    yield start
    for handle in reversed(started):
        await asyncio.wait_for(handle.running.stop("test over"), 10)


@pytest_asyncio.fixture
async def lab(tmp_path: Path) -> AsyncIterator[Any]:
    """The whole lab of configs/lab.toml (certified, non-certified and strip-variant
    profiles, both ECRCs, the PSTN gateway) on free loopback ports."""
    from .lab import Lab

    the_lab = Lab(free_ports=True, workdir=tmp_path / "lab")
    await the_lab.start()
    yield the_lab
    await asyncio.wait_for(the_lab.stop(), 15)


@pytest_asyncio.fixture
async def caller_factory() -> AsyncIterator[Any]:
    """`await caller_factory(ca_file=None, tls_verify=True)`: a started Caller."""
    started: list[Any] = []

    async def start(**options: Any) -> Any:
        from .caller import Caller

        caller = Caller(**options)
        started.append(caller)
        return await caller.start()

    yield start
    for caller in started:
        await caller.close()


@pytest_asyncio.fixture
async def caller(caller_factory: Any) -> Any:
    """A started Caller: `outcome = await caller.call(peer, to="911", style="lync")`."""
    return await caller_factory()
