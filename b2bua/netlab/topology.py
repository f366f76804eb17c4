"""The lab's hosts as Linux network namespaces, joined by veth pairs and two bridges.

```
   branch side (bridge <tag>-brb)                          central side (bridge <tag>-brc)
     caller          198.18.0.10 ─┐                      ┌─ ecrc-primary    198.18.0.31
     b2bua           198.18.0.20 ─┤── WAN veth pair ─────┤
     pstn (gateway)  198.18.0.40 ─┤  <tag>-wanb/-wanc    └─ ecrc-secondary  198.18.0.32
     branch (phone)  198.18.0.50 ─┘
```

Every host is a namespace `<tag>-<role>` with one veth (`<tag>-<code>`, MTU 1500, the
address /24 and no default route: the lab cannot reach anything outside 198.18.0.0/24).
Its peer (`<tag>-<code>s`) is a port of a bridge in the switch namespace `<tag>-sw`. The
two bridges are joined by the WAN veth pair, so `ip link set <tag>-wanb down` cuts the
branch side (the B2BUA's SIP trunk) off the ECRCs while the branch phone, the caller and the
local PSTN gateway still reach the B2BUA. Every veth is created directly inside its
namespace (`ip link add ... netns`): nothing ever appears in the root namespace, and
deleting the namespaces removes every interface and both bridges.

`<tag>` is `e9l<pid>`, the pid of the process that built the lab: parallel runs never clash,
and a leftover of a run that was killed can be told from a live one (`stale_tags`). A
second lab in the same process adds a letter (`e9l<pid>c`) and uses 2-letter host codes.

Link impairment (loss and delay): `tc qdisc ... netem` on both ends of a host's veth when the
kernel has netem; otherwise (CONFIG_NET_SCH_NETEM unset, as on this project's CI kernel) a
userspace shaper (`b2bua.netlab.shaper`) is spliced into the host's bridge port, see
`impair`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

SUBNET = "198.18.0.0/24"  # RFC 2544 benchmarking range: never routed, never someone's LAN
PREFIX = "e9l"
TAG_PATTERN = re.compile(rf"^{PREFIX}(\d+)[a-z]?$")  # e9l<pid>, or e9l<pid><letter> for a second lab
IP_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class HostSpec:
    role: str  # namespace suffix and the name used everywhere in the lab
    code: str  # 3 letters: interface names are <tag>-<code>, at most 15 characters
    address: str
    side: str  # "branch" or "central": which bridge the host hangs on


HOSTS: tuple[HostSpec, ...] = (
    HostSpec("caller", "cal", "198.18.0.10", "branch"),
    HostSpec("b2bua", "b2b", "198.18.0.20", "branch"),
    HostSpec("pstn", "pst", "198.18.0.40", "branch"),
    HostSpec("branch", "brn", "198.18.0.50", "branch"),
    HostSpec("ecrc-primary", "ec1", "198.18.0.31", "central"),
    HostSpec("ecrc-secondary", "ec2", "198.18.0.32", "central"),
)
ROLES = tuple(host.role for host in HOSTS)


def host_spec(role: str) -> HostSpec:
    for host in HOSTS:
        if host.role == role:
            return host
    raise KeyError(f"no host {role!r} in the lab (hosts: {', '.join(ROLES)})")


class NetlabError(RuntimeError):
    """A step of building or changing the topology failed (the message says which)."""


def require_root() -> None:
    if os.geteuid() != 0:
        raise NetlabError("network namespaces need root (run as root, as CI does)")
    if shutil.which("ip") is None:
        raise NetlabError("the `ip` command is missing (Debian package iproute2; `make sipp` installs it)")


def run_ip(args: Sequence[str], *, check: bool = True, timeout: float = IP_TIMEOUT_S) -> subprocess.CompletedProcess:
    """`ip ARGS...`, bounded in time; NetlabError with ip's own message on failure."""
    return _run(["ip", *args], check=check, timeout=timeout)


