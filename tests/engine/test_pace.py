"""The level of tries in flight (engine/pace.py), with a fake clock: tries simulated in a steady state, each taking
as long as a model of the server says at the level it was sent at."""

from __future__ import annotations

import asyncio
import heapq
import random
from collections.abc import Callable

import pytest

from binance_archive.engine.pace import Pace, Ticket, TryEnd


class Clock:
    """A clock that moves only when told (it starts far from 0: a stamp's sign marks a try not measured)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def latency_bound(seconds: float, capacity: float = float("inf")) -> Callable[[int], float]:
    """A server whose answers take ``seconds``, and which serves at most ``capacity`` tries a second: beyond that
    level, a try takes longer in proportion (so throughput stops growing)."""
    return lambda level: max(seconds, level / capacity)


class Simulation:
    """Keeps the pace's level of tries in flight, each ending ``took(level)`` seconds after it was sent."""

    def __init__(
        self, pace: Pace, clock: Clock, took: Callable[[int], float], refused: Callable[[int, int], bool] | None = None
    ) -> None:
        self.pace, self.clock, self.took = pace, clock, took
        self.refused = refused or (lambda _level, _n: False)  # (the level it was sent at, its number): refused?
        self.running: list[tuple[float, int, Ticket]] = []  # (when it ends, a tie-breaker, its ticket)
        self.sent = 0
        self.refusals = 0

    def _fill(self) -> None:
        pace = self.pace
        while (stamp := pace.enter()) is not None:
            self.sent += 1
            # A spread of a few per cent, as real answers have: tries do not end in lockstep waves.
            spread = 1 + (self.sent * 7919 % 101) / 2000
            heapq.heappush(self.running, (self.clock.now + self.took(pace.level) * spread, self.sent, stamp))

    def run(self, tries: int) -> list[int]:
        """``tries`` more tries; the level after each ended."""
        levels = []
        self._fill()
        for _ in range(tries):
            ends, number, ticket = heapq.heappop(self.running)
            self.clock.now = ends
            refused = self.refused(ticket.level, number)
            self.refusals += refused
            self.pace.leave(ticket, TryEnd.REFUSED if refused else TryEnd.DONE)
            levels.append(self.pace.level)
            self._fill()
        return levels


def simulate(pace: Pace, clock: Clock, took: Callable[[int], float], tries: int) -> list[int]:
    return Simulation(pace, clock, took).run(tries)


def distinct(levels: list[int]) -> list[int]:
    """The levels in the order they were reached, each change once."""
    return [level for i, level in enumerate(levels) if i == 0 or levels[i - 1] != level]


def test_the_level_doubles_while_throughput_grows_and_never_passes_the_ceiling() -> None:
    clock = Clock()
    pace = Pace(16, 100, min_round=0.1, clock=clock)
    levels = simulate(pace, clock, latency_bound(0.2), 3000)  # latency bound: twice the tries, twice the files/s
    assert distinct(levels) == [16, 32, 64, 100]
    assert max(levels) == 100
    summary = pace.summary()
    assert summary.adaptive and summary.start == 16 and summary.low == 16 and summary.high == 100
    assert summary.settled == 100 and summary.ceiling == 100 and summary.backoffs == 0


def test_a_doubling_whose_first_round_paid_for_its_new_connections_gets_a_second_round() -> None:
    """Tries sent just after a raise wait behind the burst of connections it opens (here 0.35 s instead of 0.2 s):
    judged on that round alone, 80 -> 160 would look like 1.14x the files a second and be given up."""
    clock = Clock()
    pace = Pace(80, 160, clock=clock)
    raised_at = [-1.0]

    def took(level: int) -> float:
        if level == 160 and raised_at[0] < 0:
            raised_at[0] = clock.now
        return 0.35 if 0 <= clock.now - raised_at[0] < 0.25 else 0.2

    levels = Simulation(pace, clock, took).run(2000)
    assert distinct(levels) == [80, 160], "kept after its second round: 160 in flight give 2x the files a second"
    assert pace.summary().settled == 160


def test_a_doubling_that_does_not_pay_in_its_second_round_either_goes_back() -> None:
    clock = Clock()
    pace = Pace(80, 160, clock=clock)
    levels = Simulation(pace, clock, latency_bound(0.2, capacity=400)).run(2000)  # 80 in flight already give 400/s
    assert distinct(levels)[:3] == [80, 160, 80]
    raised = levels.index(160)
    back = levels.index(80, raised)
    # Judged on its first round alone it went back after ~200 tries ended (a wave sent at 80, then 40 measured).
    assert back - raised >= 2 * 160, "a second round at 160 (80 more tries measured) before going back"


