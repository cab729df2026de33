"""Backend options checked as they arrive: from command lines (``--transport-option KEY=VALUE``, decoded as
JSON where it reads as JSON), configuration files and code; and the run's files in flight (:func:`check_levels`),
which the command, configuration files and :class:`~binance_archive.Archive` all check alike.

A wrong type is refused here, naming the option and the value, rather than failing later inside a client library
with a ``TypeError``. ``True`` is never taken for the number 1.
"""

from __future__ import annotations

import math

from binance_archive.errors import ConfigurationError

__all__ = ["MAX_LEVEL", "check_levels", "flag", "non_negative", "seconds", "whole_number"]


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def seconds(value: object, name: str) -> float:
    """``value`` as a positive, finite number of seconds."""
    if not _is_number(value) or not 0 < value < math.inf:  # type: ignore[operator]
        raise ConfigurationError(f"{name} must be a positive number of seconds, not {value!r}")
    return float(value)  # type: ignore[arg-type]


def non_negative(value: object, name: str, what: str) -> float:
    """``value`` as a finite number of 0 or more; ``what`` says what it counts (``"bytes per second"``)."""
    if not _is_number(value) or not 0 <= value < math.inf:  # type: ignore[operator]
        raise ConfigurationError(f"{name} must be a number of {what} (0 or more), not {value!r}")
    return float(value)  # type: ignore[arg-type]


def whole_number(value: object, name: str, *, at_least: int = 0, at_most: int | None = None, what: str = "") -> int:
    """``value`` as a whole number within ``at_least`` .. ``at_most``; ``what`` replaces the default wording of what
    is expected (``"a whole number of bytes (0 turns it off)"``)."""
    if (
        not isinstance(value, int)
        or isinstance(value, bool)
        or value < at_least
        or (at_most is not None and value > at_most)
    ):
        if not what:
            bounds = f"from {at_least} to {at_most}" if at_most is not None else f"of at least {at_least}"
            what = f"a whole number {bounds}"
        raise ConfigurationError(f"{name} must be {what}, not {value!r}")
    return value


def flag(value: object, name: str) -> bool:
    """``value`` as true or false (a bool, not a truthy string such as ``"false"``)."""
    if not isinstance(value, bool):
        raise ConfigurationError(f"{name} must be true or false, not {value!r}")
    return value


MAX_LEVEL = 10_000
"""The most files in flight a run accepts, pinned or as a ceiling: each is a worker task (and up to two
connections), and a typo such as 1000000 took gigabytes and minutes before the first request."""


def check_levels(
    concurrency: object, max_concurrency: object, names: tuple[str, str] = ("concurrency", "max_concurrency")
) -> None:
    """Refuse (:class:`~binance_archive.errors.ConfigurationError`) files in flight that no run can take: below 1,
    above :data:`MAX_LEVEL`, not whole numbers, or a start (``concurrency``) above the ceiling (``max_concurrency``).
    ``None`` is the default, always accepted; ``names`` are what the user calls the two (``--concurrency``...)."""
    for value, name in zip((concurrency, max_concurrency), names, strict=True):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigurationError(f"{name} must be a whole number of files of at least 1, got {value!r}")
        if value > MAX_LEVEL:
            raise ConfigurationError(f"{name} must be at most {MAX_LEVEL}, got {value}")
    if isinstance(concurrency, int) and isinstance(max_concurrency, int) and concurrency > max_concurrency:
        start, ceiling = names
        raise ConfigurationError(
            f"{start} (the level to start from, {concurrency}) must not be above {ceiling} ({max_concurrency}): "
            f"lower {start}, raise {ceiling}, or give {start} alone to pin the level"
        )
