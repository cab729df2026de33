"""The archive's markets: the first folders under ``data/``."""

from __future__ import annotations

import enum

from binance_archive.core._choice import parse_choice

__all__ = ["Market"]

_ALIASES = {
    "futures_um": "futures/um",
    "um": "futures/um",
    "usdm": "futures/um",
    "futures_cm": "futures/cm",
    "cm": "futures/cm",
    "coinm": "futures/cm",
    "options": "option",
}


class Market(enum.Enum):
    """A market of the archive; the value is its path under ``data/``."""

    SPOT = "spot"
    FUTURES_UM = "futures/um"
    FUTURES_CM = "futures/cm"
    OPTION = "option"

    @property
    def path(self) -> str:
        """The market's folder path, e.g. ``futures/um``."""
        return self.value

    @property
    def is_futures(self) -> bool:
        return self in (Market.FUTURES_UM, Market.FUTURES_CM)

    @classmethod
    def parse(cls, value: object) -> Market:
        """Accept a member, its path (``futures/um``) or a common alias (``futures_um``, ``um``, ``cm``, ``options``).

        Raises:
            ConfigurationError: for anything else, naming the valid markets.
        """
        return parse_choice(cls, value, what="market", aliases=_ALIASES)

    def __str__(self) -> str:
        return self.value
