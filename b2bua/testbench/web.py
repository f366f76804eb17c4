"""The mock ECRC's HTTP JSON API (docs/ecrc-api.md).

    GET    /health          200 {"status": "ok", ...} while serving
    GET    /calls           records, newest first; ?since= ?verdict= ?limit= ?ecrc= ?call_id=
    GET    /calls/{id}      one record, 404 when unknown
    DELETE /calls           delete every record
    GET    /control         the current answer behaviour
    PUT    /control         replace it, e.g. {"answer": "503"}

Errors are JSON `{"error": "<what is wrong>", "field": "<offending key>"}`: 400 for bad
input, 404 for an unknown record or path.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any, NamedTuple

from aiohttp import web

from .control import AnswerBehaviour, BehaviourError
from .record import VERDICTS
from .store import DEFAULT_LIMIT, CallStore, parse_since

MAX_LIMIT = 10_000
CALLS_QUERY = ("since", "verdict", "limit", "ecrc", "call_id")

STORE_KEY = web.AppKey("store", CallStore)
NAME_KEY = web.AppKey("name", str)
GET_BEHAVIOUR_KEY = web.AppKey("get_behaviour", Callable[[], AnswerBehaviour])
SET_BEHAVIOUR_KEY = web.AppKey("set_behaviour", Callable[[AnswerBehaviour], Any])

_dumps = functools.partial(json.dumps, ensure_ascii=False, default=str)


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=_dumps)


def _error(status: int, field: str | None, message: str) -> web.Response:
    return _json({"error": message, "field": field}, status=status)


def make_app(
    store: CallStore,
    get_behaviour: Callable[[], AnswerBehaviour],
    set_behaviour: Callable[[AnswerBehaviour], Any],
    *,
    name: str,
) -> web.Application:
    """The API of ECRC instance `name` over `store`; the behaviour is read and replaced
    through the two callables (the SIP side owns it)."""
    app = web.Application(middlewares=[_json_errors])
    app[STORE_KEY] = store
    app[NAME_KEY] = name
    app[GET_BEHAVIOUR_KEY] = get_behaviour
    app[SET_BEHAVIOUR_KEY] = set_behaviour
    app.router.add_get("/health", health)
    app.router.add_get("/calls", list_calls)
    app.router.add_delete("/calls", clear_calls)
    app.router.add_get("/calls/{id}", get_call)
    app.router.add_get("/control", get_control)
    app.router.add_put("/control", put_control)
    return app


@web.middleware
async def _json_errors(request: web.Request, handler):  # noqa: ANN001, ANN202
    """aiohttp's own 404/405 as JSON too, so a client always gets JSON back."""
    try:
        return await handler(request)
    except web.HTTPException as error:
        if error.status >= 400:
            return _error(error.status, None, f"{error.reason}: {request.method} {request.path}")
        raise


async def health(request: web.Request) -> web.Response:
    app = request.app
    try:
        calls = app[STORE_KEY].count()
    except Exception as error:  # noqa: BLE001 - a broken store means not serving
        return _json({"status": "error", "ecrc": app[NAME_KEY], "error": f"store: {error}"}, status=503)
    return _json({"status": "ok", "ecrc": app[NAME_KEY], "calls": calls, "answer": app[GET_BEHAVIOUR_KEY]().to_json()})


def _calls_query(query: Any) -> dict[str, Any] | web.Response:
    unknown = [key for key in query if key not in CALLS_QUERY]
    if unknown:
        return _error(400, unknown[0], f"unknown query parameter {unknown[0]!r}; known: {', '.join(CALLS_QUERY)}")
    options: dict[str, Any] = {"limit": DEFAULT_LIMIT}
    if "since" in query:
        try:
            parse_since(query["since"])
        except ValueError as error:
            return _error(400, "since", str(error))
        options["since"] = query["since"]
    if "verdict" in query:
        verdicts = [item.strip() for value in query.getall("verdict") for item in value.split(",") if item.strip()]
        bad = [item for item in verdicts if item not in VERDICTS]
        if bad or not verdicts:
            shown = bad[0] if bad else ""
            return _error(400, "verdict", f"{shown!r} is not one of {', '.join(VERDICTS)}")
        options["verdict"] = verdicts
    if "limit" in query:
        text = query["limit"].strip()
        if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_LIMIT:
            return _error(400, "limit", f"{query['limit']!r} is not a whole number in 1..{MAX_LIMIT}")
        options["limit"] = int(text)
    for key in ("ecrc", "call_id"):
        if key in query:
            options[key] = query[key]
    return options


async def list_calls(request: web.Request) -> web.Response:
    options = _calls_query(request.query)
    if isinstance(options, web.Response):
        return options
    return _json(request.app[STORE_KEY].list(**options))


async def get_call(request: web.Request) -> web.Response:
    text = request.match_info["id"]
    if not (text.isascii() and text.isdigit()):
        return _error(400, "id", f"{text!r} is not a record id (a whole number)")
    record = request.app[STORE_KEY].get(int(text))
    if record is None:
        return _error(404, "id", f"no call record {text}")
    return _json(record)


async def clear_calls(request: web.Request) -> web.Response:
    deleted = request.app[STORE_KEY].clear()
    return _json({"deleted": deleted})


async def get_control(request: web.Request) -> web.Response:
    return _json(request.app[GET_BEHAVIOUR_KEY]().to_json())


async def put_control(request: web.Request) -> web.Response:
    raw = await request.text()
    try:
        data = json.loads(raw)
    except ValueError as error:
        return _error(400, "body", f"not JSON: {error}")
    try:
        behaviour = AnswerBehaviour.from_json(data)
    except BehaviourError as error:
        return _error(400, error.field, error.message)
    request.app[SET_BEHAVIOUR_KEY](behaviour)
    return _json(request.app[GET_BEHAVIOUR_KEY]().to_json())


class ServedApp(NamedTuple):
    """What `serve` returns: unpack as `runner, port = await serve(...)`, or use `.url`."""

    runner: web.AppRunner
    port: int

    @property
    def host(self) -> str:
        addresses = self.runner.addresses
        return str(addresses[0][0]) if addresses else "127.0.0.1"

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def close(self) -> None:
        await self.runner.cleanup()


async def serve(app: web.Application, host: str = "127.0.0.1", port: int = 0) -> ServedApp:
    """Start `app` on host:port (port 0: a free one) and return the runner and the bound
    port. Stop it with `await served.close()` (or `runner.cleanup()`)."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    bound = runner.addresses[0][1] if runner.addresses else port
    return ServedApp(runner, int(bound))