def _run(argv: Sequence[str], *, check: bool = True, timeout: float = IP_TIMEOUT_S) -> subprocess.CompletedProcess:
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise NetlabError(f"`{' '.join(argv)}` did not finish within {timeout:g} s") from None
    if check and done.returncode != 0:
        raise NetlabError(f"`{' '.join(argv)}` failed: {(done.stderr or done.stdout).strip()}")
    return done


def list_namespaces() -> list[str]:
    done = run_ip(["-json", "netns", "list"], check=False)
    text = done.stdout.strip()
    if not text:
        return []
    try:
        return [item["name"] for item in json.loads(text)]
    except (ValueError, KeyError, TypeError):
        return [line.split()[0] for line in text.splitlines() if line.strip()]


def list_links(namespace: str | None = None) -> list[str]:
    """Interface names in a namespace (None: the root namespace)."""
    args = ["-json", "link", "show"] if namespace is None else ["-n", namespace, "-json", "link", "show"]
    done = run_ip(args, check=False)
    try:
        return [item["ifname"] for item in json.loads(done.stdout or "[]")]
    except (ValueError, KeyError, TypeError):
        return []


def namespace_pids(namespace: str) -> list[int]:
    done = run_ip(["netns", "pids", namespace], check=False)
    return [int(item) for item in done.stdout.split() if item.isdigit()]


def tag_of(name: str) -> str | None:
    """`e9l1234-caller` -> `e9l1234`; None for a name the lab did not make."""
    head = name.split("-", 1)[0]
    return head if TAG_PATTERN.match(head) and "-" in name else None


def stale_tags() -> list[str]:
    """Tags of lab namespaces whose creating process is gone (a run that was SIGKILLed)."""
    tags = set()
    for name in list_namespaces():
        tag = tag_of(name)
        if tag is None:
            continue
        pid = int(TAG_PATTERN.match(tag).group(1))
        if not Path(f"/proc/{pid}").exists():
            tags.add(tag)
    return sorted(tags)


@dataclass
class Impairment:
    """Loss and delay on one host's link, in both directions."""

    role: str
    loss: float  # 0..1, per packet
    delay_ms: float
    backend: str  # "netem" or "shaper"
    shaper: subprocess.Popen | None = None
    stats_path: Path | None = None
    log_path: Path | None = None


_LIVE_TAGS: set[str] = set()  # tags built by this process and not yet removed


