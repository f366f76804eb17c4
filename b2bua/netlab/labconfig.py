"""The B2BUA configuration of the namespace lab, as data, and a small TOML writer for it.

The hosts have fixed addresses (each lab lives in its own namespaces, so two runs never
clash), so one function describes the whole configuration; a scenario changes a few
keys (`Variant`). The result is validated by `b2bua.config.config_from_dict` before it is
written, and `b2bua check-config` accepts the file.

Sites and links (docs/configuration.md, b2bua/engine/sites.py): the branch phone
(198.18.0.50) is the member of site `branch`, whose emergency routes are the SIP trunk's
group `ecrc`, then its local PSTN gateway; the ECRCs' group is hosted by site `central`.
The WAN link `wan-branch` joins them and is probed with OPTIONS to a SIP element on the
central side (the secondary ECRC: it is never cut or impaired by a scenario), so a cut
WAN is noticed by the B2BUA itself, not told by a flag.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from ..config import config_from_dict
from .topology import host_spec

SIP_PORT = 5060
ECRC_HTTP_PORT = 8070
PSTN_HTTP_PORT = 8080
ADMIN_PORT = 8060
WAN_LINK = "wan-branch"


@dataclass(frozen=True)
class Variant:
    """What a scenario may change in the lab's B2BUA configuration."""

    ecrc_transports: tuple[str, ...] = ("udp", "tcp")
    fast_failover_s: float = 1.0  # checklist: no 18x within 1 s -> the next ECRC
    health_interval_s: float = 1.0
    health_timeout_s: float = 0.5
    health_failures_to_down: int = 2
    health_successes_to_up: int = 2
    probe_interval_s: float = 1.0
    probe_timeout_s: float = 0.5
    probe_failures_to_down: int = 2
    probe_successes_to_up: int = 2
    sites: bool = True
    route_annotation: bool = True  # E911-Route-Info on leg B: records say site, links, PSTN reason
    # The B2BUA's admin API on 198.18.0.20:8060. Off: `b2bua run` with `admin` set fails at
    # start for now (b2bua/runner.py: its serve(config) shadows the imported HTTP serve()).
    admin: bool = False
    log_level: str = "info"
    extra: dict = field(default_factory=dict)  # top-level tables merged in last

    def with_(self, **changes: object) -> Variant:
        return replace(self, **changes)


def sip(role: str, port: int = SIP_PORT) -> str:
    return f"{host_spec(role).address}:{port}"


def b2bua_config(run_dir: Path, variant: Variant = Variant()) -> dict:
    b2bua = host_spec("b2bua").address
    health = {"interval_s": variant.health_interval_s, "timeout_s": variant.health_timeout_s,
              "failures_to_down": variant.health_failures_to_down,
              "successes_to_up": variant.health_successes_to_up}
    config: dict = {
        "node": {"name": "netlab-sbc", "cdr_path": str(run_dir / "cdr.jsonl"), "log_level": variant.log_level,
                 "route_annotation": variant.route_annotation},
        "profile": [{"name": "certified", "listen": [f"udp:{b2bua}:{SIP_PORT}", f"tcp:{b2bua}:{SIP_PORT}"],
                     "location_policy": "pass"}],
        "emergency": {"dial_strings": ["911"], "dial_masks": {"112": "911"}, "test_numbers": ["933"],
                      "trunk_group": "ecrc"},
        "trunk": [
            {"name": "ecrc-primary", "address": sip("ecrc-primary"), "transports": list(variant.ecrc_transports),
             "fast_failover_s": variant.fast_failover_s, "health": dict(health)},
            {"name": "ecrc-secondary", "address": sip("ecrc-secondary"), "transports": list(variant.ecrc_transports),
             "fast_failover_s": variant.fast_failover_s, "health": dict(health)},
            {"name": "pstn-branch", "address": sip("pstn"), "transports": ["udp", "tcp"], "kind": "pstn",
             "fast_failover_s": variant.fast_failover_s, "health": dict(health)},
        ],
        "trunk_group": [
            {"name": "ecrc", "strategy": "priority", "trunks": ["ecrc-primary", "ecrc-secondary"]},
            {"name": "pstn-branch", "strategy": "priority", "trunks": ["pstn-branch"]},
        ],
    }
    if variant.sites:
        config["site"] = [
            {"name": "central", "trunk_groups": ["ecrc"]},
            {"name": "branch", "members": {"sources": [f"{host_spec('branch').address}/32"]},
             "trunk_groups": ["pstn-branch"], "emergency_routes": ["ecrc", "pstn-branch"]},
        ]
        config["link"] = [
            {"name": WAN_LINK, "sites": ["branch", "central"],
             "probe": {"target": sip("ecrc-secondary"), "interval_s": variant.probe_interval_s,
                       "timeout_s": variant.probe_timeout_s, "failures_to_down": variant.probe_failures_to_down,
                       "successes_to_up": variant.probe_successes_to_up}},
        ]
    if variant.admin:
        config["admin"] = f"{b2bua}:{ADMIN_PORT}"  # GET /links, /trunks; `b2bua link NAME down --admin ...`
    config.update(variant.extra)
    return config


def write_b2bua_config(path: Path, run_dir: Path, variant: Variant = Variant()) -> Path:
    data = b2bua_config(run_dir, variant)
    config_from_dict(data, str(path))  # refuse to write what `b2bua run` would refuse
    path.write_text(
        "# The namespace lab's B2BUA (written by b2bua.netlab; see docs/netlab.md).\n" + to_toml(data),
        encoding="utf-8",
    )
    return path


# -- a TOML writer for plain data -----------------------------------------------------------


def _scalar(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'"{escaped}"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_scalar(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_scalar(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def _key(key: str) -> str:
    return key if key.replace("_", "").replace("-", "").isalnum() else _scalar(key)


def to_toml(data: dict) -> str:
    """Top-level scalars, then `[table]`s, then `[[array of tables]]`; deeper tables are inline."""
    lines: list[str] = []
    scalars = {k: v for k, v in data.items() if not isinstance(v, dict) and not _is_table_list(v)}
    for key, value in scalars.items():
        lines.append(f"{_key(key)} = {_scalar(value)}")
    for key, value in data.items():
        if isinstance(value, dict):
            lines += ["", f"[{_key(key)}]"] + [f"{_key(k)} = {_scalar(v)}" for k, v in value.items()]
    for key, value in data.items():
        if _is_table_list(value):
            for item in value:
                lines += ["", f"[[{_key(key)}]]"] + [f"{_key(k)} = {_scalar(v)}" for k, v in item.items()]
    return "\n".join(lines).lstrip("\n") + "\n"


def _is_table_list(value: object) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(item, dict) for item in value)
