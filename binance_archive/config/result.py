"""The result mapping of the collection workflow users migrate from (:func:`collection_result`), with that
workflow's own field names, so that its callers' code keeps working; and a few fields of ours beside them.

The command prints it for ``download --config`` with a configuration of that schema and ``--json``; the
integrations (a Prefect flow) return it, with the report of their conversion to tables where they ran one.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from binance_archive.report import Outcome

if TYPE_CHECKING:
    from binance_archive.config.run_config import RunConfig
    from binance_archive.report import Report
    from binance_archive.tables.report import ConvertReport

__all__ = ["CollectionMetadata", "collection_result", "format_size"]


class CollectionMetadata(dict[str, Any]):
    """The ``metadata`` of a result: a plain mapping (it goes to JSON as it is) whose fields also read as
    attributes, as that workflow's metadata object's did (``result["metadata"].output_files``)."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):  # copy, pickle and the like look for these: never a field
            raise AttributeError(name)
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"the run's metadata has no field {name!r}; it has {', '.join(self)}") from None


def collection_result(report: Report, config: RunConfig, tables: ConvertReport | None = None) -> dict[str, Any]:
    """The result mapping the collection workflow returned, for a run of ``config`` that made ``report`` (and, where
    the run also converted the files to tables, ``tables``).

    That workflow's fields: ``status``; ``metadata`` (``task_id``, ``status``, ``created_at``, ``updated_at``,
    ``records_processed``: files stored, downloaded or already there; ``bytes_processed``; ``errors``;
    ``source_files``: the archive keys downloaded; ``output_files``: where they were stored); ``collection_stats``
    (``total_tasks``, ``successful_tasks``, ``failed_tasks``, ``skipped_tasks``, ``total_size_bytes``: bytes
    downloaded, ``processing_time_seconds``); ``success_rate``; ``total_size_formatted``; ``output_directory``;
    ``storage_zones_used`` (``["bronze"]``: the zips, and ``"silver"`` where tables were written);
    ``ingestion_metadata_id`` (the ``task_id``).

    Ours beside them: ``collection_stats.missing_tasks`` (files the archive does not have),
    ``collection_stats.total_bytes`` and ``total_seconds`` (the names of earlier releases), and ``tables`` (the
    conversion's report, where one ran).

    ``status`` is ``success`` when no file failed, ``partial`` when some failed (or some table did) and others were
    stored, ``failed`` when none was stored. ``success_rate`` is the percentage of files stored (downloaded or
    already there) among those the archive has: missing files are not counted against it. ``source_files`` and
    ``output_files`` list the files the report kept an outcome for: every file downloaded when the run kept them
    all (``detail="all"``, the default of :meth:`RunConfig.run`; the command does with ``--json``).
    """
    available = report.total - report.missing
    stored = report.downloaded + report.skipped
    if report.failed == 0 and report.stopped is None:
        status = "success"
    elif stored:
        status = "partial"
    else:
        status = "failed"
    if tables is not None and not tables.ok and status == "success":
        status = "partial"
    seconds = report.duration + (tables.duration if tables is not None else 0.0)
    started = report.started_at
    task_id = f"archive_collection_{started:%Y%m%d_%H%M%S_%f}"
    downloaded = [o.key for o in report.outcomes if o.outcome is Outcome.DOWNLOADED]
    root = config.to.rstrip("/")
    metadata = CollectionMetadata(
        task_id=task_id,
        status="failed" if report.stopped else "completed",
        created_at=started.isoformat(),
        updated_at=(started + dt.timedelta(seconds=seconds)).isoformat(),
        records_processed=stored,
        bytes_processed=report.bytes,
        errors=[f"{o.key}: {o.error}" for o in report.failures] + ([report.stopped] if report.stopped else []),
        source_files=downloaded,
        output_files=[f"{root}/{key}" for key in downloaded],
    )
    zones = ["bronze"]
    if tables is not None and tables.converted + tables.skipped > 0:
        zones.append("silver")
    result: dict[str, Any] = {
        "status": status,
        "metadata": metadata,
        "collection_stats": {
            "total_tasks": report.total,
            "successful_tasks": report.downloaded,
            "failed_tasks": report.failed,
            "skipped_tasks": report.skipped,
            "missing_tasks": report.missing,
            "total_size_bytes": report.bytes,
            "processing_time_seconds": round(seconds, 3),
            "total_bytes": report.bytes,
            "total_seconds": round(report.duration, 3),
        },
        "success_rate": round(100.0 * stored / available, 2) if available else 100.0,
        "total_size_formatted": format_size(report.bytes),
        "output_directory": config.to,
        "storage_zones_used": zones,
        "ingestion_metadata_id": task_id,
    }
    if tables is not None:
        result["tables"] = tables.to_dict()
    return result


def format_size(size: float) -> str:
    """``1536`` -> ``1.5 KB`` (binary multiples, as file managers show them)."""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1024 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")
