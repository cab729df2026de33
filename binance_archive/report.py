"""The report of a run: counts, bytes, duration and per-file outcomes, JSON-serialisable through cattrs."""

from __future__ import annotations

import datetime as dt
import enum
import functools
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    import cattrs

__all__ = ["Concurrency", "FileOutcome", "JsonReport", "Outcome", "Report", "json_converter", "merge_reports"]


class Outcome(enum.Enum):
    """What became of one planned file."""

    DOWNLOADED = "downloaded"
    SKIPPED = "skipped"
    MISSING = "missing"
    FAILED = "failed"


@attrs.frozen
class FileOutcome:
    """One file's outcome.

    Attributes:
        key: the file's key.
        outcome: downloaded, skipped, missing or failed.
        bytes: the zip's size where known.
        sha256: the verified digest (downloaded files).
        error: why it failed (failed files), or what is missing.
        attempts: how many times it was fetched.
        previous_sha256: the digest stored before a refresh replaced it.
    """

    key: str
    outcome: Outcome
    bytes: int = 0
    sha256: str | None = None
    error: str | None = None
    attempts: int = 0
    previous_sha256: str | None = None


@attrs.frozen
class Concurrency:
    """How many files a run kept in flight (more precisely, tries of files: a file waiting to retry holds none).

    Attributes:
        adaptive: the level was found by measuring (``--max-concurrency``, or the transport's default), rather
            than pinned (``--concurrency N``).
        start: the level it began at.
        settled: the level it settled on: the median over the run's time (half of it at this level or below).
        low: the lowest level it went to.
        high: the highest level it went to.
        ceiling: the highest it could go to (for a pinned level, the level).
        backoffs: how often it was halved because the server turned tries away (429, 503, refused connections).

    In a report merged from processes (``--processes``), each figure is the sum over the processes.
    """

    adaptive: bool
    start: int
    settled: int
    low: int
    high: int
    ceiling: int
    backoffs: int = 0

    @classmethod
    def pinned(cls, level: int) -> Concurrency:
        """A level the user fixed."""
        return cls(adaptive=False, start=level, settled=level, low=level, high=level, ceiling=level)

    def describe(self) -> str:
        """In words, for the summary: "256 (adaptive: from 80, 80 to 256 of at most 256)"."""
        if not self.adaptive:
            return f"{self.settled} (fixed)"
        cuts = f", backed off {self.backoffs} times" if self.backoffs else ""
        spread = f"{self.low} to {self.high}" if self.low != self.high else f"{self.low}"
        return f"{self.settled} (found from {self.start}: {spread}, at most {self.ceiling}{cuts})"


class JsonReport:
    """What every report shares: it is written as JSON from its :meth:`to_dict`."""

    def to_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    def to_json(self, *, indent: int | None = 2) -> str:
        """The report as JSON (non-ASCII symbols as they are)."""
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)


@attrs.define
class Report(JsonReport):
    """What a download did. ``ok`` is true when nothing failed (missing files are not failures)."""

    downloaded: int = 0
    skipped: int = 0
    missing: int = 0
    failed: int = 0
    bytes: int = 0
    """Bytes of zips downloaded in this run."""
    started_at: dt.datetime = attrs.Factory(lambda: dt.datetime.now(dt.UTC))
    duration: float = 0.0
    """Seconds from start to end."""
    outcomes: list[FileOutcome] = attrs.Factory(list)
    """Per-file outcomes: every file but the skipped ones (kept only as a count), or only the problems."""
    stopped: str | None = None
    """Why the run stopped before the end of its plan (the disk filled up), or ``None``."""
    concurrency: Concurrency | None = None
    """How many files were in flight: the level it settled on, and how it got there."""

    @property
    def total(self) -> int:
        return self.downloaded + self.skipped + self.missing + self.failed

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.stopped is None

    @property
    def failures(self) -> list[FileOutcome]:
        return [o for o in self.outcomes if o.outcome is Outcome.FAILED]

    def add(self, outcome: FileOutcome, *, keep: bool = True) -> None:
        """Count ``outcome`` (and keep it in :attr:`outcomes` when ``keep``)."""
        match outcome.outcome:
            case Outcome.DOWNLOADED:
                self.downloaded += 1
                self.bytes += outcome.bytes
            case Outcome.SKIPPED:
                self.skipped += 1
            case Outcome.MISSING:
                self.missing += 1
            case Outcome.FAILED:
                self.failed += 1
        if keep:
            self.outcomes.append(outcome)

    def summary(self) -> str:
        """One line for people."""
        rate = self.downloaded / self.duration if self.duration > 0 else 0.0
        return (
            f"{self.downloaded} downloaded, {self.skipped} skipped, {self.missing} missing, {self.failed} failed; "
            f"{self.bytes / 1e6:.1f} MB in {self.duration:.1f} s ({rate:.0f} files/s)"
            + (f"; files in flight: {self.concurrency.describe()}" if self.concurrency is not None else "")
            + (f"; STOPPED: {self.stopped}" if self.stopped else "")
        )

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = json_converter().unstructure(self)
        data["ok"] = self.ok
        data["total"] = self.total
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Report:
        fields = {f.name for f in attrs.fields(cls)}
        return json_converter().structure({k: v for k, v in data.items() if k in fields}, cls)


def merge_reports(reports: Sequence[Report], duration: float) -> Report:
    """One report for runs that shared a plan (its shards): counts and outcomes summed, the first reason to stop,
    and the ``duration`` of the whole."""
    merged = Report(duration=duration)
    if reports:
        merged.started_at = min(r.started_at for r in reports)
    for report in reports:
        merged.downloaded += report.downloaded
        merged.skipped += report.skipped
        merged.missing += report.missing
        merged.failed += report.failed
        merged.bytes += report.bytes
        merged.outcomes.extend(report.outcomes)
        merged.stopped = merged.stopped or report.stopped
    levels = [r.concurrency for r in reports if r.concurrency is not None]
    if levels:
        merged.concurrency = Concurrency(
            adaptive=any(c.adaptive for c in levels),
            **{
                name: sum(getattr(c, name) for c in levels)
                for name in ("start", "settled", "low", "high", "ceiling", "backoffs")
            },
        )
    return merged


@functools.cache
def json_converter() -> cattrs.Converter:
    """The report's converter, made (and cattrs imported) when a report is first turned to or from JSON."""
    import cattrs

    converter = cattrs.Converter()
    converter.register_unstructure_hook(dt.datetime, lambda d: d.isoformat())
    converter.register_structure_hook(dt.datetime, lambda v, _: dt.datetime.fromisoformat(v))
    return converter
