"""The embedded lab (`b2bua lab`): every part of the E9-1-1 path in one process, on loopback.

From `configs/lab.toml` (see the drawing at its top) one process starts:

    certified SBC profile      127.0.0.1:5060 udp/tcp, 5061 tls   location policy pass
    non-certified SBC profile  127.0.0.1:5062 udp/tcp             location policy strip (full)
    one strip-variant profile per partial strip, 127.0.0.1:5063..5067 udp/tcp
        (keep-geolocation, drop-header, drop-part-headers, stale-content-length, keep-multipart)
    primary ECRC 127.0.0.1:5070 (HTTP API 127.0.0.1:8070), secondary ECRC 5072 (8072)
    branch PSTN gateway 127.0.0.1:5080 (HTTP API 127.0.0.1:8080)
    branch ELIN gateway 127.0.0.1:5082 (HTTP API 127.0.0.1:8082), when a site has one
    the B2BUA's admin API http://127.0.0.1:8060 (links, trunks, calls), when configured

and then runs the scenario matrix (`scenarios.py`) with the caller, prints a table, writes
`lab-report.json` and `lab-report.html`, and exits 0 only when every scenario met its
expectation. `b2bua lab --serve` starts the same and keeps it running.

The topology is a function of a port map (`LabPorts`): the fixed ports of the
configuration by default, free loopback ports with `--free-ports` (the pytest plugin's
`lab` fixture, the tests). The B2BUA configuration is `configs/lab.toml` with the ports
substituted (`lab_config`), validated by `config_from_dict` like any other.

Why extra profiles for the strip variants (rather than restarting the non-certified
profile per scenario): each variant is then an address a real phone or SIPp can call while
`--serve` runs, and no scenario depends on another's restart. The variant profiles are the
non-certified profile with only `strip_variant` changed.

Roles are read from the configuration, not from names: the certified profile is the first
with location policy `pass`, the non-certified one the first with `strip`; primary and
secondary ECRC are the first two trunks of the emergency trunk group; the PSTN gateway is
the first trunk of kind `pstn` that is not an ELIN gateway; the ELIN gateway is the first
trunk of kind `pstn` in a trunk group of a site with `elin_gateway = true`. An optional
`[lab]` table may set `http_ports` (`{primary = 8070, secondary = 8072, pstn = 8080,
elin = 8082}`) and `variant_ports` (`{keep-geolocation = 5063, ...}`).

Sites (`[[site]]`, `[[link]]`): the branch scenarios find their branch by what it is
(`branch_roles`): `wan` a branch whose emergency routes end at a plain PSTN gateway,
`elin` a branch with an ELIN gateway, `block` / `pstn` / `exempt` a branch with that CAC
emergency policy and a link with a call limit. Calls from a branch are placed from its
first `members.sources` address (a loopback address such as 127.0.0.11).
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import shutil
import sys
import tempfile
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from ..lifecycle import until_stopped
from ..config import B2buaConfig, ConfigError, config_from_dict, parse_host_port, parse_listen
from ..engine.cdr import CdrWriter
from ..sip.transaction import Peer

log = structlog.get_logger("b2bua.lab")

LAB_CONFIG = "configs/lab.toml"
VARIANTS = ("keep-geolocation", "drop-header", "drop-part-headers", "stale-content-length", "keep-multipart")
DEFAULT_HTTP_PORTS = {"primary": 8070, "secondary": 8072, "pstn": 8080, "elin": 8082}
DEFAULT_ADMIN_PORT = 8060
DEFAULT_VARIANT_PORTS = dict(zip(VARIANTS, range(5063, 5068)))
LAB_DB = "lab-ecrc.sqlite"
LAB_PSTN_DB = "lab-pstn.sqlite"


class LabError(ValueError):
    """The configuration cannot be made into a lab (a role is missing)."""


def default_config_path() -> Path:
    """`configs/lab.toml` of the working directory, else the one next to the package
    (an editable install), so the pytest plugin finds it from any project."""
    here = Path(LAB_CONFIG)
    if here.exists():
        return here
    return Path(__file__).resolve().parents[2] / LAB_CONFIG


def load_lab_data(path: str | Path) -> dict:
    """The raw TOML of a lab configuration; ConfigError (exit 2) when unreadable."""
    path = Path(path)
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(str(path), [("(file)", str(path), error.strerror or str(error))]) from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(str(path), [("(syntax)", "", str(error))]) from None


# -- roles and ports ----------------------------------------------------------------------------


@dataclass(frozen=True)
class LabRoles:
    """Which profile and trunk plays which part (indexes into the configuration's lists)."""

    certified: int
    noncertified: int
    primary: int
    secondary: int
    pstn: int | None
    primary_name: str
    secondary_name: str
    pstn_name: str | None
    elin: int | None = None
    elin_name: str | None = None

    @classmethod
    def of(cls, data: dict) -> LabRoles:
        profiles = data.get("profile") or []
        trunks = data.get("trunk") or []
        groups = {group.get("name"): group for group in data.get("trunk_group") or []}
        certified = next((i for i, p in enumerate(profiles) if p.get("location_policy", "pass") == "pass"), None)
        noncertified = next((i for i, p in enumerate(profiles) if p.get("location_policy") == "strip"), None)
        if certified is None:
            raise LabError("the lab needs a profile with location_policy = \"pass\" (the certified SBC)")
        if noncertified is None:
            raise LabError("the lab needs a profile with location_policy = \"strip\" (the non-certified SBC)")
        group = groups.get((data.get("emergency") or {}).get("trunk_group"))
        names = list((group or {}).get("trunks") or [])
        if len(names) < 2:
            raise LabError("the emergency trunk group needs two trunks (primary and secondary ECRC)")
        index = {trunk.get("name"): i for i, trunk in enumerate(trunks)}
        if names[0] not in index or names[1] not in index:
            raise LabError(f"emergency trunks {names[:2]} are not defined trunks")
        elin_groups = {name for site in data.get("site") or [] if site.get("elin_gateway")
                       for name in site.get("trunk_groups") or []}
        elin_trunks = [name for group in elin_groups for name in (groups.get(group) or {}).get("trunks") or []]
        elin = next((i for i, trunk in enumerate(trunks) if trunk.get("kind") == "pstn"
                     and trunk.get("name") in elin_trunks), None)
        pstn = next((i for i, trunk in enumerate(trunks) if trunk.get("kind") == "pstn" and i != elin), None)
        return cls(certified, noncertified, index[names[0]], index[names[1]], pstn, names[0], names[1],
                   trunks[pstn]["name"] if pstn is not None else None,
                   elin, trunks[elin]["name"] if elin is not None else None)


@dataclass
class LabPorts:
    """Every port of the lab. `LabPorts.fixed(data)`: the configuration's; `LabPorts.free()`:
    free loopback ports (tests)."""

    certified: int = 5060
    certified_tls: int = 5061
    noncertified: int = 5062
    primary: int = 5070
    secondary: int = 5072
    pstn: int = 5080
    primary_http: int = 8070
    secondary_http: int = 8072
    pstn_http: int = 8080
    variants: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_VARIANT_PORTS))
    elin: int = 5082
    elin_http: int = 8082
    admin: int = DEFAULT_ADMIN_PORT

    @classmethod
    def fixed(cls, data: dict) -> LabPorts:
        roles = LabRoles.of(data)
        profiles, trunks = data["profile"], data["trunk"]
        lab = data.get("lab") or {}
        http = {**DEFAULT_HTTP_PORTS, **(lab.get("http_ports") or {})}
        variants = {**DEFAULT_VARIANT_PORTS, **(lab.get("variant_ports") or {})}

        def listen_port(profile: dict, transports: tuple[str, ...], default: int) -> int:
            for item in profile.get("listen") or []:
                spec = parse_listen(item)
                if spec.transport in transports:
                    return spec.address.port
            return default

        certified = profiles[roles.certified]
        udp = listen_port(certified, ("udp", "tcp"), 5060)
        return cls(
            certified=udp,
            certified_tls=listen_port(certified, ("tls",), udp + 1),
            noncertified=listen_port(profiles[roles.noncertified], ("udp", "tcp"), 5062),
            primary=parse_host_port(trunks[roles.primary]["address"], 5060).port,
            secondary=parse_host_port(trunks[roles.secondary]["address"], 5060).port,
            pstn=parse_host_port(trunks[roles.pstn]["address"], 5060).port if roles.pstn is not None else 5080,
            primary_http=int(http["primary"]), secondary_http=int(http["secondary"]), pstn_http=int(http["pstn"]),
            variants={name: int(variants[name]) for name in VARIANTS},
            elin=parse_host_port(trunks[roles.elin]["address"], 5060).port if roles.elin is not None else 5082,
            elin_http=int(http["elin"]),
            admin=parse_host_port(data["admin"], allow_zero=True).port if data.get("admin") else DEFAULT_ADMIN_PORT,
        )

    @classmethod
    def free(cls) -> LabPorts:
        from .sipp import free_port

        taken: set[int] = set()

        def pick() -> int:
            for _ in range(100):
                port = free_port()
                if port not in taken:
                    taken.add(port)
                    return port
            raise OSError("no free loopback port")

        return cls(certified=pick(), certified_tls=pick(), noncertified=pick(), primary=pick(), secondary=pick(),
                   pstn=pick(), primary_http=pick(), secondary_http=pick(), pstn_http=pick(),
                   variants={name: pick() for name in VARIANTS}, elin=pick(), elin_http=pick(), admin=pick())

    def all(self) -> dict[str, int]:
        ports = {key: value for key, value in vars(self).items() if key != "variants"}
        ports.update({f"variant:{name}": port for name, port in self.variants.items()})
        return ports


