"""Sites and WAN links: where a caller is, and whether the path to a trunk is usable.

The seed's four questions (Lync Server 2013, "Designing the SIP trunk for E9-1-1"):
where the trunks are (a site hosts trunk groups), what happens when the WAN link between
the caller's site and the trunk's site is down (the site's next emergency route, its local
PSTN gateway), whether call admission control applies (cac.py), and disaster tolerance
(trunk groups spanning sites). Everything here is pure: link state is data.
"""

from __future__ import annotations

import functools
import ipaddress
from collections import deque
from dataclasses import dataclass, field

from ..config import B2buaConfig, Link, Site
from ..sip import Request


@dataclass
class LinkState:
    """Run-time state of one link. It is up when neither an operator (config, admin API,
    `b2bua link`) nor failed probes of the far side have put it down: an operator's
    "down" is not undone by a successful probe."""

    name: str
    admin_up: bool = True
    probe_up: bool = True
    reason: str = "config"  # who spoke last: config | admin | probe
    changed_at: float = 0.0

    @property
    def up(self) -> bool:
        return self.admin_up and self.probe_up

    def set(self, up: bool, reason: str, now: float) -> bool:
        """Record what `reason` ("admin" or "probe") says; True when the link's state changed."""
        before = self.up
        if reason == "probe":
            self.probe_up = up
        else:
            self.admin_up = up
        self.reason, self.changed_at = reason, now
        return before != self.up


@dataclass
class SiteMap:
    """The sites and links of a configuration, with lookups the router needs."""

    config: B2buaConfig
    links: dict[str, LinkState] = field(default_factory=dict)

    @classmethod
    def of(cls, config: B2buaConfig) -> SiteMap:
        return cls(config, {link.name: LinkState(link.name, admin_up=link.state == "up") for link in config.link})

    @property
    def enabled(self) -> bool:
        return bool(self.config.site)

    def site_named(self, name: str) -> Site | None:
        return next((site for site in self.config.site if site.name == name), None)

    def link_named(self, name: str) -> Link | None:
        return next((link for link in self.config.link if link.name == name), None)

    def site_of(self, request: Request, source_host: str | None) -> Site | None:
        """The caller's site: by source address first, then From domain, then From user."""
        address = _address(source_host)
        try:
            from_uri = request.from_.uri
        except ValueError:
            from_uri = None
        domain = getattr(from_uri, "host", None)
        user = getattr(from_uri, "user", None)
        if address is not None:
            for site in self.config.site:
                if any(address in _network(net) for net in site.members.sources):
                    return site
        for site in self.config.site:
            if domain and domain.lower() in (item.lower() for item in site.members.from_domains):
                return site
        for site in self.config.site:
            if user and user in site.members.users:
                return site
        return None

    def host_of(self, group: str) -> Site | None:
        """The site that hosts a trunk group (None: not tied to a site, always reachable)."""
        return next((site for site in self.config.site if group in site.trunk_groups), None)

    def path(self, start: Site, end: Site) -> list[Link] | None:
        """The links from one site to another (fewest hops), None when they are not joined."""
        if start.name == end.name:
            return []
        seen = {start.name}
        queue: deque[tuple[str, list[Link]]] = deque([(start.name, [])])
        while queue:
            name, path = queue.popleft()
            for link in self.config.link:
                if name not in link.sites:
                    continue
                other = link.sites[1] if link.sites[0] == name else link.sites[0]
                if other in seen:
                    continue
                if other == end.name:
                    return [*path, link]
                seen.add(other)
                queue.append((other, [*path, link]))
        return None

    def down_links(self, path: list[Link]) -> list[str]:
        return [link.name for link in path if not self.links[link.name].up]


@functools.lru_cache(maxsize=1024)
def _network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """A configured `sources` network, parsed once (not on every INVITE); the config check
    has already refused the ones that do not parse."""
    return ipaddress.ip_network(text, strict=False)


def _address(host: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if not host:
        return None
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
