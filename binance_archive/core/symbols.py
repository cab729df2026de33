"""Symbol validation: a symbol becomes a folder and a file name, so it must never escape a path."""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Iterable

from binance_archive.errors import ConfigurationError

__all__ = ["MAX_SYMBOL_LENGTH", "closest_symbols", "normalize_symbol", "validate_symbol"]

MAX_SYMBOL_LENGTH = 64

# Real symbols are letters and digits (some non-ASCII, like 币安人生USDT), with "_" before a delivery date or
# PERP. "-" and "." are tolerated inside a name found by listing, but never a path separator, a leading dot,
# white space or a control character.
_EXTRA_ALLOWED = frozenset("_-.")


def validate_symbol(symbol: str) -> str:
    """Return ``symbol`` unchanged if it is safe to use as a folder and file name.

    Raises:
        ConfigurationError: for an empty or too long symbol, a path separator, ``..``, a leading dot,
            white space, or a control character.
    """
    if not isinstance(symbol, str):
        raise ConfigurationError(f"a symbol must be a string, not {type(symbol).__name__}")
    return _validate(symbol)


@functools.lru_cache(maxsize=65_536)
def _validate(symbol: str) -> str:
    if not symbol:
        raise ConfigurationError("a symbol must not be empty")
    if len(symbol) > MAX_SYMBOL_LENGTH:
        raise ConfigurationError(f"symbol {symbol[:20]!r}... is longer than {MAX_SYMBOL_LENGTH} characters")
    if symbol.startswith(".") or ".." in symbol:
        raise ConfigurationError(f"symbol {symbol!r} could escape the storage folder ('.' at the start or '..')")
    for char in symbol:
        if char.isalnum() or char in _EXTRA_ALLOWED:
            continue
        category = unicodedata.category(char)
        name = f"U+{ord(char):04X}"
        if char in "/\\":
            reason = f"a path separator {char!r}"
        elif category.startswith("C"):
            reason = f"a control or invisible character ({name})"
        elif category.startswith("Z"):
            reason = f"white space ({name})"
        else:
            reason = f"the character {char!r} ({name})"
        raise ConfigurationError(
            f"symbol {symbol!r} contains {reason}; symbols are letters and digits with '_', '-' or '.' inside"
        )
    return symbol


def normalize_symbol(symbol: str) -> str:
    """Strip and upper-case a user's symbol (``btcusdt`` -> ``BTCUSDT``), then validate it."""
    if not isinstance(symbol, str):
        raise ConfigurationError(f"a symbol must be a string, not {type(symbol).__name__}")
    return validate_symbol(symbol.strip().upper())


def closest_symbols(symbol: str, known: Iterable[str], *, limit: int = 3) -> list[str]:
    """The names of ``known`` closest to ``symbol``, best first, for a "did you mean" (at most ``limit``).

    Spelling mistakes are found by similarity (``BTCUSTD`` -> ``BTCUSDT``); a name that is a part of the real one
    by containment, shortest first (``BTC`` -> ``BTCBVOLUSDT``, the options' volatility index), since similarity
    alone rates a short part of a long name too low to suggest.
    """
    import difflib  # here: suggestions are made only for a symbol that is refused

    names = sorted(set(known))
    wanted = symbol.upper()
    found = difflib.get_close_matches(wanted, names, n=limit, cutoff=0.6)
    if found:  # only those nearly as close as the best: BTCBVOLUSTD is BTCBVOLUSDT, not ETHBVOLUSDT too
        best = difflib.SequenceMatcher(None, wanted, found[0]).ratio()
        found = [n for n in found if difflib.SequenceMatcher(None, wanted, n).ratio() >= best - 0.1]
    if len(found) < limit and len(wanted) >= 2:
        # Names starting with it first, then names holding it; shorter (closer) names before longer ones.
        holding = [n for n in names if wanted in n and n not in found]
        holding.sort(key=lambda n: (not n.startswith(wanted), len(n), n))
        found += holding[: limit - len(found)]
    return found
