"""Where does this call go? A pure function of the request, the configuration and state.

`plan_route(request, config, health, turn, context)` returns a `RoutePlan`: whether the
call is an emergency call (and why), and the ordered targets to try, each with the site
it is reached at, the WAN links it crosses and its CAC standing. No sockets, no clock:
the caller supplies trunk health, the round-robin turn, link state and CAC usage, so
every decision is unit-tested.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..config import B2buaConfig, Emergency, Route, Site, Trunk, TrunkGroup
from ..sip import AbsoluteUri, Request, SipUri, TelUri, Uri
from .cac import CacLedger
from .sites import SiteMap

_VISUAL_SEPARATORS = str.maketrans("", "", "-.() ")


@dataclass(frozen=True)
class EmergencyMatch:
    """Why a call is an emergency call."""

    reason: str  # dial-string | dial-mask | service-urn | test-call | priority
    dialled: str  # what the caller dialled, as found in the Request-URI or To
    number: str  # what it stands for after masks (911 for 112), or the service URN
    is_test: bool = False  # a 933-style test call: read back, not a real emergency


@dataclass(frozen=True)
class Target:
    """One trunk to try, and how the call gets there from the caller's site."""

    trunk: Trunk
    group: str
    site: str | None  # the site the trunk is reached at (None: no site model)
    links: tuple[str, ...]  # WAN links crossed from the caller's site
    cac: str  # none | counted | over-limit (an emergency call admitted by policy `exempt`)
    pstn_reason: str | None = None  # why earlier routes were passed over ("wan down: b1-hq")


@dataclass
class RoutePlan:
    emergency: EmergencyMatch | None
    group: TrunkGroup | None
    trunks: list[Trunk]
    reason: str  # how the plan was made, for logs and the CDR
    skipped: list[str] = field(default_factory=list)  # trunks known down, tried last or not at all
    dialled: str | None = None
    number_out: str | None = None  # the number for leg B when the route rewrites it (strip_plus)
    site: str | None = None  # the caller's site
    reject: tuple[int, str] | None = None  # refuse the call: (status, reason), e.g. CAC `block`
    targets: list[Target] = field(default_factory=list)  # parallel to `trunks`
    passed_over: list[str] = field(default_factory=list)  # routes not usable, and why
    target_uri: str | None = None  # leg B's Request-URI when it is not made from the dialled number (callbacks)

    def target(self, index: int) -> Target:
        if index < len(self.targets):
            return self.targets[index]
        return Target(self.trunks[index], self.group.name if self.group else "", None, (), "none")

    @property
    def routable(self) -> bool:
        return bool(self.trunks)


def dialled_number(uri: Uri) -> str | None:
    """The number a URI carries: `sip:+911;phone-context=x@h;user=phone` -> `+911`,
    `tel:+1-201-555-0123` -> `+12015550123`. None when the user part is not a number."""
    if isinstance(uri, TelUri):
        user = uri.number
    elif isinstance(uri, SipUri):
        if uri.user is None:
            return None
        user = uri.user.split(";", 1)[0]  # drop user-part parameters such as phone-context
    else:
        return None
    user = user.translate(_VISUAL_SEPARATORS)
    return user if re.fullmatch(r"\+?[0-9*#]+", user) else None


def service_urn(uri: Uri) -> str | None:
    """`urn:service:sos.fire`, also as baresip writes it: `sip:urn:service:sos@host`."""
    if isinstance(uri, AbsoluteUri) and uri.scheme == "urn":
        text = f"urn:{uri.rest}"
    elif isinstance(uri, SipUri) and uri.user is not None:
        text = uri.user + (f":{uri.password}" if uri.password is not None else "")
    else:
        return None
    text = text.split(";", 1)[0].lower()
    return text if text.startswith("urn:service:") else None


def is_sos_urn(urn: str) -> bool:
    """RFC 5031: `urn:service:sos` and its sub-services `urn:service:sos.<x>`."""
    return urn == "urn:service:sos" or urn.startswith("urn:service:sos.")


def is_test_urn(urn: str) -> bool:
    """RFC 6881 §17.2: `urn:service:test.sos` and its sub-services ask for a test call."""
    return urn == "urn:service:test.sos" or urn.startswith("urn:service:test.sos.")


def detect_emergency(request: Request, emergency: Emergency) -> EmergencyMatch | None:
    """Is this INVITE an emergency call? (e911-reference §3.7 item 1; MS-SIPRE §3.17.5.2.)

    Looked at in order: Request-URI, then To; for each a service URN, then the dial
    strings, test numbers and masks (a leading `+` is ignored: Lync prepends one to its
    dial string, e911-reference §1.2). Last, `Priority: emergency` marks any call.
    """
    candidates: list[Uri] = [request.uri]
    try:
        candidates.append(request.to.uri)
    except ValueError:
        pass
    for uri in candidates:
        urn = service_urn(uri)
        if urn is not None and emergency.service_urn:
            if is_test_urn(urn):
                return EmergencyMatch("test-call", str(uri), urn, is_test=True)
            if is_sos_urn(urn):
                return EmergencyMatch("service-urn", str(uri), urn)
        number = dialled_number(uri)
        if number is None:
            continue
        bare = number.lstrip("+")
        if bare in (item.lstrip("+") for item in emergency.dial_strings):
            return EmergencyMatch("dial-string", number, bare)
        if bare in (item.lstrip("+") for item in emergency.test_numbers):
            return EmergencyMatch("test-call", number, bare, is_test=True)
        for mask, target in emergency.dial_masks.items():
            if bare == mask.lstrip("+"):
                return EmergencyMatch("dial-mask", number, target.lstrip("+"))
    if emergency.priority_header:
        priority = request.headers.get("Priority")
        if priority is not None and priority.strip().lower() == "emergency":
            dialled = dialled_number(request.uri) or str(request.uri)
            return EmergencyMatch("priority", dialled, dialled)
    return None


