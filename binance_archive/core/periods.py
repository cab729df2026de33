"""Daily and monthly files, and the date arithmetic that goes with them."""

from __future__ import annotations

import datetime as dt
import enum

from binance_archive.core._choice import parse_choice

__all__ = ["Period", "month_end", "next_month"]


class Period(enum.Enum):
    """How much time one file covers: one UTC day (``YYYY-MM-DD``) or one calendar month (``YYYY-MM``)."""

    DAILY = "daily"
    MONTHLY = "monthly"

    @classmethod
    def parse(cls, value: object) -> Period:
        """Accept a member, ``daily`` or ``monthly``.

        Raises:
            ConfigurationError: for anything else.
        """
        return parse_choice(cls, value, what="period")

    def format_date(self, day: dt.date) -> str:
        """The date as it appears in a file name."""
        return day.isoformat() if self is Period.DAILY else day.isoformat()[:7]

    def __str__(self) -> str:
        return self.value


def month_end(day: dt.date) -> dt.date:
    """The last day of ``day``'s month."""
    return next_month(day) - dt.timedelta(days=1)


def next_month(day: dt.date) -> dt.date:
    """The first day of the month after ``day``'s."""
    return dt.date(day.year + 1, 1, 1) if day.month == 12 else dt.date(day.year, day.month + 1, 1)