def _with_port(item: str, port: int) -> str:
    spec = parse_listen(item)
    host = f"[{spec.address.host}]" if ":" in spec.address.host else spec.address.host
    return f"{spec.transport}:{host}:{port}"


def _with_address_port(address: str, port: int) -> str:
    parsed = parse_host_port(address, 5060)
    host = f"[{parsed.host}]" if ":" in parsed.host else parsed.host
    return f"{host}:{port}"


def lab_config(data: dict, ports: LabPorts, *, workdir: Path | None = None,
               files_in_workdir: bool = False) -> B2buaConfig:
    """The lab's B2BUA configuration: `data` (configs/lab.toml) with `ports` substituted and
    one extra non-certified profile per strip variant. With `files_in_workdir` the CDR file
    and the self-signed TLS pair go to `workdir` (tests must not write into the project)."""
    roles = LabRoles.of(data)
    data = copy.deepcopy(data)
    profiles, trunks = data["profile"], data["trunk"]
    certified, noncertified = profiles[roles.certified], profiles[roles.noncertified]
    certified["listen"] = [
        _with_port(item, ports.certified_tls if item.startswith("tls:") else ports.certified)
        for item in certified["listen"]
    ]
    noncertified["listen"] = [_with_port(item, ports.noncertified) for item in noncertified["listen"]
                              if not item.startswith("tls:")]
    host = parse_listen(noncertified["listen"][0]).address.host
    host_text = f"[{host}]" if ":" in host else host
    names = {profile["name"] for profile in profiles}
    for variant in VARIANTS:
        name = f"{noncertified['name']}-{variant}"
        if name in names:
            continue
        extra = {key: value for key, value in noncertified.items() if key not in ("name", "listen", "strip_variant")}
        port = ports.variants[variant]
        profiles.append({**extra, "name": name, "listen": [f"udp:{host_text}:{port}", f"tcp:{host_text}:{port}"],
                         "location_policy": "strip", "strip_variant": variant})
    trunks[roles.primary]["address"] = _with_address_port(trunks[roles.primary]["address"], ports.primary)
    trunks[roles.secondary]["address"] = _with_address_port(trunks[roles.secondary]["address"], ports.secondary)
    if roles.pstn is not None:
        trunks[roles.pstn]["address"] = _with_address_port(trunks[roles.pstn]["address"], ports.pstn)
    if roles.elin is not None:
        trunks[roles.elin]["address"] = _with_address_port(trunks[roles.elin]["address"], ports.elin)
    if data.get("admin"):
        data["admin"] = _with_address_port(data["admin"], ports.admin)
    if files_in_workdir and workdir is not None:
        node = data.setdefault("node", {})
        node["cdr_path"] = str(workdir / "lab-cdr.jsonl")
        tls = data.setdefault("tls", {})
        tls["cert_file"] = str(workdir / "tls" / "lab-cert.pem")
        tls["key_file"] = str(workdir / "tls" / "lab-key.pem")
        tls["self_signed_if_missing"] = True
    return config_from_dict(data, "lab configuration")


