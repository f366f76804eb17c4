"""How SipStack wakes the event loop for the transaction layer's timers."""

from __future__ import annotations

import asyncio

from b2bua.stack import SipStack


class _Layer:
    """Stands in for the TransactionLayer: only its next deadline matters here."""

    def __init__(self) -> None:
        self.deadline: float | None = None

    def next_timer(self) -> float | None:
        return self.deadline


def _stack() -> tuple[SipStack, _Layer]:
    stack = SipStack(core=None)  # type: ignore[arg-type] - no message reaches a core here
    layer = _Layer()
    stack.layer = layer  # type: ignore[assignment]
    return stack, layer


def test_the_loop_wakes_on_a_10_ms_grid_never_before_the_deadline():
    async def scenario() -> None:
        stack, layer = _stack()
        stack._loop = asyncio.get_running_loop()
        for deadline in (100.0, 100.004, 100.0099, 123.456789):
            layer.deadline = deadline
            stack._rearm()
            wake = stack._timer.when()
            assert deadline < wake <= deadline + 0.01 + 1e-9
            assert abs(wake * 100 - round(wake * 100)) < 1e-6
        stack._timer.cancel()

    asyncio.run(scenario())


def test_deadlines_within_one_grid_step_share_one_loop_timer():
    async def scenario() -> None:
        stack, layer = _stack()
        stack._loop = asyncio.get_running_loop()
        layer.deadline = 50.001
        stack._rearm()
        first = stack._timer
        layer.deadline = 50.007  # an earlier or later timer in the same step: no new loop timer
        stack._rearm()
        assert stack._timer is first
        layer.deadline = 50.02
        stack._rearm()
        assert stack._timer is not first and first.cancelled()
        layer.deadline = None
        stack._rearm()
        assert stack._timer is None
        assert stack._timer_at is None

    asyncio.run(scenario())