@dataclass
class Topology:
    """Builds, changes and removes the lab's namespaces. Every method is bounded in time.

    `hosts` defaults to the lab's six; another set (the compose services) works the same
    way: one bridge per `side`, two sides joined by the WAN veth pair. `names` are written
    to `/etc/netns/<ns>/hosts` for every host (iproute2 bind-mounts that file over
    /etc/hosts for `ip netns exec`), so processes resolve host names as a container
    resolves service names; the files go with the namespaces.
    """

    tag: str = field(default_factory=lambda: f"{PREFIX}{os.getpid()}")
    run_dir: Path | None = None  # where shaper logs and statistics go
    hosts: tuple[HostSpec, ...] = HOSTS
    names: dict[str, str] = field(default_factory=dict)  # host name -> address, for /etc/hosts
    built: bool = False
    impairments: dict[str, Impairment] = field(default_factory=dict)
    _created: list[str] = field(default_factory=list)  # namespaces, in creation order

    # -- names -------------------------------------------------------------------------------
    def spec(self, role: str) -> HostSpec:
        for host in self.hosts:
            if host.role == role:
                return host
        raise KeyError(f"no host {role!r} in the lab (hosts: {', '.join(h.role for h in self.hosts)})")

    def netns(self, role: str) -> str:
        if role == "sw":
            return f"{self.tag}-sw"
        self.spec(role)
        return f"{self.tag}-{role}"

    def host_if(self, role: str) -> str:
        return f"{self.tag}-{self.spec(role).code}"

    def switch_if(self, role: str) -> str:
        return f"{self.tag}-{self.spec(role).code}s"

    @property
    def sides(self) -> list[str]:
        return sorted({host.side for host in self.hosts})

    def bridge(self, side: str) -> str:
        return f"{self.tag}-br{side[0]}"

    @property
    def wan_if(self) -> str:
        """The WAN veth end on the branch bridge: `ip link set` it down to cut the WAN."""
        return f"{self.tag}-wanb"

    @property
    def namespaces(self) -> list[str]:
        return [self.netns("sw"), *(self.netns(host.role) for host in self.hosts)]

    def address(self, role: str) -> str:
        return self.spec(role).address

    def _etc_dir(self, netns: str) -> Path:
        return Path("/etc/netns") / netns

    # -- build / remove -----------------------------------------------------------------------
    def build(self) -> None:
        """Create every namespace, bridge and veth; bring them up. On failure whatever was
        made is removed before the error propagates."""
        require_root()
        longest = max([len(host.code) for host in self.hosts] + [3])  # "wanb"
        if len(self.tag) + longest + 2 > 15:
            raise NetlabError(f"tag {self.tag!r} with {longest}-letter host codes makes interface names "
                              "longer than 15 characters")
        if self.tag in _LIVE_TAGS:
            raise NetlabError(f"this process already runs a lab with tag {self.tag} (give another tag)")
        if self.existing_namespaces():
            # Our tag, yet not built by this process: a dead run whose pid we now have.
            self.kill_inside()
            self.remove()
        _LIVE_TAGS.add(self.tag)
        try:
            self._build()
        except BaseException:
            self.remove()
            raise
        self.built = True

    def kill_inside(self) -> None:
        """End, by pid, what runs inside this tag's namespaces (only lab processes go there)."""
        import signal

        for name in self.existing_namespaces():
            for pid in namespace_pids(name):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def _add_netns(self, name: str) -> None:
        run_ip(["netns", "add", name])
        self._created.append(name)
        run_ip(["-n", name, "link", "set", "lo", "up"])

    def _build(self) -> None:
        sw = self.netns("sw")
        self._add_netns(sw)
        for side in self.sides:
            bridge = self.bridge(side)
            # No STP and no forward delay: a port forwards as soon as it is up.
            run_ip(["-n", sw, "link", "add", bridge, "type", "bridge", "stp_state", "0", "forward_delay", "0"])
            run_ip(["-n", sw, "link", "set", bridge, "up"])
        if len(self.sides) == 2:
            first, second = self.sides
            wan_first, wan_second = self.wan_if, f"{self.tag}-wanc"
            run_ip(["link", "add", wan_first, "netns", sw, "mtu", "1500", "type", "veth",
                    "peer", "name", wan_second, "netns", sw, "mtu", "1500"])
            run_ip(["-n", sw, "link", "set", wan_first, "master", self.bridge(first), "up"])
            run_ip(["-n", sw, "link", "set", wan_second, "master", self.bridge(second), "up"])
        for host in self.hosts:
            ns = self.netns(host.role)
            self._add_netns(ns)
            if self.names:
                etc = self._etc_dir(ns)
                etc.mkdir(parents=True, exist_ok=True)
                lines = ["127.0.0.1 localhost"] + [f"{address} {name}" for name, address in self.names.items()]
                (etc / "hosts").write_text("\n".join(lines) + "\n")
            inner, outer = self.host_if(host.role), self.switch_if(host.role)
            run_ip(["link", "add", inner, "netns", ns, "mtu", "1500", "type", "veth",
                    "peer", "name", outer, "netns", sw, "mtu", "1500"])
            run_ip(["-n", sw, "link", "set", outer, "master", self.bridge(host.side), "up"])
            run_ip(["-n", ns, "addr", "add", f"{host.address}/24", "dev", inner])
            run_ip(["-n", ns, "link", "set", inner, "up"])

    def remove(self) -> list[str]:
        """Remove every namespace of this tag (their veths and bridges go with them).
        Returns what could not be removed (empty when all is gone)."""
        for role in list(self.impairments):
            try:
                self.clear_impairment(role)
            except NetlabError:
                pass
        problems = []
        names = set(self._created) | {name for name in list_namespaces() if name.startswith(self.tag + "-")}
        for name in sorted(names, key=lambda n: n.endswith("-sw")):  # hosts first, the switch last
            done = run_ip(["netns", "del", name], check=False)
            if done.returncode != 0 and name in list_namespaces():
                problems.append(f"{name}: {done.stderr.strip()}")
        etc_root = Path("/etc/netns")
        for etc in etc_root.glob(f"{self.tag}-*") if etc_root.is_dir() else []:
            shutil.rmtree(etc, ignore_errors=True)
            if etc.exists():
                problems.append(f"{etc}: could not be removed")
        if self.names and etc_root.is_dir():
            try:
                etc_root.rmdir()  # only when empty: made for this lab's hosts files
            except OSError:
                pass
        self._created.clear()
        self.built = False
        _LIVE_TAGS.discard(self.tag)
        return problems

    def existing_namespaces(self) -> list[str]:
        return [name for name in list_namespaces() if name.startswith(self.tag + "-")]

    def leftovers(self) -> list[str]:
        """Namespaces and root-namespace interfaces of this tag that still exist."""
        found = [f"netns {name}" for name in list_namespaces() if name.startswith(self.tag + "-")]
        found += [f"link {name}" for name in list_links() if name.startswith(self.tag + "-")]
        if Path("/etc/netns").is_dir():
            found += [f"file {path}" for path in Path("/etc/netns").glob(f"{self.tag}-*")]
        return found

    # -- changing the network at run time ----------------------------------------------------
    def set_link(self, role: str, up: bool) -> None:
        """The host's own interface up or down (the host 'disappears' from the network; it
        keeps running, and no ICMP tells anyone)."""
        run_ip(["-n", self.netns(role), "link", "set", self.host_if(role), "up" if up else "down"])

    def set_wan(self, up: bool) -> None:
        run_ip(["-n", self.netns("sw"), "link", "set", self.wan_if, "up" if up else "down"])

    def link_state(self, role: str) -> str:
        done = run_ip(["-n", self.netns(role), "-json", "link", "show", self.host_if(role)])
        return json.loads(done.stdout)[0].get("operstate", "UNKNOWN")

    def ip_counters(self, role: str) -> dict[str, int]:
        """The namespace's IPv4 counters (/proc/net/snmp `Ip:`): FragCreates, ReasmOKs..."""
        done = _run(["ip", "netns", "exec", self.netns(role), "cat", "/proc/net/snmp"])
        lines = [line.split() for line in done.stdout.splitlines() if line.startswith("Ip:")]
        if len(lines) < 2:
            raise NetlabError(f"no Ip: counters in /proc/net/snmp of {role}")
        return {name: int(value) for name, value in zip(lines[0][1:], lines[1][1:])}

    # -- impairment --------------------------------------------------------------------------
    def impair(self, role: str, *, loss: float, delay_ms: float, seed: int = 1) -> Impairment:
        """Packet loss and delay on the host's link, both directions (a bad WAN toward it).

        Kernel netem when the kernel has it; else the userspace shaper: the host's bridge
        port leaves the bridge and a shaper process copies frames between it and a fresh
        veth pair whose other end joins the bridge, dropping and delaying IPv4 frames.
        """
        if role in self.impairments:
            self.clear_impairment(role)
        if not 0 <= loss < 1 or delay_ms < 0:
            raise NetlabError(f"loss must be 0..1 and delay >= 0 (got {loss}, {delay_ms})")
        if self._try_netem(role, loss, delay_ms):
            impairment = Impairment(role, loss, delay_ms, "netem")
        else:
            impairment = self._start_shaper(role, loss, delay_ms, seed)
        self.impairments[role] = impairment
        return impairment

    def _try_netem(self, role: str, loss: float, delay_ms: float) -> bool:
        if shutil.which("tc") is None:
            return False
        args = ["root", "netem", "loss", f"{loss * 100:g}%", "delay", f"{delay_ms:g}ms"]
        first = _run(["tc", "-n", self.netns("sw"), "qdisc", "replace", "dev", self.switch_if(role), *args], check=False)
        if first.returncode != 0:
            return False  # "Specified qdisc kind is unknown": no netem in this kernel
        _run(["tc", "-n", self.netns(role), "qdisc", "replace", "dev", self.host_if(role), *args])
        return True

    def _shaper_ports(self, role: str) -> tuple[str, str]:
        code = self.spec(role).code
        return f"{self.tag}-{code}i", f"{self.tag}-{code}j"

    def _start_shaper(self, role: str, loss: float, delay_ms: float, seed: int) -> Impairment:
        sw = self.netns("sw")
        port, spliced = self.switch_if(role), self._shaper_ports(role)
        inner, outer = spliced
        run_ip(["link", "add", inner, "netns", sw, "mtu", "1500", "type", "veth",
                "peer", "name", outer, "netns", sw, "mtu", "1500"])
        run_dir = self.run_dir or Path("/tmp")
        stats = run_dir / f"shaper-{role}.json"
        log_path = run_dir / f"shaper-{role}.log"
        stats.unlink(missing_ok=True)
        try:
            run_ip(["-n", sw, "link", "set", outer, "master", self.bridge(self.spec(role).side), "up"])
            run_ip(["-n", sw, "link", "set", inner, "promisc", "on", "up"])
            run_ip(["-n", sw, "link", "set", port, "nomaster", "promisc", "on"])
            from .supervisor import spawn

            shaper = spawn(sw, [sys.executable, "-m", "b2bua.netlab.shaper", port, inner, "--loss", str(loss),
                                "--delay-ms", str(delay_ms), "--seed", str(seed), "--stats", str(stats)], log_path)
            impairment = Impairment(role, loss, delay_ms, "shaper", shaper, stats, log_path)
            from .supervisor import wait_for_line

            wait_for_line(log_path, "shaper.ready", 10.0, shaper)
        except BaseException:
            self._unsplice(role)
            raise
        return impairment

    def _unsplice(self, role: str) -> None:
        sw = self.netns("sw")
        inner, _ = self._shaper_ports(role)
        run_ip(["-n", sw, "link", "del", inner], check=False)
        run_ip(["-n", sw, "link", "set", self.switch_if(role), "promisc", "off",
                "master", self.bridge(self.spec(role).side)], check=False)

    def clear_impairment(self, role: str) -> dict:
        """Back to a clean link; returns what the impairment did (sent, dropped...)."""
        impairment = self.impairments.pop(role, None)
        if impairment is None:
            return {}
        if impairment.backend == "netem":
            stats = {"backend": "netem"}
            for ns, dev in ((self.netns("sw"), self.switch_if(role)), (self.netns(role), self.host_if(role))):
                shown = _run(["tc", "-n", ns, "-s", "-json", "qdisc", "show", "dev", dev], check=False)
                try:
                    qdisc = json.loads(shown.stdout)[0]
                    stats[dev] = {"sent": qdisc.get("packets"), "dropped": qdisc.get("drops")}
                except (ValueError, IndexError, KeyError):
                    pass
                _run(["tc", "-n", ns, "qdisc", "del", "dev", dev, "root"], check=False)
            return stats
        from .supervisor import stop_process

        if impairment.shaper is not None:
            stop_process(impairment.shaper, 5.0)
        self._unsplice(role)
        try:
            stats = json.loads(impairment.stats_path.read_text()) if impairment.stats_path else {}
        except (OSError, ValueError):
            stats = {}
        stats["backend"] = "shaper"
        return stats