# -- branch sites -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BranchRole:
    """A branch site a scenario calls from: where its phones are and what its WAN is."""

    site: str
    source: str  # the address its calls are placed from
    links: tuple[str, ...]  # the WAN links from it to the site hosting its first emergency route
    policy: str  # its CAC emergency policy
    pstn_trunk: str | None  # the PSTN gateway of its last emergency route, if any
    max_calls: int | None  # the smallest call limit on those links


def branch_roles(config: B2buaConfig) -> dict[str, BranchRole]:
    """`wan`, `elin`, `block`, `pstn`, `exempt` -> the first branch site that can play it
    (see the module docstring); a role no site can play is missing."""
    import ipaddress

    from ..engine.sites import SiteMap

    sites = SiteMap.of(config)
    found: dict[str, BranchRole] = {}
    for site in config.site:
        if not site.emergency_routes or not site.members.sources:
            continue
        host = sites.host_of(site.emergency_routes[0])
        path = sites.path(site, host) if host is not None else None
        if not path:
            continue  # not a branch: its emergency trunks are local
        network = ipaddress.ip_network(site.members.sources[0], strict=False)
        source = str(network.network_address if network.num_addresses == 1 else next(network.hosts()))
        pstn = None
        if len(site.emergency_routes) > 1:
            last = config.group_named(site.emergency_routes[-1])
            pstn = next((name for name in last.trunks if config.trunk_named(name).kind == "pstn"), None)
        limits = [link.max_calls for link in path if link.max_calls is not None]
        role = BranchRole(site.name, source, tuple(link.name for link in path), site.cac_emergency_policy, pstn,
                          min(limits) if limits else None)
        if pstn is not None:
            found.setdefault("elin" if site.elin_gateway else "wan", role)
        if role.max_calls is not None:
            found.setdefault(site.cac_emergency_policy, role)
    return found


