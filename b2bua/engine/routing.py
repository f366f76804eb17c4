"""Where does this call go? A pure function of the request, the configuration and state.

`plan_route(request, config, health, turn)` returns a `RoutePlan`: whether the call is an
emergency call (and why), and the ordered trunks to try. No sockets, no clock: the
caller supplies trunk health and the round-robin turn, so every decision is unit-tested.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..config import B2buaConfig, Emergency, Route, Trunk, TrunkGroup
from ..sip import AbsoluteUri, Request, SipUri, TelUri, Uri

_VISUAL_SEPARATORS = str.maketrans("", "", "-.() ")


@dataclass(frozen=True)
class EmergencyMatch:
    """Why a call is an emergency call."""

    reason: str  # dial-string | dial-mask | service-urn | test-call | priority
    dialled: str  # what the caller dialled, as found in the Request-URI or To
    number: str  # what it stands for after masks (911 for 112), or the service URN
    is_test: bool = False  # a 933-style test call: read back, not a real emergency


@dataclass
class RoutePlan:
    emergency: EmergencyMatch | None
    group: TrunkGroup | None
    trunks: list[Trunk]
    reason: str  # how the plan was made, for logs and the CDR
    skipped: list[str] = field(default_factory=list)  # trunks known down, tried last or not at all
    dialled: str | None = None
    number_out: str | None = None  # the number for leg B when the route rewrites it (strip_plus)

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


def plan_route(
    request: Request,
    config: B2buaConfig,
    health: Mapping[str, bool] | None = None,
    turn: int = 0,
) -> RoutePlan:
    """Decide the ordered trunks for an INVITE.

    `health` maps a trunk name to False when probing has declared it down (missing means
    up). A down trunk is skipped; for an emergency call it is still tried, last, and
    when every trunk is down an emergency call is attempted in order anyway: an
    emergency call is never refused for lack of a healthy trunk.
    """
    health = health or {}
    match = detect_emergency(request, config.emergency)
    dialled = dialled_number(request.uri)
    if match is not None:
        name = config.emergency.trunk_group
        if match.is_test and config.emergency.test_trunk_group:
            name = config.emergency.test_trunk_group
        # An emergency-marked call to a number that has its own route (the lab's round-robin
        # pair) follows that route; everything else goes to the emergency trunk group.
        number_out = None
        if match.reason == "priority" and dialled is not None:
            route = _ordinary_route(config, dialled)
            if route is not None:
                name = route.trunk_group
                number_out = _number_out(route, dialled)
        group = config.group_named(name)
        ordered = order_trunks(group, [config.trunk_named(n) for n in group.trunks], turn)
        up = [trunk for trunk in ordered if health.get(trunk.name, True)]
        down = [trunk.name for trunk in ordered if not health.get(trunk.name, True)]
        trunks = up + [trunk for trunk in ordered if trunk.name in down]
        reason = f"emergency ({match.reason}) -> {group.name}"
        return RoutePlan(match, group, trunks, reason, down, dialled, number_out)
    if dialled is None:
        return RoutePlan(None, None, [], "no route: Request-URI carries no number", [], None)
    route = _ordinary_route(config, dialled)
    if route is None:
        return RoutePlan(None, None, [], f"no route for {dialled}", [], dialled)
    name = route.trunk_group
    group = config.group_named(name)
    ordered = order_trunks(group, [config.trunk_named(n) for n in group.trunks], turn)
    up = [trunk for trunk in ordered if health.get(trunk.name, True)]
    down = [trunk.name for trunk in ordered if not health.get(trunk.name, True)]
    return RoutePlan(None, group, up, f"route {name}", down, dialled, _number_out(route, dialled))


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
