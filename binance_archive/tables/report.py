"""The report of a conversion: counts, rows, bytes, duration, and every file that could not become a table, named
with the line at fault."""

from __future__ import annotations

from typing import Any

import attrs

from binance_archive.report import JsonReport

__all__ = ["ConvertProblem", "ConvertReport"]


@attrs.frozen
class ConvertProblem:
    """A source file that was not converted: its key, the line at fault where one is (1-based), and why."""

    key: str
    reason: str
    line: int | None = None

    def __str__(self) -> str:
        return f"{self.key}" + (f", line {self.line}" if self.line is not None else "") + f": {self.reason}"


@attrs.define
class ConvertReport(JsonReport):
    """What a conversion did. ``ok`` is true when no file failed."""

    tables: str
    """Where the tables are (a path or a URL without credentials)."""
    converted: int = 0
    """Source files converted into a table file."""
    skipped: int = 0
    """Source files whose table is there already, from the same bytes (by SHA-256)."""
    failed: int = 0
    replaced: int = 0
    """Table files removed: a month's daily tables replaced by its monthly file's, or left by an interrupted run."""
    rows: int = 0
    """Rows written."""
    duplicates: int = 0
    """Exact duplicate rows dropped."""
    csv_bytes: int = 0
    """Bytes of CSV read."""
    duration: float = 0.0
    problems: list[ConvertProblem] = attrs.Factory(list)

    @property
    def ok(self) -> bool:
        return self.failed == 0

    def summary(self) -> str:
        """One line for people."""
        rate = self.rows / self.duration if self.duration > 0 else 0.0
        return (
            f"{self.converted} converted, {self.skipped} unchanged, {self.failed} failed, {self.replaced} replaced; "
            f"{self.rows} rows from {self.csv_bytes / 1e6:.1f} MB of CSV in {self.duration:.1f} s ({rate:.0f} rows/s)"
        )

    def to_dict(self) -> dict[str, Any]:
        data = attrs.asdict(self)
        data["ok"] = self.ok
        return data