# -- the running lab -------------------------------------------------------------------------------


class _RecordingCdr(CdrWriter):
    """The node's CDR writer, also handing each record to the bench (scenarios and tests
    read the route taken and the failover attempts from it)."""

    def __init__(self, path: str | Path | None, sink: Callable[[dict], None]) -> None:
        super().__init__(path)
        self.sink = sink

    def write(self, record: dict) -> None:
        self.sink(record)
        super().write(record)


class RunningB2bua:
    """A `B2buaNode` started in this process whose CDRs are also kept in memory (`cdrs`),
    so a test can find the CDR of a call by the caller's Call-ID (`cdr_for`)."""

    def __init__(self, config: B2buaConfig) -> None:
        from ..runner import B2buaNode

        self.config = config
        self.node = B2buaNode(config)
        self.node.node.cdr.close()
        self.node.node.cdr = _RecordingCdr(config.node.cdr_path, self._on_cdr)
        self.cdrs: list[dict] = []
        self._cdr_arrived: asyncio.Event | None = None
        self.started = False

    async def start(self, *, probe: bool = True) -> RunningB2bua:
        self._cdr_arrived = asyncio.Event()
        self.started = True
        await self.node.start(probe=probe)
        return self

    async def stop(self, why: str = "shutdown") -> None:
        if self.started:
            self.started = False
            await self.node.stop(why)

    def address(self, profile: str | None = None, transport: str = "udp") -> Peer:
        """Where a caller reaches `profile` (default: the first) over `transport`."""
        name = profile or self.config.profile[0].name
        for candidate in self.config.profile:
            if candidate.name == name:
                for spec in candidate.listeners:
                    if spec.transport == transport:
                        return Peer(transport, spec.address.host, spec.address.port)
                raise KeyError(f"profile {name!r} does not listen on {transport}")
        raise KeyError(f"no profile {name!r}; profiles: {', '.join(p.name for p in self.config.profile)}")

    def _on_cdr(self, record: dict) -> None:
        self.cdrs.append(record)
        if self._cdr_arrived is not None:
            self._cdr_arrived.set()

    async def cdr_for(self, a_call_id: str, timeout: float = 5.0) -> dict | None:
        """The CDR of the call whose leg-A Call-ID is `a_call_id` (written when the call
        ends), waiting at most `timeout` seconds for it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            for record in reversed(self.cdrs):
                if record.get("a_call_id") == a_call_id:
                    return record
            remaining = deadline - loop.time()
            if remaining <= 0 or self._cdr_arrived is None:
                return None
            self._cdr_arrived.clear()
            try:
                await asyncio.wait_for(self._cdr_arrived.wait(), remaining)
            except asyncio.TimeoutError:
                return None


def answering_record(records: list[dict], cdr: dict | None) -> dict | None:
    """Among the records of one call, the one of the trunk that answered (the CDR's
    `route_taken`), else the last one."""
    if not records:
        return None
    taken = (cdr or {}).get("route_taken")
    for record in reversed(records):
        if taken is None or record.get("ecrc") == taken:
            return record
    return records[-1]


class Lab:
    """`async with Lab() as lab:` the whole lab on the configuration's ports;
    `Lab(free_ports=True, workdir=tmp_path)` on free loopback ports, files in `workdir`.

    `lab.address("certified")` -> Peer; `lab.primary` / `lab.secondary` / `lab.pstn`: the
    RunningUas of each (`.uas.set_behaviour(...)`, `.api.url`); `lab.store`: the ECRC call
    records (both ECRCs share it); `lab.cdrs`: the B2BUA's CDRs so far."""

    def __init__(self, config: str | Path | None = None, *, free_ports: bool = False, ports: LabPorts | None = None,
                 workdir: str | Path | None = None, probe: bool = True, db: str | Path | None = None) -> None:
        self.config_path = Path(config) if config is not None else default_config_path()
        self.data = load_lab_data(self.config_path)
        config_from_dict(self.data, str(self.config_path))  # the file's own problems first (ConfigError)
        self.roles = LabRoles.of(self.data)
        self.free_ports = free_ports or ports is not None
        self.ports = ports or (LabPorts.free() if free_ports else LabPorts.fixed(self.data))
        self._own_workdir = workdir is None and self.free_ports
        self.workdir = Path(workdir) if workdir is not None else (
            Path(tempfile.mkdtemp(prefix="e911-lab-")) if self.free_ports else Path("."))
        self.config = lab_config(self.data, self.ports, workdir=self.workdir, files_in_workdir=self.free_ports)
        self.probe = probe
        self.db_path = Path(db) if db is not None else self.workdir / LAB_DB
        self.pstn_db_path = self.db_path.with_name(LAB_PSTN_DB)
        self.b2bua: RunningB2bua | None = None
        self.store = None
        self.pstn_store = None  # the PSTN and ELIN gateways share it
        self.primary = None
        self.secondary = None
        self.pstn = None
        self.elin = None
        self.branches = branch_roles(self.config)

    # -- lifecycle --------------------------------------------------------------------------
    async def start(self) -> Lab:
        from .ecrc import MockEcrc, start_uas
        from .store import CallStore

        test_numbers = tuple(self.config.emergency.test_numbers)
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        uas_started: list[Any] = []  # closed here should a later part fail to start

        async def start(uas: Any, store: Any, port: int, http_port: int) -> Any:
            uas_started.append(uas)
            return await start_uas(uas, store, self._listen(port), f"127.0.0.1:{http_port}")

        try:
            self.store = CallStore(self.db_path)
            self.primary = await start(MockEcrc(self.roles.primary_name, self.store, test_numbers=test_numbers),
                                       self.store, self.ports.primary, self.ports.primary_http)
            self.secondary = await start(MockEcrc(self.roles.secondary_name, self.store, test_numbers=test_numbers),
                                         self.store, self.ports.secondary, self.ports.secondary_http)
            if self.roles.pstn_name is not None:
                from .pstn import PstnGateway

                self.pstn_store = CallStore(self.pstn_db_path)
                self.pstn = await start(PstnGateway(self.roles.pstn_name, self.pstn_store, test_numbers=test_numbers),
                                        self.pstn_store, self.ports.pstn, self.ports.pstn_http)
            if self.roles.elin_name is not None:
                from .pstn import PstnGateway

                self.pstn_store = self.pstn_store or CallStore(self.pstn_db_path)
                self.elin = await start(PstnGateway(self.roles.elin_name, self.pstn_store, elin_gateway=True,
                                                    test_numbers=test_numbers),
                                        self.pstn_store, self.ports.elin, self.ports.elin_http)
            self.b2bua = RunningB2bua(self.config)
            await self.b2bua.start(probe=self.probe)
        except BaseException:
            await self.stop()
            for uas in uas_started:  # listeners of a part whose HTTP API failed (closing is idempotent)
                await uas.stack.close()
            raise
        log.info("lab.ready", **self.ports.all())
        return self

    def _listen(self, port: int) -> list[str]:
        return [f"udp:127.0.0.1:{port}", f"tcp:127.0.0.1:{port}"]

    async def stop(self) -> None:
        if self.b2bua is not None:
            await self.b2bua.stop("lab stopping")
            self.b2bua.node.node.cdr.close()
        for name in ("primary", "secondary", "pstn", "elin"):
            running = getattr(self, name)
            if running is not None:
                await running.close()
                setattr(self, name, None)
        for name in ("store", "pstn_store"):
            store = getattr(self, name)
            if store is not None:
                store.close()
                setattr(self, name, None)
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    async def __aenter__(self) -> Lab:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # -- where things are ---------------------------------------------------------------------
    def address(self, role: str = "certified", transport: str = "udp") -> Peer:
        """`certified`, `noncertified`, a strip variant (`drop-header` ...), `primary`,
        `secondary`, `pstn`, `elin` -> the Peer to send to."""
        if role == "certified":
            port = self.ports.certified_tls if transport == "tls" else self.ports.certified
        elif role == "noncertified":
            port = self.ports.noncertified
        elif role in self.ports.variants:
            port = self.ports.variants[role]
        elif role in ("primary", "secondary", "pstn", "elin"):
            port = getattr(self.ports, role)
        else:
            raise KeyError(f"no lab role {role!r}")
        return Peer(transport, "127.0.0.1", port)

    def profile_of(self, role: str) -> str:
        """The B2BUA profile name behind a caller-facing role."""
        profiles = self.config.profile
        if role == "certified":
            return profiles[self.roles.certified].name
        base = profiles[self.roles.noncertified].name
        return base if role == "noncertified" else f"{base}-{role}"

    def ecrc(self, role: str):  # noqa: ANN201 - RunningUas
        return {"primary": self.primary, "secondary": self.secondary, "pstn": self.pstn, "elin": self.elin}[role]

    def trunk(self, role: str):  # noqa: ANN201 - config.Trunk
        name = {"primary": self.roles.primary_name, "secondary": self.roles.secondary_name}[role]
        return self.config.trunk_named(name)

    @property
    def admin_url(self) -> str | None:
        """The B2BUA's admin API (None when the configuration has none)."""
        node = self.node
        if node is None or node.admin is None:
            return None
        return node.admin.url

    @property
    def tls_ca_file(self) -> str | None:
        """The lab's self-signed certificate: a caller verifies the TLS listener against it."""
        return self.config.tls.cert_file

    def describe(self) -> list[tuple[str, str]]:
        """(what, where) of every part, for `--serve` and the report."""
        ports = self.ports
        certified = self.config.profile[self.roles.certified]
        rows = [(f"certified SBC ({certified.location_policy})", ", ".join(certified.listen))]
        for profile in self.config.profile:
            if profile.location_policy == "strip":
                rows.append((f"non-certified SBC (strip {profile.strip_variant})", ", ".join(profile.listen)))
        rows.append((f"primary ECRC {self.roles.primary_name}",
                     f"udp/tcp 127.0.0.1:{ports.primary}, http://127.0.0.1:{ports.primary_http}"))
        rows.append((f"secondary ECRC {self.roles.secondary_name}",
                     f"udp/tcp 127.0.0.1:{ports.secondary}, http://127.0.0.1:{ports.secondary_http}"))
        if self.roles.pstn_name is not None:
            rows.append((f"PSTN gateway {self.roles.pstn_name}",
                         f"udp/tcp 127.0.0.1:{ports.pstn}, http://127.0.0.1:{ports.pstn_http}"))
        if self.roles.elin_name is not None:
            rows.append((f"ELIN gateway {self.roles.elin_name}",
                         f"udp/tcp 127.0.0.1:{ports.elin}, http://127.0.0.1:{ports.elin_http}"))
        if self.config.admin is not None:
            rows.append(("B2BUA admin API (links, trunks, calls)", f"http://{self.config.admin}"))
        for site in self.config.site:
            links = [f"{link.name} (" + (f"{link.max_calls} call(s)" if link.max_calls is not None else "no limit") + ")"
                     for link in self.config.link if link.sites[0] == site.name]  # a branch names itself first
            routes = " then ".join(site.emergency_routes or [self.config.emergency.trunk_group])
            where = f"callers {', '.join(site.members.sources) or '-'}; 911 -> {routes}"
            if links:
                where += f"; links {', '.join(links)}; CAC policy {site.cac_emergency_policy}"
            rows.append((f"site {site.name}", where))
        rows.append(("ECRC call records (SQLite)", str(self.db_path)))
        if self.roles.pstn_name is not None or self.roles.elin_name is not None:
            rows.append(("PSTN/ELIN gateway call records (SQLite)", str(self.pstn_db_path)))
        if self.config.node.cdr_path:
            rows.append(("B2BUA CDRs", str(self.config.node.cdr_path)))
        if self.tls_ca_file:
            rows.append(("TLS certificate (self-signed)", str(self.tls_ca_file)))
        return rows

    # -- what happened ----------------------------------------------------------------------------
    @property
    def node(self):  # noqa: ANN201 - runner.B2buaNode
        return self.b2bua.node if self.b2bua is not None else None

    @property
    def cdrs(self) -> list[dict]:
        return self.b2bua.cdrs if self.b2bua is not None else []

    async def cdr_for(self, a_call_id: str, timeout: float = 5.0) -> dict | None:
        """The B2BUA's CDR of the call whose leg-A Call-ID is `a_call_id` (bounded wait)."""
        if self.b2bua is None:
            return None
        return await self.b2bua.cdr_for(a_call_id, timeout)

    def records_for(self, cdr: dict | None) -> list[dict]:
        """What the ECRCs and the PSTN gateways recorded of one call (leg B's Call-ID is in
        the CDR), oldest first."""
        if not cdr or not cdr.get("b_call_id") or self.store is None:
            return []
        records = list(reversed(self.store.list(call_id=cdr["b_call_id"], limit=None)))
        if self.pstn_store is not None:
            records += reversed(self.pstn_store.list(call_id=cdr["b_call_id"], limit=None))
            records.sort(key=lambda record: record.get("arrived_at") or "")
        return records

    async def records_of(self, outcome: Any) -> list[dict]:
        """What the ECRCs recorded of a call the caller placed (a `CallOutcome`)."""
        return self.records_for(await self.cdr_for(outcome.call_id))

    async def record_of(self, outcome: Any) -> dict | None:
        """The record of the ECRC that answered a call the caller placed (None: none)."""
        cdr = await self.cdr_for(outcome.call_id)
        return answering_record(self.records_for(cdr), cdr)


