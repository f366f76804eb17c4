"""How the mock ECRC answers, changeable at run time (`PUT /control`).

| answer      | what the ECRC does with an INVITE                                              |
|-------------|--------------------------------------------------------------------------------|
| `200`       | 180 Ringing for `ring_ms` (none when 0), then 200 OK                            |
| `486`       | 486 Busy Here after `ring_ms` (final: the B2BUA must not fail over)             |
| `503`       | 503 Service Unavailable after `ring_ms` (the B2BUA fails over, e911-ref §1.7)   |
| `drop`      | nothing at all, not even 100 Trying (the caller's timer B / 408 path)           |
| `ring`      | 180 Ringing and never a final response                                          |
| `bye-after` | as `200`, then a BYE `bye_after_s` seconds after the ACK                        |

Every INVITE is recorded whatever the answer, before any final response is sent.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

ANSWERS = ("200", "486", "503", "drop", "ring", "bye-after")
DEFAULT_RING_MS = 0
DEFAULT_BYE_AFTER_S = 5.0
MAX_RING_MS = 600_000  # ten minutes: longer is a typo, not a test
MAX_BYE_AFTER_S = 86_400.0
FIELDS = ("answer", "ring_ms", "bye_after_s")


class BehaviourError(ValueError):
    """Bad answer behaviour; `field` names the offending key."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class AnswerBehaviour:
    answer: str = "200"
    ring_ms: int = DEFAULT_RING_MS
    bye_after_s: float | None = None  # only meaningful with `bye-after`; defaults to 5 s there

    def __post_init__(self) -> None:
        answer = self.answer
        if isinstance(answer, int) and not isinstance(answer, bool):
            answer = str(answer)
        if not isinstance(answer, str) or answer.strip().lower() not in ANSWERS:
            raise BehaviourError("answer", f"{self.answer!r} is not one of {', '.join(ANSWERS)}")
        object.__setattr__(self, "answer", answer.strip().lower())

        ring_ms = self.ring_ms
        if isinstance(ring_ms, float) and ring_ms.is_integer():
            ring_ms = int(ring_ms)
        if isinstance(ring_ms, bool) or not isinstance(ring_ms, int):
            raise BehaviourError("ring_ms", f"{self.ring_ms!r} is not a whole number of milliseconds")
        if not 0 <= ring_ms <= MAX_RING_MS:
            raise BehaviourError("ring_ms", f"{ring_ms} is outside 0..{MAX_RING_MS}")
        object.__setattr__(self, "ring_ms", ring_ms)

        bye_after_s = self.bye_after_s
        if bye_after_s is not None:
            if isinstance(bye_after_s, bool) or not isinstance(bye_after_s, (int, float)):
                raise BehaviourError("bye_after_s", f"{bye_after_s!r} is not a number of seconds")
            if not 0 < bye_after_s <= MAX_BYE_AFTER_S:
                raise BehaviourError("bye_after_s", f"{bye_after_s} is outside (0, {MAX_BYE_AFTER_S:g}]")
            bye_after_s = float(bye_after_s)
        elif self.answer == "bye-after":
            bye_after_s = DEFAULT_BYE_AFTER_S
        object.__setattr__(self, "bye_after_s", bye_after_s)

    @classmethod
    def from_json(cls, data: Any) -> AnswerBehaviour:
        """From a decoded JSON object such as `{"answer": "503"}`. Missing keys take their
        defaults (PUT replaces the whole behaviour); unknown keys are refused, so that a
        typo (`ringms`) is not silently ignored."""
        if not isinstance(data, dict):
            raise BehaviourError("body", "must be a JSON object such as {\"answer\": \"503\"}")
        unknown = sorted(key for key in data if key not in FIELDS)
        if unknown:
            raise BehaviourError(str(unknown[0]), f"unknown key; known keys are {', '.join(FIELDS)}")
        if "answer" not in data:
            raise BehaviourError("answer", f"is required, one of {', '.join(ANSWERS)}")
        kwargs: dict[str, Any] = {"answer": data["answer"]}
        if data.get("ring_ms") is not None:
            kwargs["ring_ms"] = data["ring_ms"]
        if data.get("bye_after_s") is not None:
            kwargs["bye_after_s"] = data["bye_after_s"]
        return cls(**kwargs)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def final_status(self) -> int | None:
        """The final response to send (None for `drop` and `ring`)."""
        if self.answer in ("200", "bye-after"):
            return 200
        if self.answer in ("486", "503"):
            return int(self.answer)
        return None
