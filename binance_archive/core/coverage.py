"""What a selection can plan at all, and in one line why a part of it plans nothing.

A selection can be valid (every market, data type, interval and period exists) and still name no file: a retired
data type after its last date, a start in the future, a type that comes in monthly files only while the month is
not over. Planning such a selection yields nothing, which looked like a finished download. The catalog knows why,
so the reason is data: :func:`narrow` keeps the parts of the selections that can plan files and says, for every
part that cannot, why not (``"bookTicker on futures/um ended 2024-03-30"``). Pure: no I/O.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import attrs

from binance_archive.core.catalog import DEFAULT_CATALOG, Catalog
from binance_archive.core.datatypes import DataType
from binance_archive.core.intervals import Interval
from binance_archive.core.markets import Market
from binance_archive.core.periods import month_end
from binance_archive.core.planning import plan, validate_selection
from binance_archive.core.selection import Selection
from binance_archive.errors import ConfigurationError

__all__ = ["Narrowed", "empty_reason", "narrow"]

_ONE_DAY = dt.timedelta(days=1)
_PROBE_SYMBOL = "BTCUSDT"  # planning does not depend on the symbol: any valid one shows whether dates give files


@attrs.frozen
class Narrowed:
    """The selections cut down to what can plan files, and why the rest plans nothing.

    Attributes:
        selections: the parts that can plan files (a selection with nothing to cut is kept as it was).
        reasons: one line for each part left out, each said once, in the order of the selections.
    """

    selections: tuple[Selection, ...]
    reasons: tuple[str, ...]

    @property
    def empty(self) -> bool:
        """Whether nothing at all can be planned."""
        return not self.selections

    def check(self) -> Narrowed:
        """``self``, when something can be planned.

        Raises:
            ConfigurationError: when nothing can, naming why.
        """
        if self.empty:
            raise ConfigurationError(
                f"nothing to download: {'; '.join(self.reasons)}; choose dates, markets or data types that have "
                "files (`binance-archive catalog` shows each type's first and last dates)"
            )
        return self


def narrow(selections: Iterable[Selection], *, today: dt.date, catalog: Catalog = DEFAULT_CATALOG) -> Narrowed:
    """Keep the parts of ``selections`` that can plan files as of ``today``; say why the others cannot.

    A part is one market and data type (and, for klines, one interval). A selection whose every part can plan
    files comes back unchanged; one with some empty parts comes back as one selection per market and data type
    left, with the intervals left.

    Raises:
        ConfigurationError: for a selection the catalog refuses (see :func:`validate_selection`).
    """
    kept: list[Selection] = []
    reasons: list[str] = []
    for selection in selections:
        validate_selection(selection, catalog)
        parts: list[Selection] = []
        cut = False
        for market in selection.markets:
            for data_type in selection.data_types:
                intervals: list[Interval] = []
                for interval in selection.intervals_for(data_type):
                    reason = empty_reason(selection, market, data_type, interval, today=today, catalog=catalog)
                    if reason is None:
                        if interval is not None:
                            intervals.append(interval)
                        else:
                            parts.append(selection.with_(markets=(market,), data_types=(data_type,), intervals=()))
                        continue
                    cut = True
                    if reason not in reasons:
                        reasons.append(reason)
                if intervals:
                    parts.append(selection.with_(markets=(market,), data_types=(data_type,), intervals=intervals))
        if not cut:
            kept.append(selection)
        else:
            kept.extend(parts)
    return Narrowed(tuple(kept), tuple(reasons))


def empty_reason(
    selection: Selection,
    market: Market,
    data_type: DataType,
    interval: Interval | None = None,
    *,
    today: dt.date,
    catalog: Catalog = DEFAULT_CATALOG,
) -> str | None:
    """Why ``selection`` plans no file of ``market``, ``data_type`` (and ``interval``) as of ``today``, in one
    line; ``None`` when it may plan some.

    Where the selection leaves out its start date (the engine finds each series' first file in the listing), the
    catalog's first date of the type stands in for it; without either, only the end date can rule files out.
    """
    entry = catalog.lookup(market, data_type)
    name = (
        f"{data_type.value} on {market.value}"
        if interval is None
        else f"{interval.value} {data_type.value} on {market.value}"
    )
    yesterday = today - _ONE_DAY
    if selection.start is not None and selection.start > yesterday:
        return (
            f"the start {selection.start} is in the future: the newest daily files are yesterday's ({yesterday}, UTC)"
        )
    start = selection.start or entry.first_date
    end = min(selection.end or yesterday, yesterday)
    if entry.last_date is not None and start is not None and start > entry.last_date:
        return f"{name} ended {entry.last_date}" + (" (retired)" if entry.retired else "")
    if entry.first_date is not None and end < entry.first_date:
        return f"{name} starts {entry.first_date}"
    if start is None:
        return None
    probe = selection.with_(
        markets=(market,),
        data_types=(data_type,),
        symbols=selection.symbols[:1] or (_PROBE_SYMBOL,),
        intervals=(interval,) if interval is not None else (),
        start=start,
    )
    if next(plan(probe, today=today, catalog=catalog), None) is not None:
        return None
    lo = max(start, entry.first_date) if entry.first_date else start
    hi = min(end, entry.last_date) if entry.last_date else end
    if month_end(lo) >= today:
        return (
            f"there are only monthly files of {name}, and the month {lo:%Y-%m} is not over yet (today is {today}, UTC)"
        )
    return f"{name} has no file from {lo} to {hi}"
