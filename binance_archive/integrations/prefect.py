"""The collection workflow as a Prefect flow (``pip install 'binance-archive[prefect]'``).

    from binance_archive.integrations.prefect import archive_collection

    result = archive_collection({"workflow_type": "archive_collection", "markets": ["spot"], ...})
    result["status"], result["collection_stats"]["total_size_bytes"]

The flow takes what ``download --config`` takes (the native schema, or the collection workflow's schema with its
``workflow_type``), plans, runs one Prefect task per shard of the plan (retried, at most ``max_concurrency`` at
once, on Prefect's thread pool or, given ``dask_address``, on a Dask cluster through prefect-dask), optionally
converts what it downloaded into Parquet tables, and returns the workflow's result mapping.

For code written against that workflow, :class:`PrefectArchiveCollectionWorkflow` keeps its shape:
``await PrefectArchiveCollectionWorkflow(config).execute()``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs

try:
    from prefect import flow, task
    from prefect.cache_policies import NO_CACHE
    from prefect.runtime import task_run
    from prefect.task_runners import ThreadPoolTaskRunner
except ImportError as exc:
    raise ImportError(
        "binance_archive.integrations.prefect needs Prefect: pip install 'binance-archive[prefect]'"
    ) from exc

from binance_archive.config import RunConfig, collection_result, load_config
from binance_archive.core.planning import split_shard, utc_today
from binance_archive.engine.run import Detail
from binance_archive.errors import ConfigurationError
from binance_archive.report import Report, merge_reports

if TYPE_CHECKING:
    from binance_archive.tables.report import ConvertReport

__all__ = ["PrefectArchiveCollectionWorkflow", "archive_collection", "run_collection"]

log = logging.getLogger(__name__)

SHARD_RETRIES = 2
"""How many times a shard's task runs again when it raised, when files of it failed or when it stopped early (each
run fetches only what is not stored yet)."""

Config = Mapping[str, Any] | RunConfig | str | os.PathLike[str]


class ShardIncomplete(Exception):
    """Files of a shard failed, or it stopped early (a dead host); raised so that Prefect runs the shard again (the
    last run returns its report whatever it holds)."""


def run_config(config: Config, last_days: int | None = None) -> RunConfig:
    """``config`` as a :class:`RunConfig`: a mapping of either schema, a TOML or JSON file, or one already made;
    planned as of one date for all its shards. ``last_days`` replaces its dates with the last ``N`` complete days
    (UTC), for a scheduled refresh.

    Raises:
        ConfigurationError: for an invalid configuration, or ``last_days`` under 1.
    """
    if isinstance(config, RunConfig):
        made = config
    elif isinstance(config, Mapping):
        made = RunConfig.from_mapping(config)
    else:
        made = load_config(config)
    today = made.today or utc_today()
    made = attrs.evolve(made, today=today)
    if last_days is None:
        return made
    if last_days < 1:
        raise ConfigurationError(f"last_days must be at least 1, got {last_days}")
    start, end = today - dt.timedelta(days=last_days), today - dt.timedelta(days=1)
    return attrs.evolve(made, selections=tuple(attrs.evolve(s, start=start, end=end) for s in made.selections))


# Never cached: a download must happen each time it is asked for (it skips what is stored by itself).
@task(
    name="download-shard", task_run_name="shard {index} of {count}", retries=SHARD_RETRIES, retry_delay_seconds=1,
    cache_policy=NO_CACHE,
)  # fmt: skip
def download_shard(config: RunConfig, index: int, count: int, detail: Detail = "all") -> dict[str, Any]:
    """One shard of the plan, on the ordinary engine (a fresh event loop of this task's thread); returns its report
    as a plain mapping."""
    from binance_archive.runner import run

    report = run(config.run(detail=detail))
    # A run count above the retries is the last run: its report is returned whatever it holds.
    if (report.failed or report.stopped) and task_run.run_count <= SHARD_RETRIES:
        named = ", ".join(f"{f.key} ({f.error})" for f in report.failures[:3])
        why = report.stopped or f"e.g. {named}"
        raise ShardIncomplete(f"{report.failed} files of shard {index} of {count} failed: {why}")
    return report.to_dict()


@task(name="convert-to-tables", cache_policy=NO_CACHE)
def convert_to_tables(config: RunConfig, to: str, to_options: Mapping[str, Any]) -> ConvertReport:
    """The second step: what the run stored, converted into typed Parquet tables at ``to`` (needs ``[tables]``)."""
    from binance_archive.runner import run

    return run(config.archive().convert(config.selections, to=to, to_options=dict(to_options)))


@flow(name="archive-collection")
def archive_collection(
    config: Any,
    shards: int | None = None,
    convert_to: str | None = None,
    convert_options: dict[str, Any] | None = None,
    last_days: int | None = None,
    detail: Detail = "all",
) -> dict[str, Any]:
    """Download what ``config`` selects, one task per shard, optionally convert it to tables; returns the
    collection workflow's result mapping (:func:`~binance_archive.config.collection_result`).

    Args:
        config: a mapping of either configuration schema, a TOML or JSON file, or a :class:`RunConfig`.
        shards: how many tasks the plan is cut into (default: twice the flow's task runner's workers, or 8).
        convert_to: where to write Parquet tables of what was downloaded (a folder or an ``s3://`` URL).
        convert_options: the tables' storage options.
        last_days: download the last ``N`` complete days (UTC) instead of the configuration's dates: the
            parameter of a scheduled daily refresh (``last_days=1``: yesterday's files).
        detail: ``"all"`` (the default) lists every file downloaded in the result's ``metadata`` (``source_files``,
            ``output_files``), as the collection workflow did; ``"problems"`` keeps only the failures, for runs of
            millions of files.
    """
    made = run_config(config, last_days)
    count = shards or 8
    parts = [attrs.evolve(made, shard=s) for s in split_shard(made.shard, count)]
    futures = [download_shard.submit(part, index, count, detail) for index, part in enumerate(parts)]
    reports = [Report.from_dict(future.result()) for future in futures]
    report = merge_reports(reports, sum(r.duration for r in reports))
    tables = None
    if convert_to is not None:
        tables = convert_to_tables.submit(made, convert_to, convert_options or {}).result()
    return collection_result(report, made, tables=tables)


def run_collection(
    config: Config,
    *,
    max_concurrency: int = 4,
    dask_address: str | None = None,
    shards: int | None = None,
    convert_to: str | None = None,
    convert_options: Mapping[str, Any] | None = None,
    last_days: int | None = None,
) -> dict[str, Any]:
    """Run :func:`archive_collection` with at most ``max_concurrency`` shards at once on Prefect's thread pool, or
    on the Dask cluster at ``dask_address`` (``tcp://host:8786``, through prefect-dask)."""
    if dask_address is not None:
        try:
            from prefect_dask.task_runners import DaskTaskRunner
        except ImportError as exc:
            raise ImportError("a Dask address needs prefect-dask: pip install 'binance-archive[prefect]'") from exc
        runner: Any = DaskTaskRunner(address=dask_address)
    else:
        runner = ThreadPoolTaskRunner(max_workers=max_concurrency)
    configured = archive_collection.with_options(task_runner=runner)
    # A mapping or a path goes to the flow as it is, so that Prefect's run history shows it.
    parameter = config if isinstance(config, (Mapping, RunConfig)) else os.fspath(config)
    options = dict(convert_options or {})
    result: dict[str, Any] = configured(
        parameter, shards=shards or 2 * max_concurrency, convert_to=convert_to, convert_options=options,
        last_days=last_days,
    )  # fmt: skip
    return result


@attrs.define
class PrefectArchiveCollectionWorkflow:
    """The collection workflow's entry point, for code written against it: ``await
    PrefectArchiveCollectionWorkflow(config).execute()`` returns its result mapping.

    ``config`` is that workflow's configuration (with ``workflow_type: "archive_collection"``); settings its
    schema lacks (``base_url``, ``listing_url``, ``storage_options``, ...) may sit beside them as native keys.
    """

    config: Config
    max_concurrency: int = 4
    dask_address: str | None = None
    convert_to: str | None = None

    async def execute(self) -> dict[str, Any]:
        """Run the flow (in a thread: the caller's loop stays free) and return the result mapping."""
        return await asyncio.to_thread(self.run)

    def run(self) -> dict[str, Any]:
        """:meth:`execute` for synchronous callers."""
        return run_collection(
            self.config,
            max_concurrency=self.max_concurrency,
            dask_address=self.dask_address,
            convert_to=self.convert_to,
        )
