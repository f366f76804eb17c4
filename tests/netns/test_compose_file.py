"""docker/compose.yaml, checked without a Docker engine.

`docker-compose` v1 (Debian's package; `make sipp` installs it) validates the file with
`config -q` and prints it normalised with `config`. Then: every config file a service
mounts passes `b2bua check-config`, every command line given to the project's image is one
the `b2bua` CLI accepts, the SIPp caller's scenarios exist, every service has its own
fixed address on the user-defined network. Last (root, marker `netns`), the services run
in network namespaces with those addresses and names, and the caller's call is recorded.
"""

from __future__ import annotations

import ipaddress
import subprocess
import sys
from pathlib import Path

import pytest

import compose_support
from compose_support import ROOT, compose, mounts
from netlab_support import root_or_skip

SERVICES = {"b2bua-certified", "b2bua-noncertified", "ecrc-primary", "ecrc-secondary", "pstn-gateway", "caller"}


@pytest.fixture(scope="module")
def normalised() -> dict:
    """`docker-compose config` as data (paths made absolute, anchors and defaults resolved)."""
    return compose_support.normalised_compose()


def test_the_compose_file_is_valid_for_docker_compose():
    done = compose("config", "-q")
    assert done.returncode == 0, done.stderr
    services = compose("config", "--services")
    assert set(services.stdout.split()) == SERVICES


def _mounts(service: dict) -> list[tuple[Path, str]]:
    return [(Path(source), target) for source, target in mounts(service) if source.startswith("/")]


def test_every_mounted_config_passes_check_config(normalised):
    checked = []
    for name, service in normalised["services"].items():
        for source, target in _mounts(service):
            if source.suffix != ".toml":
                continue
            assert source.is_file(), f"{name} mounts {source}, which does not exist"
            assert source.parent == ROOT / "configs", f"{name}: configs come from configs/ ({source})"
            done = subprocess.run([sys.executable, "-m", "b2bua.cli", "check-config", str(source)],
                                  capture_output=True, text=True, timeout=60, cwd=ROOT)
            assert done.returncode == 0, f"{name}: {source.name}:\n{done.stderr}"
            if "--config" in service.get("command", []):
                # the file the command names is the file mounted
                assert service["command"][service["command"].index("--config") + 1] == target
            checked.append(source.name)
    assert sorted(checked) == ["compose-noncertified.toml", "compose.toml"]


def test_every_command_for_the_project_image_is_accepted_by_the_b2bua_cli(normalised):
    from b2bua.cli import _parser

    parser = _parser()
    for name, service in normalised["services"].items():
        if name == "caller":
            continue
        assert service["build"]["dockerfile"] == "docker/Dockerfile" and service["build"]["target"] == "b2bua"
        try:
            parser.parse_args(service["command"])
        except SystemExit as exit_:
            pytest.fail(f"{name}: `b2bua {' '.join(service['command'])}` is refused ({exit_.code})")


def test_the_caller_runs_sipp_with_the_projects_scenarios(normalised):
    caller = normalised["services"]["caller"]
    assert caller["build"]["target"] == "caller"
    mounts = dict((target, source) for source, target in _mounts(caller))
    assert mounts.get("/scenarios") == ROOT / "docker" / "sipp"
    command = caller["command"]
    scenario = command[command.index("-sf") + 1]
    assert scenario.startswith("/scenarios/")
    assert (ROOT / "docker" / "sipp" / scenario.removeprefix("/scenarios/")).is_file()
    assert command[-1] == "b2bua-certified:5060"


def test_every_service_has_its_own_address_and_sip_is_published_over_udp(normalised):
    subnet = ipaddress.ip_network(normalised["networks"]["e911"]["ipam"]["config"][0]["subnet"])
    addresses = {}
    for name, service in normalised["services"].items():
        address = ipaddress.ip_address(service["networks"]["e911"]["ipv4_address"])
        assert address in subnet, name
        addresses[name] = address
    assert len(set(addresses.values())) == len(addresses)
    for name in ("b2bua-certified", "b2bua-noncertified"):
        ports = [str(item) for item in normalised["services"][name]["ports"]]
        assert any(item.endswith(":5060/udp") for item in ports), (name, ports)
        assert any(item.endswith(":5060/tcp") for item in ports), (name, ports)
        # the B2BUA listens on the address compose gives it (what it writes in Via/Contact)
        config = (ROOT / "configs" / ("compose.toml" if name == "b2bua-certified" else "compose-noncertified.toml")).read_text()
        assert f"udp:{addresses[name]}:5060" in config, name
    for name in ("ecrc-primary", "ecrc-secondary", "pstn-gateway"):
        command = normalised["services"][name]["command"]
        assert f"udp:{addresses[name]}:5060" in command, (name, command)


@pytest.mark.netns
def test_the_compose_services_run_in_namespaces_and_the_callers_call_is_recorded(normalised, tmp_path):
    """What `docker compose up` would do, without an engine: each service in its own
    namespace with its compose address, service names resolvable, its command run, its
    health check passing; then the caller service's SIPp call through both SBCs."""
    root_or_skip()
    from b2bua.testbench.store import CallStore

    with compose_support.ComposeInNamespaces(normalised, tmp_path) as lab:
        lab.up()  # ECRCs and gateway healthy first (HTTP /health), then both B2BUAs (SIP OPTIONS)
        # The health check does fail when nothing answers (both modes).
        assert not lab.healthy("b2bua-certified", {"HEALTH_URL": "http://127.0.0.1:8999/health"})
        assert not lab.healthy("b2bua-certified", {"HEALTH_SIP": "198.18.100.20:5999"})
        certified = lab.run_caller()
        stripped = lab.run_caller(extra_target="b2bua-noncertified:5060")
        assert certified.returncode == 0, certified.stdout[-2000:] + certified.stderr[-2000:]
        assert stripped.returncode == 0, stripped.stdout[-2000:] + stripped.stderr[-2000:]
        store = CallStore(lab.data / "ecrc-primary.sqlite")
        try:
            records = list(reversed(store.list(limit=100)))
        finally:
            store.close()
        left = lab.close()

    assert left == []
    assert len(records) == 2, records
    through_certified, through_stripping = records
    assert through_certified["transport"] == "TCP"  # 1.9 KB INVITE, trunk allows tcp (RFC 3261 §18.1.1)
    assert through_certified["disposition"] == "routable_by_location"
    assert through_certified["source"].startswith("198.18.100.20:")
    assert through_stripping["verdict"] == "no_location"  # the non-certified SBC stripped it
    assert through_stripping["source"].startswith("198.18.100.21:")
    for name in ("cdr-certified.jsonl", "cdr-noncertified.jsonl"):
        assert (tmp_path / "data" / name).read_text().count("\n") == 1, name
