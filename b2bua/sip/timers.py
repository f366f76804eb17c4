"""The timer values of RFC 3261 (Table 4, §17) and RFC 6026, and the named deadlines of one
state machine.

Nothing here reads a clock: a deadline is an absolute `now`-based float handed in by the
caller, and the owner asks `next_deadline()` when it next needs to be woken.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TimerConfig:
    """RFC 3261 §17.1.1.1 / Table 4 base values, in seconds."""

    t1: float = 0.5  # RTT estimate
    t2: float = 4.0  # longest retransmit interval for non-INVITE requests and INVITE responses
    t4: float = 5.0  # longest time a message stays in the network
    trying_delay: float = 0.2  # §17.2.1: send 100 Trying if the TU is silent this long

    @property
    def timeout(self) -> float:
        """64*T1: Timers B, F, H, J (unreliable), L, M and the 2xx give-up (§13.3.1.4)."""
        return 64 * self.t1

    @property
    def timer_d(self) -> float:
        """Timer D on an unreliable transport: at least 32 s (§17.1.1.2)."""
        return max(64 * self.t1, 32.0)


class TimerSet:
    """Named deadlines of one state machine, with the interval each was last armed with
    (so a retransmission timer can double it)."""

    __slots__ = ("_deadlines", "_intervals")

    def __init__(self) -> None:
        self._deadlines: dict[str, float] = {}
        self._intervals: dict[str, float] = {}

    def start(self, name: str, now: float, interval: float) -> None:
        """(Re)arm `name` to fire `interval` seconds after `now`."""
        self._deadlines.pop(name, None)  # re-insert: ties fire in arming order
        self._deadlines[name] = now + interval
        self._intervals[name] = interval

    def stop(self, *names: str) -> None:
        for name in names:
            self._deadlines.pop(name, None)

    def stop_all(self) -> None:
        self._deadlines.clear()

    def interval(self, name: str) -> float:
        """The interval `name` was last armed with."""
        return self._intervals[name]

    def __contains__(self, name: object) -> bool:
        return name in self._deadlines

    def deadline(self, name: str) -> float | None:
        return self._deadlines.get(name)

    def next_deadline(self) -> float | None:
        return min(self._deadlines.values(), default=None)

    def pop_due(self, now: float) -> str | None:
        """Disarm and return the earliest timer due at `now` (ties: the one armed first)."""
        due = [(deadline, name) for name, deadline in self._deadlines.items() if deadline <= now]
        if not due:
            return None
        earliest = min(deadline for deadline, _ in due)
        name = next(name for deadline, name in due if deadline == earliest)
        del self._deadlines[name]
        return name
