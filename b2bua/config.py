"""The B2BUA's configuration: TOML validated into typed models (architecture rule 6).

A bad file is refused naming the key, the value and the reason (`ConfigError.problems`);
`b2bua check-config` prints them all and exits 2. Every key is documented in
docs/configuration.md.
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

Transport = Literal["udp", "tcp", "tls"]
LocationPolicyName = Literal["pass", "validate", "strip"]
# Partial strips that real non-certified SBCs do (e911-reference §1.10): each selectable.
StripVariant = Literal[
    "full",  # PIDF-LO parts, Geolocation and Geolocation-Routing gone, body collapsed to the SDP
    "keep-geolocation",  # body stripped but the Geolocation header left dangling
    "drop-header",  # body kept, Geolocation header dropped
    "drop-part-headers",  # multipart kept but part headers lost (Content-ID gone, as FreeSWITCH/Sippy)
    "stale-content-length",  # stripped, but Content-Length left at the old value
    "keep-multipart",  # PIDF part removed, multipart wrapper kept around the lone SDP part
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class HostPort:
    host: str  # without IPv6 brackets
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_host_port(text: str, default_port: int | None = None, *, allow_zero: bool = False) -> HostPort:
    """`127.0.0.1:5060`, `[::1]:5060`, `ecrc-primary:5070` (a name, for compose).
    `allow_zero`: port 0 means "any free port" (addresses to listen on, not to reach)."""
    text = text.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
        ipaddress.IPv6Address(host)
    else:
        host, _, port_text = text.rpartition(":") if text.count(":") == 1 else (text, "", "")
        if not host:
            raise ValueError(f"{text!r} is not host:port")
        if text.endswith(":"):
            raise ValueError(f"{text!r} has an empty port")
    if not re.fullmatch(r"[A-Za-z0-9._:-]+", host):
        raise ValueError(f"host {host!r} is not an address or host name")
    if not port_text:
        if default_port is None:
            raise ValueError(f"{text!r} has no port")
        return HostPort(host, default_port)
    lowest = 0 if allow_zero else 1
    if not (port_text.isascii() and port_text.isdigit()) or not lowest <= int(port_text) < 65536:
        raise ValueError(f"port {port_text!r} is not a number from {lowest} to 65535")
    return HostPort(host, int(port_text))


@dataclass(frozen=True)
class ListenSpec:
    transport: str
    address: HostPort

    def __str__(self) -> str:
        return f"{self.transport}:{self.address}"


def parse_listen(text: str) -> ListenSpec:
    """`udp:127.0.0.1:5060` / `tls:[::1]:5061`."""
    transport, _, rest = text.partition(":")
    if transport not in ("udp", "tcp", "tls"):
        raise ValueError(f"{text!r} must start with udp:, tcp: or tls:")
    return ListenSpec(transport, parse_host_port(rest, allow_zero=True))


class Timers(_Model):
    """RFC 3261 §17 base timers, in milliseconds."""

    t1_ms: Annotated[int, Field(gt=0, le=10_000)] = 500
    t2_ms: Annotated[int, Field(gt=0, le=60_000)] = 4000
    t4_ms: Annotated[int, Field(gt=0, le=60_000)] = 5000


class Health(_Model):
    """OPTIONS probing of a trunk (checklist §2.2: detection is bounded by the probe timeout)."""

    enabled: bool = True
    interval_s: Annotated[float, Field(gt=0, le=3600)] = 10.0
    timeout_s: Annotated[float, Field(gt=0, le=60)] = 2.0
    failures_to_down: Annotated[int, Field(ge=1, le=100)] = 2
    successes_to_up: Annotated[int, Field(ge=1, le=100)] = 2
    # Which answers to OPTIONS prove the trunk alive. Unset: any final response below 500
    # except 408 (a peer that answers 405 or 404 to OPTIONS is up). Never count 408 or a
    # locally generated failure (Kamailio's ds_ping_reply_codes warning).
    ok_codes: list[int] | None = None


class Trunk(_Model):
    """One ECRC / SBC endpoint of the E9-1-1 provider, or a PSTN gateway."""

    name: str
    address: str
    transports: list[Transport] = Field(default_factory=lambda: ["udp"])
    location_policy: LocationPolicyName | None = None  # overrides the profile's when set
    strip_variant: StripVariant | None = None
    fast_failover_s: Annotated[float, Field(gt=0, le=120)] = 2.0  # no provisional by then -> next trunk
    failover_codes: list[int] = Field(default_factory=lambda: [408, 480, 500, 502, 503, 504])
    tls_verify: bool = True
    host_header: str | None = None  # host written in the Request-URI, defaults to the address
    health: Health = Field(default_factory=Health)
    kind: Literal["ecrc", "pstn", "sip"] = "ecrc"
    site: str | None = None  # the site the trunk is at, when not the site hosting its group

    @field_validator("address")
    @classmethod
    def _address(cls, value: str) -> str:
        parse_host_port(value, 5060)
        return value

    @field_validator("failover_codes")
    @classmethod
    def _codes(cls, value: list[int]) -> list[int]:
        for code in value:
            if not 400 <= code <= 699:
                raise ValueError(f"{code} is not a final failure code (400-699)")
        return value

    @property
    def host_port(self) -> HostPort:
        return parse_host_port(self.address, 5061 if self.transports == ["tls"] else 5060)


class TrunkGroup(_Model):
    name: str
    strategy: Literal["priority", "round_robin"] = "priority"
    trunks: Annotated[list[str], Field(min_length=1)]


class Route(_Model):
    """An ordinary (non-emergency) route: dialled user part matched by a regex."""

    pattern: str
    trunk_group: str
    strip_plus: bool = False

    @field_validator("pattern")
    @classmethod
    def _pattern(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as error:
            raise ValueError(f"not a regular expression: {error}") from None
        return value


class Emergency(_Model):
    """How an emergency call is recognised (Lync location policy, e911-reference §1.2)."""

    dial_strings: list[str] = Field(default_factory=lambda: ["911"])
    dial_masks: dict[str, str] = Field(default_factory=dict)  # "112" -> "911"
    test_numbers: list[str] = Field(default_factory=lambda: ["933"])
    priority_header: bool = True  # `Priority: emergency` alone marks a call (MS-SIPRE §3.17.5.2)
    service_urn: bool = True  # urn:service:sos and sub-services (RFC 5031)
    trunk_group: str
    test_trunk_group: str | None = None  # 933 goes here; defaults to trunk_group
    geolocation_error_on_provisional: bool = False  # validate policy: echo Geolocation-Error on 1xx

    @field_validator("dial_strings", "test_numbers")
    @classmethod
    def _digits(cls, value: list[str]) -> list[str]:
        for item in value:
            if not re.fullmatch(r"\+?[0-9*#]+", item):
                raise ValueError(f"{item!r} is not a dial string (digits, optional leading +)")
        return value


class SiteMembers(_Model):
    """Which callers belong to a site: by source address, From domain or From user."""

    sources: list[str] = Field(default_factory=list)  # networks, e.g. "10.1.0.0/16", "127.0.0.11/32"
    from_domains: list[str] = Field(default_factory=list)  # host of the From URI, e.g. "branch1.example.com"
    users: list[str] = Field(default_factory=list)  # user part of the From URI (a registered phone's AoR user)

    @field_validator("sources")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not a network (address/prefix)") from None
        return value


class Site(_Model):
    """A site of the seed's design: a central site that hosts trunks, or a branch.

    `emergency_routes` is the site's ordered list of trunk groups for emergency calls
    (Lync's PSTN usages of the location policy): the SIP trunk's group first, then the
    branch's local PSTN gateway for when the WAN is down or CAC is full.
    """

    name: str
    members: SiteMembers = Field(default_factory=SiteMembers)
    trunk_groups: list[str] = Field(default_factory=list)  # groups whose trunks are reached from this site
    emergency_routes: list[str] = Field(default_factory=list)  # empty: [emergency.trunk_group]
    cac_emergency_policy: Literal["block", "pstn", "exempt"] = "pstn"
    dial_strings: list[str] | None = None  # per-site overrides of [emergency]
    dial_masks: dict[str, str] | None = None
    test_numbers: list[str] | None = None
    elin_gateway: bool = False  # the site's PSTN gateway puts an ELIN in the caller id


class LinkProbe(_Model):
    """Declare a link down when OPTIONS to an address on the far side go unanswered."""

    target: str  # host:port of a SIP element across the link
    interval_s: Annotated[float, Field(gt=0, le=3600)] = 5.0
    timeout_s: Annotated[float, Field(gt=0, le=60)] = 1.0
    failures_to_down: Annotated[int, Field(ge=1, le=100)] = 2
    successes_to_up: Annotated[int, Field(ge=1, le=100)] = 1

    @field_validator("target")
    @classmethod
    def _target(cls, value: str) -> str:
        parse_host_port(value, 5060)
        return value


class Link(_Model):
    """A WAN link between two sites, with its call admission control limits."""

    name: str
    sites: Annotated[list[str], Field(min_length=2, max_length=2)]
    state: Literal["up", "down"] = "up"
    max_calls: Annotated[int, Field(ge=0)] | None = None
    max_bandwidth_kbps: Annotated[int, Field(ge=0)] | None = None
    probe: LinkProbe | None = None


class Profile(_Model):
    """One face of the B2BUA toward callers: its listeners and its location policy.

    The lab runs a certified SBC profile (pass) and a non-certified one (strip) in one process.
    """

    name: str
    listen: Annotated[list[str], Field(min_length=1)]
    location_policy: LocationPolicyName = "pass"
    strip_variant: StripVariant = "full"
    advertised_host: str | None = None  # host written in Via/Contact, when it differs from the bind address

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: list[str]) -> list[str]:
        for item in value:
            parse_listen(item)
        return value

    @property
    def listeners(self) -> list[ListenSpec]:
        return [parse_listen(item) for item in self.listen]


class Tls(_Model):
    cert_file: str | None = None
    key_file: str | None = None
    ca_file: str | None = None
    self_signed_if_missing: bool = False  # make a loopback certificate at start (the lab)


class Node(_Model):
    name: str = "b2bua"
    cdr_path: str | None = "cdr.jsonl"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    udp_to_tcp_threshold: Annotated[int, Field(ge=200, le=65535)] = 1300  # RFC 3261 §18.1.1
    max_message_bytes: Annotated[int, Field(ge=1024, le=65535)] = 65535
    user_agent: str = "e911-b2bua"  # no version: fingerprinting tools should learn nothing
    # Add `E911-Route-Info` (site, links, CAC, why PSTN) to leg B so a test bench can record
    # how the call was routed. Off by default: it tells the far end about our topology.
    route_annotation: bool = False
    # PSAP callbacks (RFC 6881 ED-63..69): leg B of an emergency call carries a Contact of
    # its own (`sip:cb-<id>@b2bua`); an INVITE to it within this window is routed back to
    # the caller (an ELIN gateway redirects its ELIN callbacks there).
    callback_window_s: Annotated[float, Field(ge=0, le=86_400)] = 1800.0
    # Worker processes sharing each listening port (SO_REUSEPORT); the kernel spreads new
    # senders over them by address and port. Each worker writes its own address into Via
    # and Contact, so responses and in-dialog requests come back to it.
    workers: Annotated[int, Field(ge=1, le=64)] = 1
    # `validate`: results kept for PIDF-LO documents seen before (a phone re-sends the same
    # document on every call), time-dependent checks still run per call; 0 = off.
    validation_cache_entries: Annotated[int, Field(ge=0, le=1_000_000)] = 1024


class B2buaConfig(_Model):
    node: Node = Field(default_factory=Node)
    timers: Timers = Field(default_factory=Timers)
    tls: Tls = Field(default_factory=Tls)
    profile: Annotated[list[Profile], Field(min_length=1)]
    trunk: Annotated[list[Trunk], Field(min_length=1)]
    trunk_group: Annotated[list[TrunkGroup], Field(min_length=1)]
    route: list[Route] = Field(default_factory=list)
    emergency: Emergency
    site: list[Site] = Field(default_factory=list)
    link: list[Link] = Field(default_factory=list)
    admin: str | None = None  # HTTP admin API (links, trunks) as host:port, e.g. "127.0.0.1:8060"; None: off
    # Sections read by the test bench (`b2bua lab`), ignored by `b2bua run`.
    lab: dict = Field(default_factory=dict)

    @model_validator(mode="after")
    def _references(self) -> B2buaConfig:
        trunks = {trunk.name for trunk in self.trunk}
        groups = {group.name for group in self.trunk_group}
        _unique("trunk", [trunk.name for trunk in self.trunk])
        _unique("trunk_group", [group.name for group in self.trunk_group])
        _unique("profile", [profile.name for profile in self.profile])
        for index, group in enumerate(self.trunk_group):
            for name in group.trunks:
                if name not in trunks:
                    raise ValueError(f"trunk_group[{index}].trunks: {name!r} is not a defined trunk")
        for index, route in enumerate(self.route):
            if route.trunk_group not in groups:
                raise ValueError(f"route[{index}].trunk_group: {route.trunk_group!r} is not a defined trunk_group")
        for key in ("trunk_group", "test_trunk_group"):
            value = getattr(self.emergency, key)
            if value is not None and value not in groups:
                raise ValueError(f"emergency.{key}: {value!r} is not a defined trunk_group")
        sites = {site.name for site in self.site}
        _unique("site", [site.name for site in self.site])
        _unique("link", [link.name for link in self.link])
        for index, site in enumerate(self.site):
            for key in ("trunk_groups", "emergency_routes"):
                for name in getattr(site, key):
                    if name not in groups:
                        raise ValueError(f"site[{index}].{key}: {name!r} is not a defined trunk_group")
        for index, trunk in enumerate(self.trunk):
            if trunk.site is not None and trunk.site not in sites:
                raise ValueError(f"trunk[{index}].site: {trunk.site!r} is not a defined site")
        for index, link in enumerate(self.link):
            for name in link.sites:
                if name not in sites:
                    raise ValueError(f"link[{index}].sites: {name!r} is not a defined site")
            if link.sites[0] == link.sites[1]:
                raise ValueError(f"link[{index}].sites: a link joins two different sites")
        if self.admin is not None:
            parse_host_port(self.admin, allow_zero=True)
        if self.node.workers > 1:
            self._check_workers()
        needs_tls = any(spec.transport == "tls" for profile in self.profile for spec in profile.listeners)
        if needs_tls and not (self.tls.cert_file and self.tls.key_file):
            raise ValueError("tls: a tls listener needs tls.cert_file and tls.key_file")
        return self

    def _check_workers(self) -> None:
        """What several worker processes cannot share: each has its own memory, so a
        limit counted in it would be counted once per worker, and a change made through
        the admin API would reach one worker only."""
        workers = self.node.workers
        if self.admin is not None:
            raise ValueError(f"admin: the admin API changes one process's state; it needs node.workers = 1 (not {workers})")
        for index, link in enumerate(self.link):
            for key in ("max_calls", "max_bandwidth_kbps"):
                if getattr(link, key) is not None:
                    raise ValueError(f"link[{index}].{key}: call admission control counts calls per process; "
                                     f"it needs node.workers = 1 (not {workers})")
        for index, profile in enumerate(self.profile):
            for spec in profile.listeners:
                if spec.address.port == 0:
                    raise ValueError(f"profile[{index}].listen: {spec} has port 0; workers share a fixed port "
                                     f"(node.workers = {workers})")

    def trunk_named(self, name: str) -> Trunk:
        return self._trunks[name]

    def group_named(self, name: str) -> TrunkGroup:
        return self._groups[name]

    # Looked up for every call's route plan; names are unique (checked above) and the
    # model is frozen, so each index is built once.
    @cached_property
    def _trunks(self) -> dict[str, Trunk]:
        return {trunk.name: trunk for trunk in self.trunk}

    @cached_property
    def _groups(self) -> dict[str, TrunkGroup]:
        return {group.name: group for group in self.trunk_group}


def _unique(kind: str, names: list[str]) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"{kind}: name {name!r} is defined twice")
        seen.add(name)


class ConfigError(Exception):
    """A configuration that cannot be used; `problems` lists (key, value, reason)."""

    def __init__(self, path: str, problems: list[tuple[str, object, str]]) -> None:
        self.path = path
        self.problems = problems
        first = problems[0]
        super().__init__(f"{path}: {first[0]} = {first[1]!r}: {first[2]}")

    def lines(self) -> list[str]:
        return [f"{self.path}: {key} = {value!r}: {reason}" for key, value, reason in self.problems]


def load_config(path: str | Path) -> B2buaConfig:
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(str(path), [("(file)", str(path), error.strerror or str(error))]) from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(str(path), [("(syntax)", "", str(error))]) from None
    return config_from_dict(data, str(path))


def config_from_dict(data: dict, source: str = "<config>") -> B2buaConfig:
    try:
        return B2buaConfig.model_validate(data)
    except ValidationError as error:
        problems = []
        for item in error.errors():
            key = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in item["loc"]).lstrip(".")
            key = key or "(top level)"
            reason = item["msg"].removeprefix("Value error, ")
            value = item.get("input")
            if item["type"] == "missing":
                value = None
                reason = "required key is missing"
            elif item["type"] == "extra_forbidden":
                reason = "unknown key"
            if not item["loc"] and ": " in reason:
                # cross-reference checks name their own key: "trunk_group[0].trunks: ..."
                key, reason = reason.split(": ", 1)
                value = _value_at(data, key)
            if isinstance(value, dict):
                value = "{...}"
            problems.append((key, value, reason))
        raise ConfigError(source, problems) from None


def _value_at(data: dict, key: str) -> object:
    """The value a key path like `link[0].max_calls` names in the raw document, or None."""
    value: object = data
    for name, index in re.findall(r"([^.\[\]]+)|\[(\d+)\]", key):
        try:
            value = value[int(index)] if index else value[name]  # type: ignore[index]
        except (KeyError, IndexError, TypeError):
            return None
    return value


# -- `b2bua check-config PATH` ----------------------------------------------------------


def add_arguments(parser) -> None:  # noqa: ANN001 - argparse.ArgumentParser
    parser.add_argument("path", help="the TOML configuration to check")


def run(args) -> int:  # noqa: ANN001 - argparse.Namespace
    """Print every problem as `file: key = value: reason` and exit 2, or a summary and 0."""
    import sys

    try:
        config = load_config(args.path)
    except ConfigError as error:
        for line in error.lines():
            print(line, file=sys.stderr)
        return 2
    listeners = ", ".join(f"{p.name}: {' '.join(p.listen)}" for p in config.profile)
    print(f"{args.path}: ok ({len(config.trunk)} trunks, {len(config.trunk_group)} trunk groups; {listeners})")
    return 0
