"""The ELIN gateway's table (e911-reference §1.8) on a fake clock: which ELIN a call gets,
how long a callback reaches the caller, and how big the table may grow."""

from __future__ import annotations

import pytest

from b2bua.testbench.pstn import DEFAULT_CALLBACK_WINDOW_S, DEFAULT_TABLE_SIZE, ElinTable, elin_key

A, B, C = "4255550001", "4255550002", "4255550003"


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def table(clock: Clock, window_s: float = 1800.0, size: int = 100) -> ElinTable:
    return ElinTable(window_s, size, clock=clock)


def take(elins: ElinTable, candidates: list[str], caller: str = "alice") -> str:
    entry = elins.assign(candidates, caller_uri=f"sip:{caller}@contoso.com",
                         caller_contact=f"sip:{caller}@192.0.2.10:5060", caller_id=caller)
    assert entry is not None
    return entry.elin


def test_defaults_are_those_of_a_mediant_1000():
    elins = ElinTable()
    assert elins.window_s == DEFAULT_CALLBACK_WINDOW_S == 1800.0
    assert elins.size == DEFAULT_TABLE_SIZE == 100


# -- selection ---------------------------------------------------------------------------------------


def test_an_empty_table_picks_the_first_candidate(clock):
    assert table(clock).pick([A, B, C]) == A


def test_no_candidate_picks_nothing(clock):
    elins = table(clock)
    assert elins.pick([]) is None
    assert elins.assign([], caller_uri=None, caller_contact=None, caller_id=None) is None
    assert len(elins) == 0


def test_the_elin_with_the_fewest_active_calls_wins(clock):
    elins = table(clock)
    assert take(elins, [A, B, C], "alice") == A
    clock.now += 1
    assert take(elins, [A, B, C], "bob") == B
    clock.now += 1
    assert take(elins, [A, B, C], "carol") == C
    assert [entry.active for entry in elins.entries()] == [1, 1, 1]


def test_among_equally_busy_elins_the_one_idle_longest_wins(clock):
    elins = table(clock)
    take(elins, [A, B], "alice")
    take(elins, [A, B], "bob")
    clock.now = 1100
    elins.release(B)  # B idle since 1100
    clock.now = 1200
    elins.release(A)  # A idle since 1200
    clock.now = 1300
    assert elins.pick([A, B]) == B
    # A never-used ELIN has been idle forever: it beats both.
    assert elins.pick([A, B, C]) == C


def test_an_idle_elin_beats_a_busy_one_however_long_the_busy_one_has_run(clock):
    elins = table(clock)
    take(elins, [A, B], "alice")  # A busy since 1000
    clock.now = 5000
    take(elins, [B], "bob")
    elins.release(B)  # B idle since 5000, a moment ago
    assert elins.pick([A, B]) == B


def test_when_every_elin_is_busy_the_least_busy_then_the_longest_unchanged_wins(clock):
    elins = table(clock)
    take(elins, [A], "alice")
    clock.now += 10
    take(elins, [B], "bob")
    clock.now += 10
    take(elins, [B], "carol")  # B: two calls
    assert elins.pick([A, B]) == A  # one call against two
    clock.now += 10
    take(elins, [A], "dave")  # now A: two calls too, A changed last
    assert elins.pick([A, B]) == B


def test_candidates_compare_on_digits_and_duplicates_count_once(clock):
    elins = table(clock)
    take(elins, ["+14255550001"], "alice")
    assert elins.get("425-555-0001") is elins.get(A) is elins.get("tel:+1-425-555-0001") is not None
    assert elins.pick(["14255550001", A, B]) == B
    assert elin_key("+1 (425) 555-0001") == A and elin_key("") is None


def test_the_entry_keeps_the_last_caller_of_an_elin(clock):
    elins = table(clock)
    take(elins, [A], "alice")
    elins.release(A)
    take(elins, [A], "bob")
    entry = elins.get(A)
    assert entry.caller_uri == "sip:bob@contoso.com" and entry.caller_contact == "sip:bob@192.0.2.10:5060"
    assert entry.caller_id == "bob" and entry.active == 1


