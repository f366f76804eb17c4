"""docker/compose.yaml without an engine: read it through docker-compose v1, and run its
services in network namespaces (root) the way containers would run them.

`normalised_compose()` is `docker-compose config` as data. `ComposeInNamespaces` gives
each service a namespace with the service's fixed address on one bridge, and an
/etc/hosts (iproute2's /etc/netns/<ns>/hosts) naming every service, as Docker's DNS
would; it runs each service's `command` (`python -m b2bua.cli ...` for the project's
image, SIPp for the caller) with the compose file's mounts mapped to real paths:
`/data/...` to a temporary directory, `/etc/e911/<file>` to a copy of the mounted
configuration whose `/data/` paths are moved there too (nothing else changes), and
`/scenarios` to docker/sipp. `healthy(service)` runs docker/healthcheck.py inside the
service's namespace with the service's environment, as the Dockerfile's HEALTHCHECK does.

Imported as `import compose_support` (pytest puts this directory on sys.path).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from b2bua.netlab.supervisor import Supervisor, tail
from b2bua.netlab.topology import HostSpec, NetlabError, Topology

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker" / "compose.yaml"
HEALTHCHECK = ROOT / "docker" / "healthcheck.py"
NETWORK = "e911"


def docker_compose() -> str:
    found = shutil.which("docker-compose")
    if found is None:
        pytest.fail("docker-compose is missing: `make sipp` installs Debian's docker-compose (v1)")
    return found


def compose(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([docker_compose(), "-f", str(COMPOSE), *args], capture_output=True, text=True,
                          timeout=60, cwd=ROOT, env={"PATH": "/usr/bin:/bin", "HOME": "/tmp"})


def normalised_compose() -> dict:
    """`docker-compose config` read with the PyYAML of docker-compose's own interpreter (the
    project does not depend on PyYAML)."""
    done = compose("config")
    assert done.returncode == 0, done.stderr
    interpreter = Path(docker_compose()).read_text(errors="replace").splitlines()[0].removeprefix("#!").split()
    if not interpreter or not Path(interpreter[0]).exists():
        pytest.fail(f"cannot tell docker-compose's Python from {docker_compose()}")
    to_json = subprocess.run([*interpreter, "-c", "import json, sys, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)"],
                             input=done.stdout, capture_output=True, text=True, timeout=30)
    assert to_json.returncode == 0, to_json.stderr
    return json.loads(to_json.stdout)


def mounts(service: dict) -> list[tuple[str, str]]:
    """(source, target) of each mount; source is an absolute path or a volume name."""
    found = []
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            found.append((volume.get("source", ""), volume.get("target", "")))
        else:
            source, _, rest = volume.partition(":")
            found.append((source, rest.split(":", 1)[0]))
    return found


def address_of(service: dict) -> str:
    return service["networks"][NETWORK]["ipv4_address"]


class ComposeInNamespaces:
    def __init__(self, compose_config: dict, run_dir: Path) -> None:
        self.config = compose_config
        self.services = compose_config["services"]
        self.run_dir = run_dir
        self.data = run_dir / "data"
        self.data.mkdir(parents=True, exist_ok=True)
        hosts = tuple(HostSpec(name, f"c{index}", address_of(service), "lan")
                      for index, (name, service) in enumerate(sorted(self.services.items())))
        # A second lab may run in this process (the session's): tag e9l<pid>c, 2-letter codes.
        self.topology = Topology(tag=f"e9l{os.getpid()}c", run_dir=run_dir, hosts=hosts,
                                 names={name: address_of(service) for name, service in self.services.items()})
        self.supervisor = Supervisor(run_dir)

    def __enter__(self) -> ComposeInNamespaces:
        self.topology.build()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> list[str]:
        self.supervisor.stop_all()
        self.topology.kill_inside()
        self.topology.remove()
        return self.topology.leftovers() + [f"process {pid}" for pid in self.supervisor.running_pids()]

    # -- mounts ----------------------------------------------------------------------------
    def _path_for(self, service: str, argument: str) -> str:
        if argument.startswith("/data/"):
            return str(self.data / argument.removeprefix("/data/"))
        for source, target in mounts(self.services[service]):
            if not source.startswith("/"):
                continue
            if argument == target and source.endswith(".toml"):
                return str(self._config_copy(Path(source)))
            if argument.startswith(target + "/"):
                return source + argument[len(target):]
        return argument

    def _config_copy(self, source: Path) -> Path:
        copy = self.run_dir / source.name
        copy.write_text(source.read_text().replace('"/data/', f'"{self.data}/'))
        return copy

    def argv(self, service: str) -> list[str]:
        spec = self.services[service]
        command = [self._path_for(service, item) for item in spec["command"]]
        if spec["build"]["target"] == "caller":
            return [shutil.which("sipp") or "sipp", *command]
        return [sys.executable, "-m", "b2bua.cli", *command]

    # -- running ---------------------------------------------------------------------------
    def start(self, service: str) -> None:
        self.supervisor.start(service, self.topology.netns(service), self.argv(service))

    def healthy(self, service: str, environment: dict[str, str] | None = None) -> bool:
        """The image's HEALTHCHECK, in the service's namespace, with its environment (or `environment`)."""
        variables = environment if environment is not None else (self.services[service].get("environment") or {})
        environment = [f"{key}={value}" for key, value in variables.items()]
        done = subprocess.run(["ip", "netns", "exec", self.topology.netns(service), "env", *environment,
                               sys.executable, str(HEALTHCHECK)], capture_output=True, timeout=15)
        return done.returncode == 0

    def wait_healthy(self, service: str, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        process = self.supervisor.processes[service]
        while not self.healthy(service):
            if not process.alive():
                raise NetlabError(f"{service} exited with {process.process.returncode}:\n{tail(process.log_path)}")
            if time.monotonic() >= deadline:
                raise NetlabError(f"{service} not healthy within {timeout:g} s:\n{tail(process.log_path)}")
            time.sleep(0.3)

    def up(self) -> None:
        """Start the long-running services in depends_on order, each once its dependencies
        are healthy (condition: service_healthy)."""
        started: set[str] = set()
        pending = [name for name, spec in self.services.items() if spec.get("restart") != "no"]
        while pending:
            ready = [name for name in pending if set(self.services[name].get("depends_on") or {}) <= started]
            if not ready:
                raise NetlabError(f"depends_on cannot be satisfied for {pending}")
            for name in ready:
                self.start(name)
            for name in ready:
                self.wait_healthy(name)
                started.add(name)
                pending.remove(name)

    def run_caller(self, service: str = "caller", *, extra_target: str | None = None, timeout: float = 60.0
                   ) -> subprocess.CompletedProcess:
        """Run the one-shot caller service (SIPp) to its end; `extra_target` replaces the
        B2BUA it calls (the last argument), as `docker compose run caller ... HOST:PORT` would."""
        argv = self.argv(service)
        if extra_target is not None:
            argv[-1] = extra_target
        return self.supervisor.run(f"{service}-{int(time.monotonic() * 1000)}", self.topology.netns(service),
                                   argv, timeout)
