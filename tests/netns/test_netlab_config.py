"""The namespace lab's B2BUA configuration (no root needed): every variant the scenarios use
is a file `b2bua check-config` accepts, and the TOML writer round-trips."""

from __future__ import annotations

import subprocess
import sys
import tomllib

import pytest

from b2bua.netlab.labconfig import Variant, b2bua_config, to_toml, write_b2bua_config
from b2bua.netlab.topology import HOSTS, TAG_PATTERN, tag_of

VARIANTS = {
    "default (sites, udp+tcp trunks)": Variant(),
    "udp-only trunks": Variant(ecrc_transports=("udp",)),
    "lossy trunk": Variant(ecrc_transports=("udp",), fast_failover_s=5.0, health_timeout_s=1.0,
                           health_failures_to_down=3),
    "no sites": Variant(sites=False),
    "admin API": Variant(admin=True),
}


@pytest.mark.parametrize("variant", VARIANTS.values(), ids=VARIANTS.keys())
def test_every_variant_passes_check_config(tmp_path, variant):
    path = write_b2bua_config(tmp_path / "b2bua.toml", tmp_path, variant)

    done = subprocess.run([sys.executable, "-m", "b2bua.cli", "check-config", str(path)], capture_output=True,
                          text=True, timeout=60)

    assert done.returncode == 0, done.stderr
    assert tomllib.loads(path.read_text()) == b2bua_config(tmp_path, variant)


def test_the_branch_site_falls_back_to_its_pstn_gateway_over_a_probed_wan_link(tmp_path):
    config = b2bua_config(tmp_path)
    [branch] = [site for site in config["site"] if site["name"] == "branch"]
    assert branch["emergency_routes"] == ["ecrc", "pstn-branch"]
    assert branch["members"]["sources"] == ["198.18.0.50/32"]
    [link] = config["link"]
    assert link["sites"] == ["branch", "central"] and link["probe"]["target"] == "198.18.0.32:5060"


def test_toml_writer_round_trips_awkward_values():
    data = {"top": 1, "table": {"quote": 'a "b" \\ c', "masks": {"112": "911"}, "flag": False, "ratio": 0.5},
            "items": [{"name": "x", "list": ["udp", "tcp"], "inline": {"a": 1}}, {"name": "y"}]}
    assert tomllib.loads(to_toml(data)) == data


def test_names_fit_linux_interface_names_and_tags_are_recognised():
    longest_pid = "4194304"  # pid_max on 64-bit Linux
    for host in HOSTS:
        assert len(f"e9l{longest_pid}-{host.code}s") <= 15
    assert tag_of("e9l123-caller") == "e9l123" and tag_of("e9l123c-c1") == "e9l123c"
    assert tag_of("e9lx-caller") is None and tag_of("other-ns") is None
    assert TAG_PATTERN.match("e9l4194304c")
