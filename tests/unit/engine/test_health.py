"""Trunk health: the pure threshold machine (`TrunkHealth`) and the prober's outcomes, no sockets."""

from __future__ import annotations

import asyncio

import pytest

from b2bua.config import Health, Trunk
from b2bua.engine.health import TrunkHealth
from b2bua.engine.probe import trunk_prober
from b2bua.sip import make_response
from b2bua.sip.transaction import ResponseReceived, TransactionTimeout, TransportFailure


def machine(**policy) -> TrunkHealth:
    return TrunkHealth("ecrc-primary", Health(**policy))


def feed(health: TrunkHealth, outcomes: str, start: float = 0.0) -> list[bool]:
    """Feed 'x' (failure) / 'o' (success) outcomes; return the state after each."""
    states = []
    for index, outcome in enumerate(outcomes):
        health.record(outcome == "o", start + index)
        states.append(health.up)
    return states


def test_a_trunk_is_up_until_probes_say_otherwise():
    health = machine()
    assert health.up and health.failures == 0 and health.successes == 0


def test_goes_down_only_after_failures_to_down_consecutive_failures():
    health = machine(failures_to_down=3, successes_to_up=1)
    assert feed(health, "xx") == [True, True]
    assert health.record(False, 2.0) is True  # the third one changes the state
    assert not health.up and health.changed_at == 2.0


def test_a_success_between_failures_resets_the_count():
    health = machine(failures_to_down=2, successes_to_up=1)
    assert feed(health, "xoxoxo") == [True] * 6
    assert feed(health, "xx") == [True, False]


def test_comes_back_only_after_successes_to_up_consecutive_successes():
    health = machine(failures_to_down=1, successes_to_up=3)
    assert feed(health, "x") == [False]
    assert feed(health, "ooxoo") == [False] * 5  # a failure restarts the count
    assert health.record(True, 10.0) is True
    assert health.up and health.changed_at == 10.0


def test_record_says_true_only_when_the_state_changes():
    health = machine(failures_to_down=1, successes_to_up=1)
    changes = [health.record(ok, float(i)) for i, ok in enumerate([True, False, False, True, True, False])]
    assert changes == [False, True, False, True, False, True]


def test_thresholds_of_one_flip_on_every_change():
    health = machine(failures_to_down=1, successes_to_up=1)
    assert feed(health, "xoxo") == [False, True, False, True]


def test_last_probe_and_to_dict_describe_the_state():
    health = machine(failures_to_down=1)
    health.record(False, 5.0, "timeout")
    assert health.last_probe == {"ok": False, "at": 5.0, "detail": "timeout"}
    assert health.to_dict()["up"] is False and health.to_dict()["failures"] == 1


@pytest.mark.parametrize("status, healthy", [
    (200, True), (202, True), (404, True), (405, True), (481, True), (486, True), (499, True),
    (408, False), (500, False), (503, False), (603, False),
])
def test_default_ok_codes_any_final_below_500_but_408(status, healthy):
    assert machine().is_healthy_code(status) is healthy


def test_explicit_ok_codes_are_strict():
    health = machine(ok_codes=[200])
    assert health.is_healthy_code(200) and not health.is_healthy_code(404)


# -- the prober, on a stand-in stack ----------------------------------------------------------


class FakeStack:
    """What TrunkProber uses of a SipStack; `answer` decides what each probe gets back."""

    user_agent = "e911-b2bua"

    def __init__(self, answer) -> None:  # noqa: ANN001 - callable(request, handler)
        self.answer = answer
        self.sent = []

    def now(self) -> float:
        return asyncio.get_running_loop().time()

    def local_address(self, transport: str) -> tuple[str, int]:
        return ("127.0.0.1", 5060)

    def via(self, transport: str) -> str:
        return f"SIP/2.0/{transport.upper()} 127.0.0.1:5060;branch=z9hG4bKprobe{len(self.sent)};rport"

    def contact_uri(self, transport: str) -> str:
        return "sip:127.0.0.1:5060"

    def send_request(self, request, peer, handler):  # noqa: ANN001, ANN201
        self.sent.append((request, peer))
        self.answer(request, handler)
        return object()


