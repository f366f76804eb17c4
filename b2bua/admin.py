"""The B2BUA's admin HTTP API (bound to 127.0.0.1 unless configured otherwise).

    GET  /health            200 while serving
    GET  /links             every WAN link: state, who set it, CAC usage and limits
    GET  /links/{name}
    PUT  /links/{name}      {"state": "down"} or {"state": "up"}: an operator's word
    GET  /trunks            trunk health from OPTIONS probing
    GET  /calls             calls in progress (correlation id, caller, route, state)

`b2bua link NAME up|down [--admin HOST:PORT]` is the command-line client of PUT /links.
"""

from __future__ import annotations

import argparse
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import structlog
from aiohttp import web

from .engine.bridge import NodeState

log = structlog.get_logger("b2bua.admin")
NODE_KEY: web.AppKey[NodeState] = web.AppKey("node", NodeState)


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda value: json.dumps(value, default=str))


def _error(status: int, field: str | None, message: str) -> web.Response:
    return _json({"error": message, "field": field}, status)


def make_admin_app(node: NodeState) -> web.Application:
    app = web.Application()
    app[NODE_KEY] = node
    app.router.add_get("/health", _health)
    app.router.add_get("/links", _links)
    app.router.add_get("/links/{name}", _link)
    app.router.add_put("/links/{name}", _put_link)
    app.router.add_get("/trunks", _trunks)
    app.router.add_get("/calls", _calls)
    return app


def link_view(node: NodeState, name: str) -> dict:
    state = node.sites.links[name]
    link = node.sites.link_named(name)
    assert link is not None
    return {"name": name, "sites": list(link.sites), "state": "up" if state.up else "down", "set_by": state.reason,
            "changed_at": state.changed_at, "cac": node.cac.snapshot(name)}


async def _health(request: web.Request) -> web.Response:
    node = request.app[NODE_KEY]
    return _json({"status": "ok", "node": node.config.node.name, "calls": len(node.calls)})


async def _links(request: web.Request) -> web.Response:
    node = request.app[NODE_KEY]
    return _json([link_view(node, name) for name in node.sites.links])


async def _link(request: web.Request) -> web.Response:
    node = request.app[NODE_KEY]
    name = request.match_info["name"]
    if name not in node.sites.links:
        return _error(404, "name", f"no link named {name!r}")
    return _json(link_view(node, name))


async def _put_link(request: web.Request) -> web.Response:
    node = request.app[NODE_KEY]
    name = request.match_info["name"]
    if name not in node.sites.links:
        return _error(404, "name", f"no link named {name!r}")
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return _error(400, None, "the body must be a JSON object such as {\"state\": \"down\"}")
    if not isinstance(body, dict) or set(body) - {"state"}:
        return _error(400, None, "only the key \"state\" may be set")
    state = body.get("state")
    if state not in ("up", "down"):
        return _error(400, "state", f"{state!r} is not \"up\" or \"down\"")
    if node.sites.links[name].set(state == "up", "admin", time.time()):
        log.warning("link.state", link=name, up=state == "up", set_by="admin")
    return _json(link_view(node, name))


async def _trunks(request: web.Request) -> web.Response:
    node = request.app[NODE_KEY]
    return _json([health.to_dict() for health in node.health.values()])


async def _calls(request: web.Request) -> web.Response:
    node = request.app[NODE_KEY]
    return _json([
        {"correlation_id": call.id, "caller": str(call.a_request.from_.uri), "dialled": str(call.a_request.uri),
         "state": call.state, "route": call.plan.reason,
         "trunk": call.current.trunk.name if call.current else None}
        for call in node.calls.values()
    ])


# -- `b2bua link NAME up|down` ----------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="the link's name in the configuration")
    parser.add_argument("state", choices=("up", "down", "show"), help="set the link up or down, or show it")
    parser.add_argument("--admin", default="127.0.0.1:8060", help="the B2BUA's admin API (default 127.0.0.1:8060)")


def run(args: argparse.Namespace) -> int:
    from .cli import UsageError
    from .config import parse_host_port

    try:
        admin = parse_host_port(args.admin, 8060)
    except ValueError as error:
        raise UsageError(f"--admin {args.admin!r}: {error}") from None
    # The name is one path segment whatever it holds (a space or a "/" would otherwise make
    # an invalid URL, or another path).
    url = f"http://{admin}/links/{urllib.parse.quote(args.name, safe='')}"
    data = None if args.state == "show" else json.dumps({"state": args.state}).encode()
    request = urllib.request.Request(url, data=data, method="GET" if data is None else "PUT",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as reply:
            view = json.loads(reply.read())
    except urllib.error.HTTPError as error:
        try:
            detail = json.loads(error.read()).get("error", error.reason)
        except ValueError:
            detail = error.reason
        raise UsageError(f"{url}: {detail}") from None
    except (urllib.error.URLError, OSError) as error:
        raise UsageError(f"cannot reach the admin API at {args.admin}: {getattr(error, 'reason', error)}") from None
    cac = view["cac"]
    print(f"{view['name']}: {view['state']} (set by {view['set_by']}); calls {cac['calls']}"
          f"/{cac['max_calls'] if cac['max_calls'] is not None else '-'}, {cac['kbps']} kbit/s"
          f"/{cac['max_bandwidth_kbps'] if cac['max_bandwidth_kbps'] is not None else '-'}")
    return 0