# -- the callback window -----------------------------------------------------------------------------


def test_a_callback_while_the_call_is_up_reaches_the_caller(clock):
    elins = table(clock, window_s=0)
    take(elins, [A])
    clock.now += 10_000
    assert elins.callback(A).caller_contact == "sip:alice@192.0.2.10:5060"


def test_a_callback_reaches_the_caller_until_the_window_is_over(clock):
    elins = table(clock, window_s=1800)
    take(elins, [A])
    clock.now = 2000
    elins.release(A)
    clock.now = 2000 + 1799.9
    assert elins.callback(A) is not None
    assert elins.callback("+1" + A) is not None
    clock.now = 2000 + 1800
    assert elins.callback(A) is None
    assert elins.get(A) is not None  # still known (a 404 says why), just out of its window


def test_the_window_counts_from_the_end_of_the_last_call(clock):
    elins = table(clock, window_s=60)
    take(elins, [A], "alice")
    elins.release(A)
    clock.now += 50
    take(elins, [A], "bob")
    clock.now += 50
    elins.release(A)
    clock.now += 50
    entry = elins.callback(A)
    assert entry is not None and entry.caller_id == "bob"
    clock.now += 10
    assert elins.callback(A) is None


def test_window_zero_routes_no_callback_once_the_call_ended(clock):
    elins = table(clock, window_s=0)
    take(elins, [A])
    elins.release(A)
    assert elins.callback(A) is None


def test_an_unknown_elin_has_no_callback(clock):
    elins = table(clock)
    take(elins, [A])
    assert elins.callback(B) is None and elins.callback(None) is None and elins.callback("alice") is None


def test_release_of_an_unknown_elin_or_twice_is_harmless(clock):
    elins = table(clock)
    elins.release(B)
    take(elins, [A])
    elins.release(A)
    elins.release(A)
    assert elins.get(A).active == 0 and len(elins) == 1


@pytest.mark.parametrize("window_s", [-1, 3600.5, float("nan"), float("inf"), True, "30"])
def test_a_window_outside_0_to_3600_seconds_is_refused(window_s):
    with pytest.raises(ValueError):
        ElinTable(window_s)


@pytest.mark.parametrize("window_s", [0, 1, 1800, 3600])
def test_windows_from_0_to_60_minutes_are_accepted(window_s):
    assert ElinTable(window_s).window_s == window_s


# -- the bound ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, -1, 1.5, True])
def test_a_size_below_one_is_refused(size):
    with pytest.raises(ValueError):
        ElinTable(1800, size)


def test_the_table_never_holds_more_than_its_size_and_evicts_the_longest_idle(clock):
    elins = table(clock, size=3)
    for elin in (A, B, C):
        take(elins, [elin])
        clock.now += 1
    elins.release(B)  # idle since 1003
    clock.now += 1
    elins.release(A)  # idle since 1004
    clock.now += 1
    take(elins, ["4255550004"])
    assert len(elins) == 3
    assert elins.get(B) is None and elins.get(A) is not None and elins.get(C) is not None


def test_a_busy_elin_is_evicted_only_when_every_entry_is_busy(clock):
    elins = table(clock, size=2)
    take(elins, [A])
    clock.now += 1
    take(elins, [B])
    clock.now += 1
    take(elins, [C])  # all busy: the one unchanged longest (A) goes
    assert len(elins) == 2 and elins.get(A) is None


def test_a_hundred_and_one_elins_keep_a_hundred(clock):
    elins = table(clock)
    for number in range(101):
        elin = f"42555{number:05d}"
        take(elins, [elin])
        elins.release(elin)
        clock.now += 1
    assert len(elins) == 100
    assert elins.get("4255500000") is None and elins.get("4255500100") is not None