def trunk(transports=("udp",), **health) -> Trunk:  # noqa: ANN001
    policy = {"interval_s": 0.01, "timeout_s": 0.05, "failures_to_down": 1, "successes_to_up": 1, **health}
    return Trunk(name="ecrc-primary", address="127.0.0.1:5070", transports=list(transports), health=policy)


def respond(status: int):  # noqa: ANN201
    def answer(request, handler) -> None:  # noqa: ANN001
        handler(ResponseReceived(make_response(request, status, to_tag="t1"), None))
    return answer


async def test_probe_answered_200_is_healthy_and_carries_an_options_request():
    stack = FakeStack(respond(200))
    t = trunk()
    prober = trunk_prober(stack, t, TrunkHealth(t.name, t.health))
    assert await prober.probe_once() == (True, "200 OK")
    request, peer = stack.sent[0]
    assert request.method == "OPTIONS" and request.cseq.method == "OPTIONS"
    assert (peer.transport, peer.host, peer.port) == ("udp", "127.0.0.1", 5070)


@pytest.mark.parametrize("answer, detail", [
    (respond(503), "503 Service Unavailable"),
    (lambda request, handler: handler(TransactionTimeout(None)), "timeout"),
    (lambda request, handler: handler(TransportFailure(None)), "transport error"),
])
async def test_probe_failures_are_unhealthy(answer, detail):
    t = trunk()
    ok, text = await trunk_prober(FakeStack(answer), t, TrunkHealth(t.name, t.health)).probe_once()
    assert (ok, text) == (False, detail)


async def test_unanswered_probe_fails_after_timeout_s_not_timer_f():
    t = trunk(timeout_s=0.05)
    loop = asyncio.get_running_loop()
    started = loop.time()
    ok, detail = await trunk_prober(FakeStack(lambda request, handler: None), t,
                                   TrunkHealth(t.name, t.health)).probe_once()
    assert not ok and "no answer within" in detail
    assert loop.time() - started < 1.0


async def test_a_probe_that_cannot_be_sent_counts_as_failed_and_probing_goes_on():
    def broken(request, handler) -> None:  # noqa: ANN001
        raise OSError("no route to host")

    stack = FakeStack(broken)
    t = trunk()
    health = TrunkHealth(t.name, t.health)
    task = asyncio.create_task(trunk_prober(stack, t, health).run())
    try:
        assert await _until(lambda: len(stack.sent) >= 3), "the prober stopped after one bad probe"
        assert not health.up and "probe not sent" in health.last_probe["detail"]
        stack.answer = respond(200)
        assert await _until(lambda: health.up)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_tls_trunk_is_probed_with_a_sips_uri():
    stack = FakeStack(respond(200))
    t = trunk(transports=("tls",))
    await trunk_prober(stack, t, TrunkHealth(t.name, t.health)).probe_once()
    request, peer = stack.sent[0]
    assert str(request.uri).startswith("sips:") and peer.transport == "tls"


async def _until(predicate, timeout: float = 2.0) -> bool:  # noqa: ANN001
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.01)
    return predicate()


async def test_every_probe_is_a_new_out_of_dialog_request_with_its_own_call_id():
    # RFC 3261 §8.1.1.4; peers that remember finished Call-IDs drop a repeated one.
    stack = FakeStack(respond(200))
    t = trunk()
    prober = trunk_prober(stack, t, TrunkHealth(t.name, t.health))
    for _ in range(3):
        await prober.probe_once()
    requests = [request for request, _ in stack.sent]
    assert len({request.call_id for request in requests}) == 3
    assert len({request.from_.tag for request in requests}) == 3
    assert all(request.to.tag is None for request in requests)
