"""How many tries a run keeps in flight when the user gives only a ceiling: found by measuring, as TCP finds its
window.

A :class:`Pace` is a gate with a level that moves. Every try of a file (its zip and its sidecar at once) passes it
(:meth:`Pace.enter`, :meth:`Pace.wait`, :meth:`Pace.leave`), and the tries that end well are its measurements:

- **Rounds.** A round gathers the tries that started after the level last changed and ended well, at least half
  the level of them and at least ``min_round`` seconds' worth. Its throughput comes from Little's law: the tries
  in flight (sampled as each ends) over the mean time a try took. Comparing the time a try takes, rather than
  counting files a second, needs no warm-up after a change: a try started at the new level takes as long as the
  new level makes it take. The first tries into the places a raise adds are left out (they open connections,
  which a handshake over a long link makes slow, once), so the round after a raise waits for half the places it
  had before, whose next tries are measured, rather than for the added places' second tries: a round trip less
  below the ceiling (docs/performance.md, *The ramp to 256*).
- **Growth.** From ``start`` the level doubles each round while a round's throughput grows by at least half as much
  as the level did (80 to 160 files in flight must give at least 1.5 times the files a second); where a doubling's
  first round falls short, a second round at that level decides (the first also paid for opening the new
  connections, all at once), and the level that does not pay goes back to the level before and holds it. While
  holding, a step of ``step`` is tried every ``hold_rounds`` rounds, kept on the same condition. A round whose tries
  did not fill the level (the plan ran short, files were skipped) teaches nothing and changes nothing.
- **Back-off.** A try the server turned away for load (429, 503, a connection refused or reset:
  :attr:`~binance_archive.errors.RetryableError.throttled`) halves the level at once, never below ``floor``.
  Below a level of 64 one refusal is enough; above, a round needs one refusal in 32 of the level (a refusal or two
  among hundreds of tries is the network's noise, not a server asking for less). Refusals of tries sent before
  the last cut, or while the level it went to is being weighed (below), do not cut again: they are the same
  storm, not news. Growth after a cut is additive (``step`` a round, on the same condition). The tries a retry
  waits for do not hold their place while they wait: they pass the gate again.
- **Weighing a cut.** Not every refusal is about load: a server (or a fault injector) may turn away a share of
  requests whatever their number. So the tries ended and refused are counted per band of levels (powers of two:
  32-63, 64-127, ...), and once the band a cut went down to has ended enough tries (the level holds meanwhile, a
  few rounds at most), the cut is weighed: where refusals there are not significantly fewer than the band
  above's share would give (two standard deviations), they did not follow the level, so the cut is undone.

Everything here runs on the event loop, without locks: a try costs 2 - 4 µs here (a :class:`Ticket`, two clock
readings, a few additions; measured in docs/performance.md), against ~600 µs of CPU per small file.
"""

from __future__ import annotations

import asyncio
import collections
import enum
import logging
import math
import time
from collections.abc import Callable
from typing import NamedTuple

from binance_archive.report import Concurrency

__all__ = ["Pace", "Ticket", "TryEnd"]

log = logging.getLogger(__name__)

_GAIN = 0.5
"""A raise is kept when throughput grew by at least this share of the level's growth."""
_FULL = 0.8
"""A round teaches something only when the tries in flight filled at least this share of the level."""
_REFUSALS_PER_LEVEL = 32
"""Above a level of this many, a round cuts after one refusal for every this many of its level."""
_SAMPLE = 64
"""Tries ended at a band of levels before its share of refusals is taken as known."""
_SAMPLE_MAX = 1024
"""... and the most it keeps: past that, its counts are halved (older tries weigh less)."""
_WEIGH_ROUNDS = 4
"""Rounds a cut may wait to be weighed, the level held; then it stands."""


class Ticket(NamedTuple):
    """A try's pass through the gate: what :meth:`Pace.leave` needs to learn from how it ended."""

    sent: float
    """When it passed the gate (the pace's clock)."""
    level: int
    """The level then."""
    measured: bool
    """Whether its time counts in a round (a new worker's first try, which opens connections, does not)."""