def test_the_round_after_a_raise_ends_one_latency_later_not_two() -> None:
    """The added places' first tries are not measured, so the round after a raise is made of the places it had
    before: it ends when their next tries do, about one latency after the raise. Waiting for half the new level
    would wait for the added places' second tries: two latencies."""
    clock = Clock()
    start = clock.now
    pace = Pace(80, 256, clock=clock)
    simulation = Simulation(pace, clock, latency_bound(0.2))
    raised: dict[int, float] = {}
    while 256 not in raised:
        level = simulation.run(1)[-1]
        raised.setdefault(level, clock.now - start)
    assert list(raised) == [80, 160, 256]
    assert 0.2 <= raised[160] < 0.25, "the first round: the first 40 of 80 tries of 0.2 s"
    assert 0.2 <= raised[256] - raised[160] < 0.25, raised


def test_it_returns_to_the_level_before_and_holds_when_throughput_stops_growing() -> None:
    clock = Clock()
    pace = Pace(16, 1024, min_round=0.1, hold_rounds=8, clock=clock)
    # 400 tries a second at most: from 80 in flight on, more only makes each try slower.
    took = latency_bound(0.2, capacity=400)
    simulation = Simulation(pace, clock, took)
    levels = simulation.run(1500)
    assert distinct(levels)[:5] == [16, 32, 64, 128, 64], "128 gave 400/s against 320/s at 64: not worth it"
    back = levels.index(64, levels.index(128))
    held = levels[back:]
    assert held[: 8 * 32] == [64] * (8 * 32), "held for hold_rounds rounds (of at least 32 tries at 64)"
    # Then it probes a step (16 // 8) at a time while that pays, which it does up to the capacity (80).
    later = distinct(levels + simulation.run(6000))
    assert later[5:12] == [66, 68, 70, 72, 74, 76, 78], later
    assert max(later[5:]) == 82 and set(later[12:]) == {80, 82}, "82 is tried now and then, and given up"
    summary = pace.summary()
    assert summary.settled == 80 and summary.high == 128 and summary.low == 16 and summary.backoffs == 0


def test_a_refusal_halves_the_level_at_once_and_not_again_for_tries_sent_before_or_the_same_storm() -> None:
    clock = Clock()
    pace = Pace(32, 32, floor=4, clock=clock)
    early = [pace.enter() for _ in range(32)]
    assert None not in early and pace.enter() is None, "the gate holds 32"
    clock.now += 0.05
    pace.leave(early[0], TryEnd.REFUSED)  # type: ignore[arg-type]  # one refusal is enough below a level of 64
    assert pace.level == 16 and pace.enter() is None, "31 in flight: none more until under 16"
    for ticket in early[1:20]:  # refusals of tries sent before the cut: that cut answered them
        pace.leave(ticket, TryEnd.REFUSED)  # type: ignore[arg-type]
    assert pace.level == 16 and pace.active == 12
    for ticket in early[20:]:
        pace.leave(ticket, TryEnd.OTHER)  # type: ignore[arg-type]
    clock.now += 0.05
    late = pace.enter()
    assert late is not None
    clock.now += 0.05
    pace.leave(late, TryEnd.REFUSED)  # sent after the cut, but before the level it went to was measured
    assert pace.level == 16
    summary = pace.summary()
    assert summary.backoffs == 1 and summary.low == 16 and summary.high == 32


def test_never_below_the_floor() -> None:
    clock = Clock()
    pace = Pace(4, 8, floor=4, clock=clock)
    ticket = pace.enter()
    assert ticket is not None
    pace.leave(ticket, TryEnd.REFUSED)
    assert pace.level == 4 and pace.summary().backoffs == 0, "a refusal at the floor halves nothing"


def test_where_the_server_sheds_load_the_level_goes_under_what_it_takes_and_stays_near() -> None:
    """40 tries at once are taken; beyond, each try is refused with the share a server shedding load refuses."""
    clock = Clock()
    pace = Pace(80, 256, clock=clock)
    capacity = 40

    def refused(level: int, number: int) -> bool:
        return level > capacity and (number * 7919 % 1000) / 1000 < 1 - capacity / level

    simulation = Simulation(pace, clock, latency_bound(0.05), refused)
    levels = simulation.run(20_000)
    summary = pace.summary()
    assert summary.backoffs > 0 and levels[0] == 80 and min(levels) >= 10
    assert summary.settled <= capacity, summary
    late = levels[10_000:]
    assert sum(late) / len(late) > capacity / 2, "not stuck far below what the server takes"
    assert simulation.refusals < 0.05 * 20_000, simulation.refusals