def order_trunks(group: TrunkGroup, trunks: list[Trunk], turn: int) -> list[Trunk]:
    """Priority: as listed. Round robin: rotated by the turn (Kamailio dispatcher alg 4)."""
    if group.strategy == "round_robin" and trunks:
        start = turn % len(trunks)
        return trunks[start:] + trunks[:start]
    return list(trunks)


@dataclass(frozen=True)
class SiteContext:
    """What routing needs of the site model: where the caller is, link state, CAC usage."""

    sites: SiteMap
    cac: CacLedger
    source_host: str | None = None  # where the INVITE came from (site membership)
    kbps: int = 80  # the call's media bandwidth, for CAC


def plan_route(
    request: Request,
    config: B2buaConfig,
    health: Mapping[str, bool] | None = None,
    turn: int = 0,
    context: SiteContext | None = None,
) -> RoutePlan:
    """Decide the ordered targets for an INVITE.

    `health` maps a trunk name to False when probing has declared it down (missing means
    up). A down trunk is skipped; for an emergency call it is still tried, last, and
    when every trunk is down an emergency call is attempted in order anyway: an
    emergency call is never refused for lack of a healthy trunk.

    With sites (`context`), an emergency call follows its site's emergency routes in order
    (the SIP trunk's group, then the branch's PSTN gateway): a route whose WAN path has a
    link down is passed over, and so is one whose path is over its CAC limit when the
    site's policy is `pstn`; `block` refuses the call, `exempt` admits it over the limit.
    An ordinary call is refused when its path is down or full.
    """
    health = health or {}
    site = context.sites.site_of(request, context.source_host) if context and context.sites.enabled else None
    match = detect_emergency(request, _emergency_of(config, site))
    dialled = dialled_number(request.uri)
    if match is not None:
        groups = list(site.emergency_routes) if site is not None and site.emergency_routes else []
        if not groups:
            groups = [config.emergency.trunk_group]
        if match.is_test and config.emergency.test_trunk_group:
            groups = [config.emergency.test_trunk_group]
        # An emergency-marked call to a number that has its own route (the lab's round-robin
        # pair) follows that route; everything else takes the emergency routes.
        number_out = None
        if match.reason == "priority" and dialled is not None:
            route = _ordinary_route(config, dialled)
            if route is not None:
                groups = [route.trunk_group]
                number_out = _number_out(route, dialled)
        plan = _plan_groups(config, groups, health, turn, site, context, emergency=True)
        plan.emergency, plan.dialled, plan.number_out = match, dialled, number_out
        plan.reason = f"emergency ({match.reason}) -> {plan.reason}"
        return plan
    if dialled is None:
        return RoutePlan(None, None, [], "no route: Request-URI carries no number", site=_name(site))
    route = _ordinary_route(config, dialled)
    if route is None:
        return RoutePlan(None, None, [], f"no route for {dialled}", [], dialled, site=_name(site))
    plan = _plan_groups(config, [route.trunk_group], health, turn, site, context, emergency=False)
    plan.dialled, plan.number_out = dialled, _number_out(route, dialled)
    plan.reason = f"route {plan.reason}"
    return plan


