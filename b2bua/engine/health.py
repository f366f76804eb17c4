"""Trunk health from OPTIONS probes (b2bua-checklist §2.2: Kamailio dispatcher's thresholds).

`TrunkHealth` is the pure state machine: fed probe outcomes, it says when a trunk goes
down (after `failures_to_down` consecutive failures) or comes back up (after
`successes_to_up` consecutive successes). The asyncio prober lives in the B2BUA runner.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..config import Health


@dataclass
class TrunkHealth:
    name: str
    policy: Health
    up: bool = True  # a trunk is presumed up until probes say otherwise
    failures: int = 0
    successes: int = 0
    changed_at: float = 0.0
    last_probe: dict = field(default_factory=dict)

    def record(self, ok: bool, now: float, detail: str = "") -> bool:
        """Count one probe outcome; True when the state changed."""
        self.last_probe = {"ok": ok, "at": now, "detail": detail}
        if ok:
            self.failures = 0
            self.successes += 1
            if not self.up and self.successes >= self.policy.successes_to_up:
                self.up, self.changed_at = True, now
                return True
            return False
        self.successes = 0
        self.failures += 1
        if self.up and self.failures >= self.policy.failures_to_down:
            self.up, self.changed_at = False, now
            return True
        return False

    def is_healthy_code(self, status: int) -> bool:
        if self.policy.ok_codes is not None:
            return status in self.policy.ok_codes
        return 200 <= status < 500 and status != 408

    def to_dict(self) -> dict:
        return {"trunk": self.name, "up": self.up, "failures": self.failures, "successes": self.successes,
                "changed_at": self.changed_at, "last_probe": self.last_probe}
