"""The rows of a file: one generator per file, a random walk of plausible numbers in the real row formats.

Every row is a pure function of ``(file.key, seed)``: the same file always gets the same rows.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import random
import zlib
from collections.abc import Iterator

from binance_archive.core import ArchiveFile, DataType, Interval, Market, Period
from binance_archive.core.periods import next_month
from binance_archive.testing.content.columns import time_unit
from binance_archive.testing.content.prices import base_price, decimals, notional_per_second

__all__ = ["QUIRKS", "csv_rows"]


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_DAY = 86_400
# 1970-01-01 was a Thursday; Binance's weekly candles open on Mondays, 4 days later.
_WEEK_OFFSET = 4 * _DAY

# Rows per day of the event-like types, where the file has no natural row count. Far fewer than the real
# files (BTCUSDT has ~1-2 million trades a day) so trees stay small; max_rows lowers them further.
_EVENTS_PER_DAY = {
    DataType.TRADES: 4_000,
    DataType.AGG_TRADES: 2_000,
    DataType.BOOK_TICKER: 10_000,
    DataType.LIQUIDATION_SNAPSHOT: 50,
}


# The real files' quirks, every so many rows: metrics rows come out of time order and with exact duplicates,
# liquidation snapshots with duplicates, book tickers now and then out of order (ARCHIVE notes; #259).
QUIRKS = {
    DataType.METRICS: (40, 25),
    DataType.LIQUIDATION_SNAPSHOT: (10, 0),
    DataType.BOOK_TICKER: (0, 500),
}
"""Per data type, ``(duplicate every Nth row, swap every Mth row with the next)``; 0 for never."""


def csv_rows(file: ArchiveFile, *, max_rows: int | None = None, seed: int = 0) -> Iterator[tuple[str, ...]]:
    """The file's data rows (no header), deterministic in ``(file.key, seed)``.

    Kline files get one row per candle of the period; event files (trades, book tickers, ...) a nominal
    number of rows spread over the period. ``max_rows`` caps the count: klines keep their first candles,
    event files spread fewer events over the whole period. Rows have the real files' quirks (:data:`QUIRKS`).
    """
    if max_rows is not None and max_rows < 0:
        raise ValueError(f"max_rows must be >= 0, not {max_rows}")
    gen = _Generator(file, seed)
    rows = gen.rows(max_rows)
    if file.data_type in QUIRKS:
        rows = _with_quirks(rows, *QUIRKS[file.data_type])
    if max_rows is None:
        return rows
    return (row for _, row in zip(range(max_rows), rows, strict=False))


def _with_quirks(rows: Iterator[tuple[str, ...]], duplicate: int, swap: int) -> Iterator[tuple[str, ...]]:
    """``rows`` with every ``duplicate``-th one written twice and every ``swap``-th one after its successor."""
    held: tuple[str, ...] | None = None
    for number, row in enumerate(rows, start=1):
        if held is not None:
            yield row
            yield held
            held = None
        elif swap and number % swap == 0:
            held = row
            continue
        else:
            yield row
        if duplicate and number % duplicate == 0:
            yield row
    if held is not None:
        yield held


class _Generator:
    """Row generation for one file: the period, the time unit, the formats of its market."""

    def __init__(self, file: ArchiveFile, seed: int) -> None:
        self.file = file
        # Seeding with a string is stable across runs and machines (it is hashed with SHA-512).
        self.rng = random.Random(f"{file.key}|{seed}")
        start = dt.datetime.combine(file.date, dt.time(), tzinfo=dt.UTC)
        end_day = next_month(file.date) if file.period is Period.MONTHLY else file.date + dt.timedelta(days=1)
        self.start = int((start - _EPOCH).total_seconds())
        self.end = int((dt.datetime.combine(end_day, dt.time(), tzinfo=dt.UTC) - _EPOCH).total_seconds())
        self.unit = time_unit(file)
        self.spot = file.market is Market.SPOT
        self.cm = file.market is Market.FUTURES_CM
        self.price = base_price(file.symbol, file.date) * (1 + self.rng.uniform(-0.01, 0.01))
        self.decimals = decimals(self.price, file.market)
        self.day_index = (file.date - dt.date(2017, 1, 1)).days

    # formatting ----------------------------------------------------------------------------------

    def px(self, value: float) -> str:
        if self.spot:
            return f"{round(value, 2 if value >= 100 else 6):.8f}"
        return f"{value:.{self.decimals}f}"

    def qty(self, value: float) -> str:
        if self.spot:
            return f"{value:.8f}"
        if self.cm:
            return str(float(max(1, round(value))))  # contracts, written like "542.0" in the real files
        return f"{value:.3f}"

    def flag(self, value: bool) -> str:
        if self.spot:
            return "True" if value else "False"
        return "true" if value else "false"

    def ts(self, seconds: float) -> int:
        return int(seconds * self.unit)

    def walk(self, sigma: float) -> float:
        self.price = max(self.price * (1 + self.rng.gauss(0, sigma)), 1e-6)
        return self.price

    # dispatch ------------------------------------------------------------------------------------

    def rows(self, max_rows: int | None) -> Iterator[tuple[str, ...]]:
        t = self.file.data_type
        if t.has_interval:
            assert self.file.interval is not None
            return self.klines(self.file.interval)
        if t in _EVENTS_PER_DAY:
            days = (self.end - self.start) / _DAY
            count = round(_EVENTS_PER_DAY[t] * days)
            if max_rows is not None:
                count = min(count, max_rows)
            times = self.event_times(count)
            if t is DataType.TRADES:
                return self.trades(times)
            if t is DataType.AGG_TRADES:
                return self.agg_trades(times)
            if t is DataType.BOOK_TICKER:
                return self.book_ticker(times)
            return self.liquidations(times)
        makers = {
            DataType.FUNDING_RATE: self.funding_rate,
            DataType.METRICS: self.metrics,
            DataType.BOOK_DEPTH: self.book_depth,
            DataType.BVOL_INDEX: self.bvol_index,
            DataType.EOH_SUMMARY: self.eoh_summary,
        }
        return makers[t]()

    def event_times(self, count: int) -> Iterator[float]:
        """``count`` increasing times (seconds) spread over the period."""
        step = (self.end - self.start) / max(count, 1)
        for i in range(count):
            yield self.start + (i + self.rng.random()) * step

    # klines --------------------------------------------------------------------------------------

    def candle_opens(self, interval: Interval) -> Iterator[tuple[int, int]]:
        """(open, next open) in seconds of the candles that open in the period, or the one covering its start."""
        if interval is Interval.MO1:
            month = self.file.date.replace(day=1)
            first = dt.datetime.combine(month, dt.time(), tzinfo=dt.UTC)
            opens: list[int] = [int((first - _EPOCH).total_seconds())]
            while True:
                month = next_month(month)
                at = int((dt.datetime.combine(month, dt.time(), tzinfo=dt.UTC) - _EPOCH).total_seconds())
                opens.append(at)
                if at >= self.end:
                    break
            yield from itertools.pairwise(opens)
            return
        length = interval.seconds
        offset = _WEEK_OFFSET if interval is Interval.W1 else 0
        floor = (self.start - offset) // length * length + offset
        at = floor if floor == self.start else floor + length
        if at >= self.end:
            at = floor  # a 3d or 1w candle in a daily file: the candle the day belongs to
        while True:
            yield at, at + length
            at += length
            if at >= self.end:
                return

    def klines(self, interval: Interval) -> Iterator[tuple[str, ...]]:
        kind = self.file.data_type
        traded = kind is DataType.KLINES
        if kind is DataType.PREMIUM_INDEX_KLINES:
            self.price = self.rng.uniform(-0.0002, 0.0002)
        minutes = max(interval.seconds / 60, 1 / 60)
        sigma = 0.0008 * math.sqrt(minutes)
        for open_s, next_s in self.candle_opens(interval):
            length = next_s - open_s
            o = self.price
            if kind is DataType.PREMIUM_INDEX_KLINES:
                c = o + self.rng.gauss(0, 0.00005)
                self.price = c
                h = max(o, c) + abs(self.rng.gauss(0, 0.00002))
                lo = min(o, c) - abs(self.rng.gauss(0, 0.00002))
                prices = [f"{v:.8f}" for v in (o, h, lo, c)]
            else:
                c = self.walk(sigma)
                h = max(o, c) * (1 + abs(self.rng.gauss(0, sigma / 3)))
                lo = min(o, c) * (1 - abs(self.rng.gauss(0, sigma / 3)))
                prices = [self.px(v) for v in (o, h, lo, c)]
            open_t, close_t = self.ts(open_s), self.ts(next_s) - 1
            if traded:
                volume = notional_per_second(self.file.symbol) * length / o * self.rng.lognormvariate(0, 0.5)
                if self.cm:
                    volume = volume * o / 100  # COIN-M volume is in contracts of 100 USD
                quote = volume * (o + c) / 2
                if self.cm:
                    quote = volume * 100 / ((o + c) / 2)  # ... and its quote volume in coins
                count = max(1, int(length * self.rng.uniform(0.5, 2.0)))
                share = self.rng.uniform(0.3, 0.7)
                yield (
                    str(open_t),
                    *prices,
                    self.vol(volume),
                    str(close_t),
                    f"{quote:.8f}" if self.spot else f"{quote:.5f}",
                    str(count),
                    self.vol(volume * share),
                    f"{quote * share:.8f}" if self.spot else f"{quote * share:.5f}",
                    "0",
                )
            else:
                # Index, mark and premium klines carry no volume; count is the number of price updates.
                updates = str(min(length, 1_000_000))
                yield (str(open_t), *prices, "0", str(close_t), "0", updates, "0", "0", "0")

    def vol(self, value: float) -> str:
        if self.spot:
            return f"{value:.8f}"
        return str(round(value)) if self.cm else f"{value:.3f}"

    # events --------------------------------------------------------------------------------------

    def trades(self, times: Iterator[float]) -> Iterator[tuple[str, ...]]:
        trade_id = self.day_index * 5_000_000 + zlib.crc32(self.file.symbol.encode("utf-8")) % 1_000_000
        for at in times:
            price = self.walk(0.00005)
            qty = self.order_size(200.0)
            second = qty * 100 / price if self.cm else qty * price  # COIN-M: contracts of 100 USD
            trade_id += 1
            row = [
                str(trade_id),
                self.trade_px(price),
                self.qty(qty),
                f"{second:.8f}",
                str(self.ts(at)),
                self.flag(self.rng.random() < 0.5),
            ]
            if self.spot:
                row.append("True")
            yield tuple(row)

    def order_size(self, notional: float) -> float:
        """A random order size: coins worth about ``notional`` USD, or whole contracts for COIN-M."""
        size = self.rng.lognormvariate(0, 1)
        if self.cm:
            return float(max(1, round(size * notional / 100)))
        return size * notional / self.price

    def trade_px(self, price: float) -> str:
        # COIN-M trade files write prices as floats ("79972.8"), not padded to the tick.
        return str(round(price, self.decimals)) if self.cm else self.px(price)

    def agg_trades(self, times: Iterator[float]) -> Iterator[tuple[str, ...]]:
        agg_id = self.day_index * 2_000_000 + zlib.crc32(self.file.symbol.encode("utf-8")) % 1_000_000
        trade_id = agg_id * 2
        for at in times:
            price = self.walk(0.00005)
            qty = self.order_size(400.0)
            fills = 1 + int(self.rng.expovariate(1.0))
            agg_id += 1
            first, trade_id = trade_id + 1, trade_id + fills
            row = [
                str(agg_id),
                self.trade_px(price),
                self.qty(qty),
                str(first),
                str(trade_id),
                str(self.ts(at)),
                self.flag(self.rng.random() < 0.5),
            ]
            if self.spot:
                row.append("True")
            yield tuple(row)

    def book_ticker(self, times: Iterator[float]) -> Iterator[tuple[str, ...]]:
        update_id = self.day_index * 50_000_000
        tick = 10.0**-self.decimals
        for at in times:
            bid = self.walk(0.00002)
            update_id += self.rng.randint(1, 40)
            event = self.ts(at)
            yield (
                str(update_id),
                self.px(bid),
                self.qty(self.rng.lognormvariate(0, 1) * 2_000 / bid),
                self.px(bid + tick),
                self.qty(self.rng.lognormvariate(0, 1) * 2_000 / bid),
                str(event - self.rng.randint(0, 5)),
                str(event),
            )

    def liquidations(self, times: Iterator[float]) -> Iterator[tuple[str, ...]]:
        for at in times:
            price = self.walk(0.001)
            qty = self.qty(self.rng.lognormvariate(0, 1) * 5_000 / price)
            yield (
                str(self.ts(at)),
                self.rng.choice(("BUY", "SELL")),
                "LIMIT",
                "IOC",
                qty,
                self.px(price * self.rng.uniform(0.99, 1.01)),
                self.px(price),
                "FILLED",
                qty,
                qty,
            )

    # fixed grids ---------------------------------------------------------------------------------

    def funding_rate(self) -> Iterator[tuple[str, ...]]:
        # Every 8 hours, a few milliseconds late as in the real files.
        for at in range(self.start, self.end, 8 * 3600):
            rate = self.rng.gauss(0.00002, 0.00004)
            yield (str(self.ts(at) + self.rng.randint(0, 11)), "8", f"{rate:.8f}")

    def metrics(self) -> Iterator[tuple[str, ...]]:
        interest = notional_per_second(self.file.symbol) * 3_000 / self.price
        for at in range(self.start, self.end, 300):
            price = self.walk(0.001)
            interest *= 1 + self.rng.gauss(0, 0.002)
            yield (
                _when(at),
                self.file.symbol,
                f"{interest:.8f}",
                f"{interest * price:.8f}",
                f"{self.rng.uniform(0.8, 2.5):.8f}",
                f"{self.rng.uniform(0.8, 2.5):.8f}",
                f"{self.rng.uniform(0.8, 2.5):.8f}",
                f"{self.rng.uniform(0.5, 1.8):.8f}",
            )

    def book_depth(self) -> Iterator[tuple[str, ...]]:
        base = notional_per_second(self.file.symbol) * 20 / self.price
        for at in range(self.start, self.end, 60):
            price = self.walk(0.0005)
            stamp = _when(at + self.rng.randint(0, 20))
            for pct in (-5, -4, -3, -2, -1, 1, 2, 3, 4, 5):
                depth = base * abs(pct) * self.rng.uniform(0.8, 1.2)
                yield (stamp, str(pct), f"{depth:.8f}", f"{depth * price * (1 + pct / 200):.8f}")

    def bvol_index(self) -> Iterator[tuple[str, ...]]:
        symbol = self.file.symbol
        quote = "USDT" if symbol.endswith("USDT") else ""
        base = symbol[: -len(quote)] if quote else symbol
        for at in range(self.start, self.end, 60):
            value = self.walk(0.002)
            yield (str(self.ts(at) + self.rng.randint(0, 999)), symbol, base, quote, f"{value:.2f}")

    def eoh_summary(self) -> Iterator[tuple[str, ...]]:
        underlying = self.file.symbol
        coin = underlying.removesuffix("USDT")
        expiry = self.file.date + dt.timedelta(days=(4 - self.file.date.weekday()) % 7 or 7)
        spot = base_price(underlying, self.file.date)
        step = 10 ** max(0, int(math.log10(max(spot, 1))) - 1)
        strikes = [round(spot / step) * step + k * step for k in (-2, -1, 0, 1, 2)]
        for at in range(self.start, self.end, 3600):
            day = dt.datetime.fromtimestamp(at, dt.UTC)
            for strike in strikes:
                for kind in ("C", "P"):
                    mark = max(spot * 0.002, abs(spot - strike) * 0.5 + spot * self.rng.uniform(0.005, 0.02))
                    iv = self.rng.uniform(0.35, 0.8)
                    contracts = self.rng.uniform(0, 50)
                    yield (
                        day.strftime("%Y-%m-%d"),
                        f"{day.hour:02d}",
                        f"{coin}-{expiry:%y%m%d}-{strike:g}-{kind}",
                        underlying,
                        kind,
                        f"{strike:g}",
                        *(f"{mark * self.rng.uniform(0.95, 1.05):.1f}" for _ in range(4)),
                        f"{contracts:.2f}",
                        f"{contracts * mark:.2f}",
                        f"{mark * 0.98:.1f}",
                        f"{mark * 1.02:.1f}",
                        f"{self.rng.uniform(0, 20):.2f}",
                        f"{self.rng.uniform(0, 20):.2f}",
                        f"{iv - 0.02:.4f}",
                        f"{iv + 0.02:.4f}",
                        f"{mark:.1f}",
                        f"{iv:.4f}",
                        f"{self.rng.uniform(-1, 1):.4f}",
                        f"{self.rng.uniform(0, 0.001):.6f}",
                        f"{self.rng.uniform(0, 50):.4f}",
                        f"{-self.rng.uniform(0, 100):.4f}",
                        f"{contracts * 10:.2f}",
                        f"{contracts * 10 * mark:.2f}",
                    )


def _when(seconds: int) -> str:
    """A UTC time as the metrics and bookDepth files write it: ``2024-01-01 00:05:00``."""
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