def _plan_groups(config: B2buaConfig, groups: list[str], health: Mapping[str, bool], turn: int,
                 site: Site | None, context: SiteContext | None, *, emergency: bool) -> RoutePlan:
    """Targets of each group in turn, each checked against link state and CAC."""
    passed_over: list[str] = []
    skipped: list[str] = []
    first_group: TrunkGroup | None = None
    in_order: list[tuple[TrunkGroup, Trunk]] = []
    for name in groups:
        group = config.group_named(name)
        first_group = first_group or group
        in_order += [(group, trunk) for trunk in order_trunks(group, [config.trunk_named(n) for n in group.trunks], turn)]
    healthy = [index for index, (_, trunk) in enumerate(in_order) if health.get(trunk.name, True)]
    sick = [index for index, (_, trunk) in enumerate(in_order) if not health.get(trunk.name, True)]
    skipped += [in_order[index][1].name for index in sick]
    # Checked in route order, so a PSTN target's reason names the routes before it...
    usable: dict[int, Target] = {}
    for index, (group, trunk) in enumerate(in_order):
        if not emergency and index in sick:
            continue  # an ordinary call never tries a known-down trunk
        target, refusal = _target(config, group, trunk, site, context, emergency,
                                  pstn_reason="; ".join(passed_over) or None)
        if refusal is not None:
            if refusal.startswith("block:"):
                return RoutePlan(None, group, [], f"{group.name}: {refusal}", skipped, site=_name(site),
                                 reject=(503, refusal.removeprefix("block: ")))
            if refusal not in passed_over:
                passed_over.append(refusal)
            continue
        usable[index] = target
    # ...and tried healthy first: known-down trunks of an emergency call come last (after
    # the healthy trunks of every route, so a branch whose ECRC trunks are probed down
    # reaches its PSTN gateway without waiting out their fast failover), never dropped.
    targets = [usable[index] for index in healthy + sick if index in usable]
    if emergency and not targets:
        # Every route passed over (WAN down or full, and no PSTN route): try the trunks
        # anyway, in order; an emergency call is never refused by the B2BUA for its routing.
        reason = "; ".join(passed_over) or None
        for index in healthy + sick:
            group, trunk = in_order[index]
            targets.append(_fallback_target(group, trunk, site, context, reason))
    trunks = [target.trunk for target in targets]
    if not trunks and passed_over:
        return RoutePlan(None, first_group, [], f"{groups[0]}: {'; '.join(passed_over)}", skipped, site=_name(site),
                         reject=(503, "; ".join(passed_over)))
    plan = RoutePlan(None, first_group, trunks, " then ".join(groups), skipped, site=_name(site))
    plan.targets = targets
    plan.passed_over = passed_over
    return plan


def _target(config: B2buaConfig, group: TrunkGroup, trunk: Trunk, site: Site | None, context: SiteContext | None,
            emergency: bool, pstn_reason: str | None) -> tuple[Target | None, str | None]:
    """The target for one trunk, or why it cannot be used from the caller's site."""
    if site is None or context is None:
        return Target(trunk, group.name, None, (), "none", pstn_reason), None
    sites = context.sites
    host = sites.site_named(trunk.site) if trunk.site else sites.host_of(group.name)
    if host is None:
        return Target(trunk, group.name, None, (), "none", pstn_reason), None
    path = sites.path(site, host)
    if path is None:
        return None, f"no link from {site.name} to {host.name}"
    links = tuple(link.name for link in path)
    down = sites.down_links(path)
    if down:
        return None, f"wan down: {', '.join(down)}"
    admission = context.cac.check(list(links), context.kbps)
    if admission.fits:
        return Target(trunk, group.name, host.name, links, "counted" if links else "none", pstn_reason), None
    why = f"cac full: {admission.full_link} {admission.why}"
    if not emergency:
        return None, f"block: {why}"
    if site.cac_emergency_policy == "block":
        return None, f"block: {why}"
    if site.cac_emergency_policy == "exempt":
        return Target(trunk, group.name, host.name, links, "over-limit", pstn_reason), None
    return None, why


def _fallback_target(group: TrunkGroup, trunk: Trunk, site: Site | None, context: SiteContext | None,
                     pstn_reason: str | None) -> Target:
    """A trunk tried although its route was passed over. When the call still crosses WAN
    links to reach it, it is counted on them (over the limit when they are full), so that
    the ledger keeps seeing it and ordinary calls are not admitted past the limit."""
    if site is None or context is None:
        return Target(trunk, group.name, None, (), "none", pstn_reason)
    sites = context.sites
    host = sites.site_named(trunk.site) if trunk.site else sites.host_of(group.name)
    path = sites.path(site, host) if host is not None else None
    if not path:
        return Target(trunk, group.name, host.name if host else None, (), "none", pstn_reason)
    links = tuple(link.name for link in path)
    fits = context.cac.check(list(links), context.kbps).fits
    return Target(trunk, group.name, host.name, links, "counted" if fits else "over-limit", pstn_reason)


def _emergency_of(config: B2buaConfig, site: Site | None) -> Emergency:
    """The emergency settings with the caller's site's dial strings and masks, when it has any."""
    if site is None or (site.dial_strings is None and site.dial_masks is None and site.test_numbers is None):
        return config.emergency
    changes = {key: value for key, value in (("dial_strings", site.dial_strings), ("dial_masks", site.dial_masks),
                                             ("test_numbers", site.test_numbers)) if value is not None}
    return config.emergency.model_copy(update=changes)


def _name(site: Site | None) -> str | None:
    return site.name if site is not None else None


def _ordinary_route(config: B2buaConfig, dialled: str) -> Route | None:
    """The first route whose pattern is found in the dialled number."""
    for route in config.route:
        if re.search(route.pattern, dialled):
            return route
    return None


def _ordinary_group(config: B2buaConfig, dialled: str) -> str | None:
    route = _ordinary_route(config, dialled)
    return route.trunk_group if route is not None else None


def _number_out(route: Route, dialled: str) -> str | None:
    """`strip_plus`: leg B gets the number without its leading `+` (Lync RemovePlusFromUri)."""
    if route.strip_plus and dialled.startswith("+"):
        return dialled[1:]
    return None
