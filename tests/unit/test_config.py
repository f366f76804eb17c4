"""Configuration errors name the key and the reason; `b2bua check-config` exits 2 or 0."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest

from b2bua.config import ConfigError, config_from_dict, load_config

ROOT = Path(__file__).parents[2]
LAB = ROOT / "configs" / "lab.toml"

GOOD = {
    "node": {"name": "t", "cdr_path": None},
    "profile": [{"name": "certified", "listen": ["udp:127.0.0.1:5060", "tcp:127.0.0.1:5060"]}],
    "trunk": [
        {"name": "ecrc-primary", "address": "127.0.0.1:5070"},
        {"name": "ecrc-secondary", "address": "127.0.0.1:5072", "transports": ["udp", "tcp"]},
    ],
    "trunk_group": [{"name": "ecrc", "trunks": ["ecrc-primary", "ecrc-secondary"]}],
    "route": [{"pattern": "^922$", "trunk_group": "ecrc"}],
    "emergency": {"trunk_group": "ecrc"},
}


def with_change(path: str, value: object) -> dict:
    """GOOD with one key set (`trunk.0.address`), or removed when value is ...."""
    data = copy.deepcopy(GOOD)
    *parents, last = path.split(".")
    node = data
    for part in parents:
        node = node[int(part)] if part.isdigit() else node.setdefault(part, {})
    if value is ...:
        del node[int(last) if last.isdigit() else last]
    elif last.isdigit():
        node[int(last)] = value
    else:
        node[last] = value
    return data


def problems(data: dict) -> list[tuple[str, object, str]]:
    with pytest.raises(ConfigError) as caught:
        config_from_dict(data, "test.toml")
    return caught.value.problems


def test_the_good_config_and_the_lab_config_load():
    config = config_from_dict(GOOD)
    assert [trunk.name for trunk in config.trunk] == ["ecrc-primary", "ecrc-secondary"]
    lab = load_config(LAB)
    assert lab.emergency.trunk_group == "ecrc"


@pytest.mark.parametrize("path, value, key, reason", [
    ("emergency", ..., "emergency", "required key is missing"),
    ("node.colour", "blue", "node.colour", "unknown key"),
    ("trunk.0.adress", "127.0.0.1:5070", "trunk[0].adress", "unknown key"),
    ("trunk.0.address", "127.0.0.1:99999", "trunk[0].address", "port '99999' is not a number from 1 to 65535"),
    ("trunk.0.address", "127.0.0.1:sip", "trunk[0].address", "is not a number from 1 to 65535"),
    ("trunk.0.transports", ["sctp"], "trunk[0].transports[0]", "'udp', 'tcp' or 'tls'"),
    ("trunk.0.fast_failover_s", 0, "trunk[0].fast_failover_s", "greater than 0"),
    ("trunk.0.failover_codes", [503, 200], "trunk[0].failover_codes", "200 is not a final failure code"),
    ("trunk.0.health", {"failures_to_down": 0}, "trunk[0].health.failures_to_down", "greater than or equal to 1"),
    ("trunk.0.health", {"interval": 1}, "trunk[0].health.interval", "unknown key"),
    ("profile.0.listen", ["sctp:127.0.0.1:5060"], "profile[0].listen", "must start with udp:, tcp: or tls:"),
    ("profile.0.listen", [], "profile[0].listen", "at least 1 item"),
    ("profile.0.location_policy", "drop", "profile[0].location_policy", "'pass', 'validate' or 'strip'"),
    ("profile.0.strip_variant", "partial", "profile[0].strip_variant", "'keep-multipart'"),
    ("route.0.pattern", "^(922$", "route[0].pattern", "not a regular expression"),
    ("emergency.dial_strings", ["91l"], "emergency.dial_strings", "'91l' is not a dial string"),
    ("node.log_level", "verbose", "node.log_level", "'debug', 'info', 'warning' or 'error'"),
    ("node.udp_to_tcp_threshold", 100, "node.udp_to_tcp_threshold", "greater than or equal to 200"),
    ("timers.t1_ms", -1, "timers.t1_ms", "greater than 0"),
])
def test_a_bad_value_is_refused_naming_its_key_and_the_reason(path, value, key, reason):
    found = problems(with_change(path, value))
    keys = [item[0] for item in found]
    assert key in keys, found
    problem = found[keys.index(key)]
    assert reason in problem[2], problem


@pytest.mark.parametrize("path, value, key, reason", [
    ("trunk_group.0.trunks", ["ecrc-primary", "ecrc-tertiary"], "trunk_group[0].trunks",
     "'ecrc-tertiary' is not a defined trunk"),
    ("route.0.trunk_group", "pstn", "route[0].trunk_group", "'pstn' is not a defined trunk_group"),
    ("emergency.trunk_group", "nowhere", "emergency.trunk_group", "'nowhere' is not a defined trunk_group"),
    ("emergency.test_trunk_group", "nowhere", "emergency.test_trunk_group", "is not a defined trunk_group"),
    ("trunk.1.name", "ecrc-primary", "trunk", "name 'ecrc-primary' is defined twice"),
    ("profile.0.listen", ["tls:127.0.0.1:5061"], "tls", "a tls listener needs tls.cert_file and tls.key_file"),
])
def test_a_broken_reference_is_refused_naming_the_referring_key(path, value, key, reason):
    (problem,) = problems(with_change(path, value))
    assert problem[0] == key and reason in problem[2], problem


def test_a_cross_reference_problem_shows_the_value_at_its_key():
    (problem,) = problems(with_change("route.0.trunk_group", "pstn"))
    assert problem == ("route[0].trunk_group", "pstn", "'pstn' is not a defined trunk_group")


def workers(count: int, **changes: object) -> dict:
    data = with_change("node.workers", count)
    data.update(changes)
    return data


def test_several_workers_are_accepted_with_fixed_ports_and_nothing_shared():
    assert config_from_dict(workers(4)).node.workers == 4


@pytest.mark.parametrize("data, key, reason", [
    (workers(2, admin="127.0.0.1:8060"), "admin", "the admin API changes one process's state"),
    (workers(2, site=[{"name": "hq"}, {"name": "branch"}],
             link=[{"name": "wan", "sites": ["hq", "branch"], "max_calls": 4}]),
     "link[0].max_calls", "call admission control counts calls per process"),
    (workers(2, profile=[{"name": "p", "listen": ["udp:127.0.0.1:0"]}]), "profile[0].listen", "has port 0"),
    (workers(0), "node.workers", "greater than or equal to 1"),
])
def test_what_workers_cannot_share_is_refused_naming_the_key(data, key, reason):
    (problem,) = problems(data)
    assert problem[0] == key and reason in problem[2], problem


def test_every_problem_is_listed_not_only_the_first():
    data = with_change("trunk.0.address", "127.0.0.1:0")
    data["trunk"][1]["fast_failover_s"] = -1
    data["node"]["colour"] = "blue"
    keys = {item[0] for item in problems(data)}
    assert {"trunk[0].address", "trunk[1].fast_failover_s", "node.colour"} <= keys


def test_error_lines_read_file_key_value_reason():
    with pytest.raises(ConfigError) as caught:
        config_from_dict(with_change("trunk.0.fast_failover_s", 0), "site.toml")
    (line,) = caught.value.lines()
    assert line.startswith("site.toml: trunk[0].fast_failover_s = 0: ")
    assert str(caught.value) == line


def test_a_missing_file_and_a_toml_syntax_error_are_config_errors(tmp_path):
    with pytest.raises(ConfigError) as missing:
        load_config(tmp_path / "absent.toml")
    assert missing.value.problems[0][0] == "(file)"
    broken = tmp_path / "broken.toml"
    broken.write_text("[node\nname = 'x'\n", encoding="utf-8")
    with pytest.raises(ConfigError) as syntax:
        load_config(broken)
    assert syntax.value.problems[0][0] == "(syntax)"


def check_config(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "b2bua.cli", "check-config", str(path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


def test_check_config_accepts_the_lab_config_with_exit_0():
    done = check_config(LAB)
    assert done.returncode == 0, done.stderr
    assert "ok" in done.stdout and done.stderr == ""


def test_check_config_lists_every_problem_and_exits_2(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(LAB.read_text(encoding="utf-8")
                   .replace('address = "127.0.0.1:5070"', 'address = "127.0.0.1:70000"')
                   .replace('log_level = "info"', 'log_level = "loud"'), encoding="utf-8")
    done = check_config(bad)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert any(line.startswith(f"{bad}: trunk[0].address = '127.0.0.1:70000': port") for line in lines), lines
    assert any(line.startswith(f"{bad}: node.log_level = 'loud': ") for line in lines), lines
    assert done.stdout == ""


def test_check_config_exits_2_on_a_file_that_is_not_toml_or_not_there(tmp_path):
    garbage = tmp_path / "garbage.toml"
    garbage.write_text("this is = = not toml\n", encoding="utf-8")
    assert check_config(garbage).returncode == 2
    assert check_config(tmp_path / "absent.toml").returncode == 2