# -- `b2bua lab` ---------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default=LAB_CONFIG, help=f"the lab configuration (default {LAB_CONFIG})")
    parser.add_argument("--serve", action="store_true",
                        help="start everything and keep it running (for real phones and external tests)")
    parser.add_argument("--free-ports", action="store_true",
                        help="use free loopback ports instead of the configuration's fixed ones")
    parser.add_argument("--report-dir", default=".", help="where lab-report.json and lab-report.html go (default .)")
    parser.add_argument("--db", help=f"SQLite file of the ECRC call records (default <report-dir>/{LAB_DB})")
    parser.add_argument("--only", action="append", metavar="NAME",
                        help="run only the scenarios whose name starts with NAME (repeatable)")
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    parser.add_argument("--log-level", default="warning", choices=("debug", "info", "warning", "error"),
                        help="log level of the JSON logs on stderr (default warning)")


def run(args: argparse.Namespace) -> int:
    from ..cli import UsageError
    from ..logs import configure_logging
    from ..transport import run as run_loop
    from .scenarios import SCENARIOS

    if args.list:
        for scenario in SCENARIOS:
            print(f"{scenario.name:<31} {scenario.title}")
        return 0
    selected = list(SCENARIOS)
    if args.only:
        selected = [s for s in SCENARIOS if any(s.name.startswith(prefix) for prefix in args.only)]
        if not selected:
            raise UsageError(f"--only {' '.join(args.only)}: no such scenario (see b2bua lab --list)")
    report_dir = Path(args.report_dir)
    if report_dir.exists() and not report_dir.is_dir():
        raise UsageError(f"--report-dir {args.report_dir!r} is not a directory")
    try:
        # With --free-ports the CDR file and the self-signed TLS pair go to the report
        # directory too (the configuration's fixed paths belong to the fixed-port lab).
        lab = Lab(args.config, free_ports=args.free_ports, workdir=report_dir, db=args.db or (report_dir / LAB_DB))
    except ConfigError as error:
        more = f" (and {len(error.problems) - 1} more: b2bua check-config)" if len(error.problems) > 1 else ""
        raise UsageError(f"{error}{more}") from None
    except (LabError, ValueError) as error:
        raise UsageError(f"{args.config}: {error}") from None
    configure_logging(args.log_level)
    try:
        if args.serve:
            return run_loop(_serve(lab))
        return run_loop(_run_matrix(lab, selected, report_dir))
    except OSError as error:
        hint = " (is another lab running? try --free-ports)" if getattr(error, "errno", None) == 98 else ""
        print(f"b2bua lab: {error}{hint}", file=sys.stderr)
        return 1