class TryEnd(enum.Enum):
    """How a try that passed the gate ended."""

    DONE = "done"
    """It got its answer and the file was dealt with: a measurement."""
    REFUSED = "refused"
    """The server turned it away for load: back off."""
    OTHER = "other"
    """Anything else (a 404, a mismatch, another transient error, a cancellation): no measurement."""


class _Phase(enum.Enum):
    START = "start"  # doubling each round while it pays
    PROBE = "probe"  # a step a round while it pays
    HOLD = "hold"  # the level stays; a step is tried every hold_rounds rounds


class Pace:
    """The gate and the level of tries in flight: see the module's docstring.

    Args:
        start: the level to begin at.
        ceiling: the level never goes above this (the user's ``--max-concurrency``).
        floor: ... nor below this.
        step: what a probe adds (default: an eighth of ``start``, at least 1).
        min_round: the shortest round, in seconds.
        hold_rounds: rounds held before the next probe.
        clock: seconds, monotonic (tests pass a fake one).
    """

    def __init__(
        self,
        start: int,
        ceiling: int,
        *,
        floor: int = 1,
        step: int | None = None,
        min_round: float = 0.1,
        hold_rounds: int = 8,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 1 <= floor <= start <= ceiling:
            raise ValueError(f"the levels must be 1 <= floor <= start <= ceiling, got {floor}, {start}, {ceiling}")
        self._clock = clock
        self._floor, self._ceiling, self._start = floor, ceiling, start
        self._step = step or max(1, start // 8)
        self._min_round = min_round
        self._hold_rounds = hold_rounds
        self._level = start
        self._active = 0
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._fresh = 0  # the next acquisitions not to measure: the places a raise added (new connections)
        self._measured_places = start  # the places whose next tries are measured: a round waits for half of them
        self._phase = _Phase.START if start < ceiling else _Phase.HOLD
        self._previous: tuple[int, float] | None = None  # (level, throughput) of the round before a raise
        self._second_look = False  # whether the level a doubling reached is in its second round of being judged
        self._held = 0
        self._cut_at = -math.inf  # when the level was last cut: refusals of tries sent before do not count
        # (level before, level after, rounds left, phase before) of a cut not yet weighed: the level holds meanwhile.
        self._weighing: tuple[int, int, int, _Phase] | None = None
        self._tally: dict[int, list[int]] = {}  # band (level.bit_length()) -> [tries ended, of them refused]
        # The current round.
        now = clock()
        self._round_start = now
        self._count = 0
        self._sum_seconds = 0.0
        self._sum_active = 0
        self._refusals = 0
        self._turned_away = 0  # tries refused that ended in this round (for its throughput)
        # For the report: seconds spent at each level, the extremes, the cuts.
        self._since = now
        self._seconds_at: dict[int, float] = collections.defaultdict(float)
        self._low = self._high = start
        self._cuts = 0

    @property
    def level(self) -> int:
        """The tries allowed in flight now."""
        return self._level

    @property
    def active(self) -> int:
        """The tries in flight now."""
        return self._active

    # -- the gate -----------------------------------------------------------------------------------------

    def enter(self) -> Ticket | None:
        """Take a place at once if one is free (and nobody waits for one): the try's ticket, else ``None`` (then
        ``await wait()``)."""
        if self._active < self._level and not self._waiters:
            self._active += 1
            return self._stamp()
        return None

    async def wait(self) -> Ticket:
        """Wait for a place; the try's ticket."""
        future = asyncio.get_running_loop().create_future()
        self._waiters.append(future)
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():  # a place was handed over just as it was cancelled
                self._active -= 1
                self._wake()
            elif future in self._waiters:  # else _wake already dropped it (cancelled before its turn came)
                self._waiters.remove(future)
            raise
        return self._stamp()

    def leave(self, ticket: Ticket, end: TryEnd) -> None:
        """A try that passed the gate with ``ticket`` ended as ``end``."""
        self._active -= 1
        if end is TryEnd.DONE:
            self._count_end(ticket.level, refused=False)
            if ticket.measured and ticket.sent >= self._round_start:
                now = self._clock()
                self._count += 1
                self._sum_seconds += now - ticket.sent
                self._sum_active += self._active + 1
                if self._count >= self._round_size and now - self._round_start >= self._min_round:
                    self._end_round(now)
        elif end is TryEnd.REFUSED:
            self._count_end(ticket.level, refused=True)
            self._turned_away += 1
            self._refused(ticket.sent)
        if self._waiters:
            self._wake()

    def _stamp(self) -> Ticket:
        if self._fresh:
            self._fresh -= 1
            return Ticket(self._clock(), self._level, False)
        return Ticket(self._clock(), self._level, True)

    def _count_end(self, level: int, *, refused: bool) -> None:
        tally = self._tally.get(level.bit_length())
        if tally is None:
            tally = self._tally[level.bit_length()] = [0, 0]
        tally[0] += 1
        tally[1] += refused
        if tally[0] >= _SAMPLE_MAX:
            tally[0] //= 2
            tally[1] //= 2

    def _steady(self, level: int, lower: int) -> bool | None:
        """Whether refusals are about as common at ``lower`` as at ``level`` (its band of levels against the band of
        ``lower``): then halving does not lessen them. ``None`` while either band has not ended enough tries.

        "About" is a test, not a ratio: the refusals counted at ``lower`` are not significantly fewer (two standard
        deviations, the uncertainty of both shares) than the share at ``level`` would give there. A server that
        sheds load refuses far fewer at half the level, or takes twice the share; refusals drawn whatever the level
        come out as common (a ratio of two shares of 64 tries each mistook them for load one time in four)."""
        above, below = self._tally.get(level.bit_length()), self._tally.get(lower.bit_length())
        if above is None or below is None or above[0] < _SAMPLE or below[0] < _SAMPLE:
            return None
        share = above[1] / above[0]
        if share == 0:
            return False
        tries, refused = below
        deviation = math.sqrt(tries * share * (1 - share) * (1 + tries / above[0]))
        return refused >= tries * share - 2 * deviation

    def _wake(self) -> None:
        waiters = self._waiters
        while waiters and self._active < self._level:
            future = waiters.popleft()
            if not future.done():
                self._active += 1
                future.set_result(None)

    # -- the level ----------------------------------------------------------------------------------------

    @property
    def _round_size(self) -> int:
        # Half the places measured, not half the level: after a raise, waiting for half the new level would wait
        # for the added places' second tries, one latency more at a level already being paid for.
        return max(16, self._measured_places // 2)

    def _refused(self, started: float) -> None:
        if started < self._cut_at:
            return  # sent before the last cut: that cut answered it already
        if self._weighing is not None:
            return  # a cut not yet weighed: the band it went down to is being measured
        self._refusals += 1
        if self._refusals >= max(1, self._level // _REFUSALS_PER_LEVEL):
            level = max(self._floor, self._level // 2)
            if level < self._level and self._steady(self._level, level):
                self._refusals = 0
                return  # refusals as common at half the level: halving would not lessen them
            now = self._clock()
            log.debug("files in flight: %d -> %d (the server turned %d tries away)", self._level, level, self._refusals)
            self._cut_at = now
            phase, self._phase = self._phase, _Phase.PROBE
            self._previous = None
            if level < self._level:  # at the floor there is nothing to halve
                self._cuts += 1
                self._weighing = (self._level, level, _WEIGH_ROUNDS, phase)
            self._set(level, now)

    def _weigh(self, now: float) -> bool:
        """Weigh the last cut once the band it went down to is measured: undo it if refusals did not follow the
        level. Whether the round that just ended is to teach nothing more (the cut is still being weighed, or was
        undone)."""
        assert self._weighing is not None
        before, after, rounds, phase = self._weighing
        steady = self._steady(before, after)
        if steady is None:
            # Not enough tries ended yet: the level holds, a few rounds at most (then the cut stands).
            self._weighing = (before, after, rounds - 1, phase) if rounds > 1 else None
            return self._weighing is not None
        self._weighing = None
        if not steady or self._level != after:
            return False
        log.debug("files in flight: %d -> %d (refusals as common at %d as at %d: not about load)", after, before,
                  after, before)  # fmt: skip
        # As it was before the cut: still doubling, probing or holding (from a fresh measurement).
        self._phase, self._held, self._previous = phase, 0, None
        self._raise(before, now, "undone")
        return True

    def _end_round(self, now: float) -> None:
        level = self._level
        mean_active = self._sum_active / self._count
        throughput = mean_active / (self._sum_seconds / self._count) if self._sum_seconds > 0 else math.inf
        # Tries turned away held places too: only the share that got an answer counts.
        throughput *= self._count / (self._count + self._turned_away)
        full = mean_active >= _FULL * level
        self._new_round(now)
        if self._weighing is not None and self._weigh(now):
            return
        if not full:
            return  # the level was not what limited this round: nothing to learn from it
        if self._phase is _Phase.HOLD:
            self._held += 1
            if self._held >= self._hold_rounds and level < self._ceiling:
                self._held = 0
                self._previous = (level, throughput)
                self._phase = _Phase.PROBE
                self._raise(level + self._step, now, "probe")
            return
        previous = self._previous
        if previous is None or previous[0] >= level:  # the first round at this level after a start or a cut
            self._previous = (level, throughput)
            self._grow(now)
            return
        before, before_throughput = previous
        gain = (throughput / before_throughput - 1) / (level / before - 1)
        if gain < _GAIN and self._phase is _Phase.START and not self._second_look:
            # A doubling's first round also paid for opening as many connections as there were, in a burst: one
            # more round at this level before it is judged (docs/performance.md, *The ramp to 256*).
            log.debug("files in flight: %d -> %d gave %.0f -> %.0f tries/s: one more round", before, level,
                      before_throughput, throughput)  # fmt: skip
            self._second_look = True
            return
        if gain >= _GAIN:
            log.debug("files in flight: %d -> %d gave %.0f -> %.0f tries/s: kept", before, level,
                      before_throughput, throughput)  # fmt: skip
            self._previous = (level, throughput)
            self._grow(now)
        else:
            log.debug("files in flight: %d -> %d gave %.0f -> %.0f tries/s: back to %d", before, level,
                      before_throughput, throughput, before)  # fmt: skip
            self._phase, self._held, self._previous = _Phase.HOLD, 0, None
            self._set(before, now)

    def _grow(self, now: float) -> None:
        level = self._level
        target = min(self._ceiling, 2 * level if self._phase is _Phase.START else level + self._step)
        if target <= level:
            self._phase, self._held = _Phase.HOLD, 0
            return
        self._raise(target, now, "growing")

    def _raise(self, level: int, now: float, why: str) -> None:
        log.debug("files in flight: %d -> %d (%s)", self._level, level, why)
        self._fresh += level - self._level
        self._second_look = False
        measured = self._level
        self._set(level, now)
        self._measured_places = measured
        if self._waiters:
            self._wake()

    def _set(self, level: int, now: float) -> None:
        self._seconds_at[self._level] += now - self._since
        self._since = now
        self._level = level
        self._low, self._high = min(self._low, level), max(self._high, level)
        self._new_round(now)

    def _new_round(self, now: float) -> None:
        self._round_start = now
        self._measured_places = self._level
        self._count = 0
        self._sum_seconds = 0.0
        self._sum_active = 0
        self._refusals = 0
        self._turned_away = 0

    # -- what it came to ----------------------------------------------------------------------------------

    def summary(self) -> Concurrency:
        """What the level did, for the report; ``settled`` is the median level over the run's time."""
        now = self._clock()
        seconds = dict(self._seconds_at)
        seconds[self._level] = seconds.get(self._level, 0.0) + now - self._since
        # The median over time: half the run at this level or below (a level that saws up and down between cuts
        # has no one level it held the longest).
        half, total, settled = sum(seconds.values()) / 2, 0.0, self._level
        for level in sorted(seconds):
            total += seconds[level]
            if total >= half:
                settled = level
                break
        return Concurrency(
            adaptive=True,
            start=self._start,
            settled=settled,
            low=self._low,
            high=self._high,
            ceiling=self._ceiling,
            backoffs=self._cuts,
        )
