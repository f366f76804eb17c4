"""The B2BUA's admin HTTP API (GET /health, /links, /trunks, /calls; PUT /links/{name}) and
its command-line client `b2bua link NAME up|down|show --admin HOST:PORT`, against a node
running in this process (the CLI in a child process)."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio

from b2bua.testbench.caller import CallSpec

BRANCH = "127.0.0.11"
# The installed entry point, as a user runs it (`python -m b2bua.cli` runs cli.py as __main__,
# whose UsageError is not the one the subcommands raise).
B2BUA = [str(Path(sys.executable).with_name("b2bua"))]

TOPOLOGY = {
    "admin": "127.0.0.1:0",
    "node": {"name": "admin-test", "log_level": "warning"},
    "profile": [{"name": "sbc", "listen": ["udp:127.0.0.1:5060", "tcp:127.0.0.1:5060"]}],
    "emergency": {"trunk_group": "ecrc"},
    "trunk": [{"name": "ecrc-primary", "address": "127.0.0.1:5070", "transports": ["udp", "tcp"],
               "health": {"enabled": False}},
              {"name": "pstn-branch1", "address": "127.0.0.1:5080", "transports": ["udp", "tcp"], "kind": "pstn",
               "health": {"enabled": False}}],
    "trunk_group": [{"name": "ecrc", "trunks": ["ecrc-primary"]}, {"name": "pstn-branch1", "trunks": ["pstn-branch1"]}],
    "site": [{"name": "hq", "trunk_groups": ["ecrc"]},
             {"name": "branch1", "members": {"sources": [f"{BRANCH}/32"]}, "trunk_groups": ["pstn-branch1"],
              "emergency_routes": ["ecrc", "pstn-branch1"]}],
    "link": [{"name": "branch1-hq", "sites": ["branch1", "hq"], "max_calls": 4, "max_bandwidth_kbps": 400},
             {"name": "spare", "sites": ["branch1", "hq"], "state": "down"}],
}


@pytest_asyncio.fixture
async def sbc(b2bua_from_config, ecrc_factory, pstn_gateway):
    ecrc = await ecrc_factory("ecrc-primary")
    return await b2bua_from_config(TOPOLOGY, trunks={"ecrc-primary": ecrc, "pstn-branch1": pstn_gateway}, probe=False)


@pytest_asyncio.fixture
async def http():
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        yield session


def admin_of(sbc) -> str:  # noqa: ANN001
    return f"127.0.0.1:{sbc.node.admin.port}"


async def request(http, method: str, url: str, **options) -> tuple[int, object]:  # noqa: ANN001, ANN003
    async with http.request(method, url, **options) as reply:
        return reply.status, await reply.json(content_type=None)


async def cli(*args: str, timeout: float = 20.0) -> tuple[int, str, str]:
    """`b2bua link ...` in a child process (the node keeps serving in this one)."""
    process = await asyncio.create_subprocess_exec(*B2BUA, "link", *args, stdout=asyncio.subprocess.PIPE,
                                                   stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout)
    except asyncio.TimeoutError:
        process.kill()
        await process.wait()
        raise
    return process.returncode, out.decode(), err.decode()


# -- the HTTP API ------------------------------------------------------------------------------------


async def test_get_health_links_and_one_link(sbc, http):
    url = sbc.node.admin.url

    assert await request(http, "GET", f"{url}/health") == (200, {"status": "ok", "node": "admin-test", "calls": 0})
    status, links = await request(http, "GET", f"{url}/links")
    assert status == 200 and [view["name"] for view in links] == ["branch1-hq", "spare"]
    view = links[0]
    assert (view["sites"], view["state"], view["set_by"]) == (["branch1", "hq"], "up", "config")
    assert view["cac"] == {"calls": 0, "kbps": 0, "over_limit_calls": 0, "max_calls": 4, "max_bandwidth_kbps": 400}
    assert links[1]["state"] == "down"  # `state = "down"` in the configuration
    assert await request(http, "GET", f"{url}/links/branch1-hq") == (200, view)
    assert await request(http, "GET", f"{url}/links/nowhere") == (404, {"error": "no link named 'nowhere'",
                                                                         "field": "name"})


async def test_put_links_sets_the_operators_word_and_routing_follows(sbc, http, caller_factory):
    url = f"{sbc.node.admin.url}/links/branch1-hq"
    state = sbc.node.node.sites.links["branch1-hq"]
    caller = await caller_factory(host=BRANCH)

    before = time.time()
    status, view = await request(http, "PUT", url, json={"state": "down"})
    assert status == 200 and (view["state"], view["set_by"]) == ("down", "admin")
    assert view["changed_at"] >= before and not state.up and not state.admin_up
    down = await caller.call(sbc.address(), CallSpec(to="911"))

    status, view = await request(http, "PUT", url, json={"state": "up"})
    assert status == 200 and view["state"] == "up" and state.up
    up = await caller.call(sbc.address(), CallSpec(to="911"))

    assert down.ok and up.ok
    assert (await sbc.cdr_for(down))["route_taken"] == "pstn-branch1"
    assert (await sbc.cdr_for(up))["route_taken"] == "ecrc-primary"


async def test_an_operators_up_does_not_override_failed_probes(sbc, http):
    state = sbc.node.node.sites.links["branch1-hq"]
    state.set(False, "probe", time.time())

    status, view = await request(http, "PUT", f"{sbc.node.admin.url}/links/branch1-hq", json={"state": "up"})

    assert status == 200 and view["state"] == "down" and view["set_by"] == "admin"
    assert state.admin_up and not state.probe_up


@pytest.mark.parametrize("body, status, error", [
    (b"not json", 400, {"error": "the body must be a JSON object such as {\"state\": \"down\"}", "field": None}),
    (b"[\"down\"]", 400, {"error": "only the key \"state\" may be set", "field": None}),
    (b"{\"state\": \"down\", \"max_calls\": 9}", 400, {"error": "only the key \"state\" may be set", "field": None}),
    (b"{\"state\": \"sideways\"}", 400, {"error": "'sideways' is not \"up\" or \"down\"", "field": "state"}),
    (b"{}", 400, {"error": "None is not \"up\" or \"down\"", "field": "state"}),
])
async def test_put_links_refuses_a_bad_body_and_changes_nothing(sbc, http, body, status, error):
    url = f"{sbc.node.admin.url}/links/branch1-hq"

    assert await request(http, "PUT", url, data=body, headers={"Content-Type": "application/json"}) == (status, error)
    assert sbc.node.node.sites.links["branch1-hq"].up


async def test_put_an_unknown_link_is_404(sbc, http):
    status, body = await request(http, "PUT", f"{sbc.node.admin.url}/links/nowhere", json={"state": "down"})
    assert status == 404 and body["field"] == "name"


async def test_get_trunks_and_calls_in_progress(sbc, http, caller_factory):
    sbc.trunks["ecrc-primary"].set_answer("ring")
    caller = await caller_factory(host=BRANCH)
    call = asyncio.create_task(caller.call(sbc.address(), CallSpec(to="911", answer_timeout_s=1.0)))
    try:
        for _ in range(100):
            status, calls = await request(http, "GET", f"{sbc.node.admin.url}/calls")
            if calls:
                break
            await asyncio.sleep(0.02)
        status, links = await request(http, "GET", f"{sbc.node.admin.url}/links/branch1-hq")
    finally:
        outcome = await asyncio.wait_for(call, 10)
    assert status == 200 and len(calls) == 1
    [live] = calls
    assert live["state"] in ("hunting", "early") and live["trunk"] == "ecrc-primary"
    assert live["caller"] == "sip:+14255550100@caller.example.com" and "emergency" in live["route"]
    assert links["cac"]["calls"] == 1  # the ringing call holds its slot...
    assert outcome.status == 487  # ...until the caller gives up (CANCEL)
    status, trunks = await request(http, "GET", f"{sbc.node.admin.url}/trunks")
    assert status == 200 and {trunk["trunk"] for trunk in trunks} == {"ecrc-primary", "pstn-branch1"}
    assert all(trunk["up"] for trunk in trunks)
    assert (await request(http, "GET", f"{sbc.node.admin.url}/calls")) == (200, [])
    assert (await request(http, "GET", f"{sbc.node.admin.url}/links/branch1-hq"))[1]["cac"]["calls"] == 0


# -- `b2bua link` ------------------------------------------------------------------------------------


async def test_the_link_command_sets_and_shows_a_link(sbc):
    admin = admin_of(sbc)
    state = sbc.node.node.sites.links["branch1-hq"]

    down = await cli("branch1-hq", "down", "--admin", admin)
    assert not state.up and state.reason == "admin"
    show = await cli("branch1-hq", "show", "--admin", admin)
    up = await cli("branch1-hq", "up", "--admin", admin)

    assert down == (0, "branch1-hq: down (set by admin); calls 0/4, 0 kbit/s/400\n", "")
    assert show == down
    assert up == (0, "branch1-hq: up (set by admin); calls 0/4, 0 kbit/s/400\n", "")
    assert state.up
    assert (await cli("spare", "show", "--admin", admin))[1] == "spare: down (set by config); calls 0/-, 0 kbit/s/-\n"


@pytest.mark.parametrize("args, says", [
    (["nowhere", "down"], "no link named 'nowhere'"),
    (["branch1-hq", "sideways"], "invalid choice: 'sideways'"),
    (["branch1-hq"], "the following arguments are required: state"),
    ([], "the following arguments are required: name, state"),
    (["branch1-hq", "down", "--bogus"], "unrecognized arguments: --bogus"),
    (["a b/c", "down"], "a b/c"),
])
async def test_the_link_command_exits_2_with_one_line_on_bad_arguments(sbc, args, says):
    code, out, err = await cli(*args, "--admin", admin_of(sbc))

    assert code == 2 and out == ""
    assert err.count("\n") == 1 and says in err, err
    assert sbc.node.node.sites.links["branch1-hq"].up  # nothing changed


@pytest.mark.parametrize("admin, says", [("bad host:1", "is not an address or host name"),
                                         ("127.0.0.1:99999", "is not a number from 1 to 65535")])
async def test_the_link_command_exits_2_on_a_bad_admin_address(admin, says):
    code, out, err = await cli("branch1-hq", "down", "--admin", admin)

    assert code == 2 and out == "" and err.count("\n") == 1 and says in err, err


async def test_the_link_command_exits_2_when_the_admin_api_is_unreachable():
    from b2bua.testbench.sipp import free_port

    code, out, err = await cli("branch1-hq", "down", "--admin", f"127.0.0.1:{free_port(1)}")

    assert code == 2 and out == "" and err.count("\n") == 1
    assert err.startswith("b2bua link: cannot reach the admin API at 127.0.0.1:")
