"""Deprecated: :class:`RetryPolicy` is importable from :mod:`binance_archive` itself (it lives in
:mod:`binance_archive.engine.retry`)."""

from __future__ import annotations

import warnings
from typing import Any

__all__ = ["RetryPolicy"]  # noqa: F822 - served by __getattr__, with a warning


def __getattr__(name: str) -> Any:
    if name == "RetryPolicy":
        warnings.warn(
            "binance_archive.retry is deprecated; use `from binance_archive import RetryPolicy`",
            DeprecationWarning,
            stacklevel=2,
        )
        from binance_archive.engine.retry import RetryPolicy

        return RetryPolicy
    raise AttributeError(f"module 'binance_archive.retry' has no attribute {name!r}")