async def _serve(lab: Lab) -> int:
    await lab.start()
    try:
        print("lab running; Ctrl-C stops it")
        width = max(len(what) for what, _ in lab.describe())
        for what, where in lab.describe():
            print(f"  {what:<{width}}  {where}")
        sys.stdout.flush()
        await until_stopped()
    finally:
        await lab.stop()
    return 0


async def _run_matrix(lab: Lab, selected: list, report_dir: Path) -> int:
    from . import report
    from .scenarios import run_scenarios

    await lab.start()
    try:
        results = await run_scenarios(lab, selected)
    finally:
        await lab.stop()
    document = report.lab_report(lab, results)
    print(report.render_table(results))
    report_dir.mkdir(parents=True, exist_ok=True)
    json_path, html_path = report_dir / "lab-report.json", report_dir / "lab-report.html"
    report.write_json(json_path, document)
    report.write_html(html_path, document)
    passed = sum(1 for result in results if result.passed)
    print(f"\n{passed}/{len(results)} scenarios passed in {document['duration_s']:.1f} s; "
          f"wrote {json_path} and {html_path}")
    return 0 if passed == len(results) else 1


def summary_of(lab: Lab) -> dict[str, Any]:
    return {"config": str(lab.config_path), "free_ports": lab.free_ports, "ports": lab.ports.all(),
            "parts": [{"what": what, "where": where} for what, where in lab.describe()]}