@pytest.mark.parametrize("seed", range(8))
def test_refusals_that_do_not_follow_the_level_do_not_sink_it(seed: int) -> None:
    """A fifth of the tries refused whatever their number (the fake archive's rate_429): halving lessens nothing,
    and once that is measured the cut is undone and the level grows as throughput does. Eight draws: a test of
    shares that mistakes chance for load one time in four fails some of them."""
    clock = Clock()
    pace = Pace(80, 256, clock=clock)
    draws = random.Random(seed)
    simulation = Simulation(pace, clock, latency_bound(0.05), lambda _level, _number: draws.random() < 0.2)
    levels = simulation.run(20_000)
    summary = pace.summary()
    assert summary.backoffs > 0, "the first refusals cut, before there is anything to compare"
    assert min(levels) >= 40 and summary.settled >= 128 and pace.level >= 128, (summary, distinct(levels))


def test_after_a_cut_it_grows_a_step_a_round_while_that_pays() -> None:
    clock = Clock()
    pace = Pace(16, 64, step=4, clock=clock)
    stamp = pace.enter()
    assert stamp is not None
    pace.leave(stamp, TryEnd.REFUSED)
    assert pace.level == 8
    levels = distinct(simulate(pace, clock, latency_bound(0.2), 600))
    assert levels[:4] == [8, 12, 16, 20], "additive after a cut, not doubling"


def test_a_round_that_does_not_fill_the_level_changes_nothing() -> None:
    """The plan ran short (or files were skipped): fewer tries than the level were in flight, so the level did not
    limit the round, and its throughput says nothing about a higher one."""
    clock = Clock()
    pace = Pace(16, 256, clock=clock)
    for _ in range(200):  # 4 tries at a time, never 16
        stamps = [pace.enter() for _ in range(4)]
        clock.now += 0.2
        for stamp in stamps:
            pace.leave(stamp, TryEnd.DONE)  # type: ignore[arg-type]
    assert pace.level == 16 and pace.summary().high == 16


def test_the_summary_settles_on_the_level_held_longest() -> None:
    clock = Clock()
    pace = Pace(8, 64, clock=clock)
    simulate(pace, clock, latency_bound(0.05), 4000)
    summary = pace.summary()
    assert summary.settled == 64 and summary.low == 8 and summary.high == 64 and summary.start == 8
    assert summary.describe().startswith("64 (found from 8: 8 to 64, at most 64")


def test_levels_out_of_order_are_refused() -> None:
    with pytest.raises(ValueError, match="floor <= start <= ceiling"):
        Pace(100, 10)


async def test_the_gate_lets_a_waiter_in_when_a_place_frees_and_follows_a_cut() -> None:
    clock = Clock()
    pace = Pace(2, 4, clock=clock)
    first, second = pace.enter(), pace.enter()
    assert first is not None and second is not None and pace.enter() is None
    waiter = asyncio.create_task(pace.wait())
    await asyncio.sleep(0)
    assert not waiter.done()
    pace.leave(first, TryEnd.DONE)
    third = await asyncio.wait_for(waiter, 5)
    assert third.sent == clock.now and third.level == 2 and pace.active == 2
    # A cut to 1 with 2 in flight: the next waiter gets in only when both have left.
    pace.leave(second, TryEnd.REFUSED)
    assert pace.level == 1 and pace.active == 1
    waiter = asyncio.create_task(pace.wait())
    await asyncio.sleep(0)
    assert not waiter.done() and pace.enter() is None
    cancelled = asyncio.create_task(pace.wait())
    await asyncio.sleep(0)
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    pace.leave(third, TryEnd.OTHER)
    await asyncio.wait_for(waiter, 5)
    assert pace.active == 1


async def test_a_waiter_cancelled_before_its_turn_leaves_the_gate_as_it_was() -> None:
    """Its wait is cancelled, and a place frees before the waiter's task runs again: the gate drops the cancelled
    waiter, and the waiter's own cleanup must not fail on it (it raised ValueError)."""
    pace = Pace(1, 1, clock=Clock())
    ticket = pace.enter()
    assert ticket is not None
    waiter = asyncio.create_task(pace.wait())
    await asyncio.sleep(0)
    waiter.cancel()
    pace.leave(ticket, TryEnd.DONE)
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert pace.active == 0 and pace.enter() is not None
