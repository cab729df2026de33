"""A download on a Dask cluster: the plan cut into shards, one task per shard, each running the ordinary engine in a
worker (``pip install 'binance-archive[dask]'``).

    from distributed import Client
    from binance_archive import Selection
    from binance_archive.integrations.dask import run_on_dask

    report = run_on_dask(Selection(...), Client("tcp://scheduler:8786"), to="s3://bucket/binance")

What travels to the workers is the run's configuration (a :class:`~binance_archive.config.RunConfig`: selections
and plain settings), never an open client or storage: each task builds its own :class:`~binance_archive.Archive`,
with its own HTTP client, on a fresh event loop in the worker's thread.

The guarantees are those of one process. The shards are disjoint (CRC-32 of each key,
:func:`~binance_archive.core.split_shard`), so a file is fetched once across the cluster. A worker that dies
mid-shard loses only the files it had in flight (never stored under their final names); the scheduler runs the
shard again on another worker (``distributed.scheduler.allowed-failures``, 3 by default), and that run skips
what is already stored and verified.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import time
import uuid
from collections.abc import Coroutine, Iterable, Iterator
from typing import Any

import attrs

try:
    import distributed
except ImportError as exc:
    raise ImportError(
        "binance_archive.integrations.dask needs Dask's distributed scheduler: pip install 'binance-archive[dask]'"
    ) from exc

from binance_archive.config import RunConfig
from binance_archive.core.planning import Shard, split_shard, utc_today
from binance_archive.core.selection import Selection
from binance_archive.engine.run import Detail
from binance_archive.errors import ConfigurationError
from binance_archive.progress import Counter, PartProgress
from binance_archive.report import Report, merge_reports
from binance_archive.runner import run

__all__ = ["SHARDS_PER_WORKER", "download_on_dask", "resolve", "run_on_dask", "run_shard", "shard_configs"]

log = logging.getLogger(__name__)

SHARDS_PER_WORKER = 4
"""The default number of shards for each worker: enough that a slow or retried shard does not hold up the end of
the run, few enough that each keeps its files in flight busy."""

_PROGRESS_EVERY = 0.5  # seconds between two progress messages of a shard
_STOP_EVERY = 0.5  # seconds between two looks of a shard at its run's stop flag

Source = RunConfig | Selection | Iterable[Selection]


def run_config(source: Source, **settings: Any) -> RunConfig:
    """The configuration the shards share: ``source`` with ``settings`` (``to=``, ``transport=``, ...), planned as of
    one date for all of them (the client's UTC today, unless it names one), and a storage every worker reaches.

    Raises:
        ConfigurationError: for a relative local path (see :func:`check_reachable`) or an invalid setting.
    """
    if isinstance(source, RunConfig):
        config = attrs.evolve(source, **settings) if settings else source
    else:
        selections = (source,) if isinstance(source, Selection) else tuple(source)
        config = RunConfig(selections=selections, **settings)
    check_reachable(config.to)
    # Planned as of one date: a run that crosses midnight UTC must not give its shards different plans.
    return attrs.evolve(config, today=config.today or utc_today())


def check_reachable(location: str) -> None:
    """Refuse a storage location that names a different place on each machine: a relative local path.

    Raises:
        ConfigurationError: saying what to give instead.
    """
    scheme, sep, rest = location.partition("://")
    if sep and scheme != "file":
        return  # s3:// and plugins' schemes name the same place from everywhere
    path = rest if sep else location
    if not os.path.isabs(path):
        raise ConfigurationError(
            f"the storage {location!r} is a relative path, which each worker would take as a folder of its own: "
            "give an absolute path of a folder every worker shares (e.g. /mnt/shared/binance-data) or an s3:// URL"
        )


async def resolve(config: RunConfig) -> RunConfig:
    """``config`` with its symbols checked against the listing and those it leaves out, and its start dates, filled
    in: here and once, rather than by every shard (each would read the whole listing: ~258,000 requests for the
    archive's first dates, docs/scale.md). The shards then plan without a look at the listing."""
    selections = await config.archive().resolve(config.selections, today=config.today)
    log.info("the listing filled in the selections: %d series groups for the shards", len(selections))
    return attrs.evolve(config, selections=selections)


def shard_configs(config: RunConfig, shards: int) -> list[RunConfig]:
    """``config`` cut into ``shards`` disjoint parts (within its own shard, where it has one)."""
    return [attrs.evolve(config, shard=shard) for shard in split_shard(config.shard, shards)]


def default_shards(client: distributed.Client) -> int:
    """:data:`SHARDS_PER_WORKER` for each worker the scheduler knows now."""
    workers = len(client.scheduler_info().get("workers", {}))
    return SHARDS_PER_WORKER * max(1, workers)


def run_shard(config: RunConfig, shard: Shard, detail: Detail, topic: str, index: int, stop: str) -> dict[str, Any]:
    """Shard ``shard`` of ``config``, in a worker: the ordinary engine on a fresh event loop of this thread; returns
    its report as a plain mapping (:meth:`Report.to_dict`).

    Progress goes to the scheduler as events of ``topic``; the shard gives up, discarding its files in flight, when
    the :class:`distributed.Event` named ``stop`` is set (the client was interrupted).
    """
    config = attrs.evolve(config, shard=shard)
    reporter = _ShardProgress(topic, index)
    download = config.run(config.archive(progress=reporter), detail=detail, resolved=True)
    report = run(_unless_stopped(download, stop))
    reporter.send()
    return report.to_dict()


async def _unless_stopped(download: Coroutine[Any, Any, Report], stop: str) -> Report:
    task = asyncio.ensure_future(download)
    flag = distributed.Event(stop)
    while True:
        done, _ = await asyncio.wait({task}, timeout=_STOP_EVERY)
        if done:
            return task.result()
        # The scheduler answers in a thread of its own, so that the download goes on meanwhile.
        if await asyncio.to_thread(flag.is_set):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            raise asyncio.CancelledError("the run was stopped from its client")


class _ShardProgress(PartProgress):
    """A shard's counts, sent to the scheduler as events at most every half second."""

    def __init__(self, topic: str, index: int) -> None:
        super().__init__(interval=_PROGRESS_EVERY)
        self._topic = topic
        self._index = index

    def send(self) -> None:
        try:
            worker = distributed.get_worker()
        except ValueError:  # not in a worker: run_shard called directly
            return
        worker.log_event(self._topic, {"shard": self._index, **self.counts()})


def _the_config(config: RunConfig) -> RunConfig:
    """The task whose result hands the run's configuration to the shards (see :meth:`_Job.submit`)."""
    return config


@attrs.define
class _Job:
    """The shards of one run on a cluster: their futures, their progress, and the flag that stops them."""

    client: distributed.Client
    progress: Counter | None
    topic: str = attrs.Factory(lambda: f"binance-archive-{uuid.uuid4().hex}")
    stop_name: str = attrs.Factory(lambda: f"binance-archive-stop-{uuid.uuid4().hex}")
    futures: list[distributed.Future[dict[str, Any]]] = attrs.Factory(list)
    counts: dict[int, dict[str, int]] = attrs.Factory(dict)
    started: float = attrs.Factory(time.perf_counter)

    def shards(self, config: RunConfig, shards: int | None) -> list[Shard]:
        count = shards if shards is not None else default_shards(self.client)
        if count < 1:
            raise ConfigurationError(f"shards must be at least 1, got {count}")
        log.info("running the plan as %d shards on the cluster of %s", count, self.client)
        return split_shard(config.shard, count)

    def submit(self, config: RunConfig, shards: list[Shard], detail: Detail, retries: int) -> None:
        """One task per shard, all of them given the run's configuration as the result of a task of its own.

        A resolved plan of the whole archive is thousands of selections: it goes to each worker once, as that
        task's result, not once a shard. A task rather than scattered data: a worker killed with the only copy of
        scattered data loses it for good, and the shards that need it are cancelled (the active memory manager
        drops a broadcast's extra copies, so broadcasting did not prevent it); a task's result is computed again.
        """
        if self.progress is not None:
            self.client.subscribe_topic(self.topic, self._on_progress)
        run_id = self.topic.rsplit("-", 1)[1]
        submit = self.client.submit
        shared = submit(_the_config, config, key=f"binance-archive-config-{run_id}", pure=False)
        self.futures = [
            submit(run_shard, shared, shard, detail, self.topic, index, self.stop_name,
                   key=f"binance-archive-shard-{index}-of-{len(shards)}-{run_id}", pure=False, retries=retries)
            for index, shard in enumerate(shards)
        ]  # fmt: skip

    def _on_progress(self, event: tuple[float, dict[str, int]]) -> None:
        _, message = event
        self.counts[message["shard"]] = message
        if self.progress is not None:
            self.progress.add_up(self.counts.values())

    def report(self, results: list[dict[str, Any]]) -> Report:
        return merge_reports([Report.from_dict(r) for r in results], time.perf_counter() - self.started)

    def stop(self) -> None:
        """Tell the running shards to give up (Dask cannot interrupt a running task), then cancel them all."""
        with contextlib.suppress(Exception):
            distributed.Event(self.stop_name, client=self.client).set()
        with contextlib.suppress(Exception):
            self.client.cancel(self.futures)

    def close(self) -> None:
        if self.progress is not None:
            with contextlib.suppress(Exception):
                self.client.unsubscribe_topic(self.topic)


@contextlib.contextmanager
def _client(client: distributed.Client | str) -> Iterator[distributed.Client]:
    if isinstance(client, distributed.Client):
        yield client
        return
    with distributed.Client(client) as connected:
        yield connected


def run_on_dask(
    source: Source,
    client: distributed.Client | str,
    *,
    shards: int | None = None,
    detail: Detail = "problems",
    progress: Counter | None = None,
    retries: int = 2,
    **settings: Any,
) -> Report:
    """Download ``source`` on the Dask cluster of ``client`` (a :class:`distributed.Client`, or a scheduler's address
    such as ``tcp://host:8786``); returns the shards' reports merged into one.

    Args:
        source: a :class:`~binance_archive.config.RunConfig` (``load_config(path)``), a selection or several.
        shards: how many parts to cut the plan into (default: :data:`SHARDS_PER_WORKER` per worker).
        detail: ``"problems"`` (the default, so that a run of millions of files returns a small report) keeps an
            outcome only for missing and failed files; ``"all"`` one for every file.
        progress: a :class:`~binance_archive.progress.Counter` (e.g. ``TerminalProgress``) given the shards' counts.
        retries: how many times a shard that raised is run again (a shard whose worker died is rescheduled by
            Dask itself).
        settings: :class:`~binance_archive.config.RunConfig`'s fields: ``to=``, ``transport=``, ``base_url=``, ...

    Raises:
        ConfigurationError: before anything is submitted, for a storage the workers cannot all reach (a relative
            path) or an invalid setting; from a shard, for what only a worker finds out.
    """
    config = run_config(source, **settings)
    with concurrent.futures.ThreadPoolExecutor(1) as thread:  # a loop of its own, wherever this is called from
        config = thread.submit(run, resolve(config)).result()
    with _client(client) as connected:
        job = _Job(connected, progress)
        try:
            parts = job.shards(config, shards)
            job.submit(config, parts, detail, retries)
            results: list[dict[str, Any]] = connected.gather(job.futures)
        except BaseException:
            job.stop()
            raise
        finally:
            job.close()
    return job.report(results)


async def download_on_dask(
    source: Source,
    client: distributed.Client | str,
    *,
    shards: int | None = None,
    detail: Detail = "problems",
    progress: Counter | None = None,
    retries: int = 2,
    **settings: Any,
) -> Report:
    """:func:`run_on_dask` for async code (a notebook cell, an async application): ``await download_on_dask(...)``.

    The caller's loop stays free while the cluster works, and cancelling the ``await`` stops the shards (each
    discards its files in flight). With an asynchronous client (``Client(..., asynchronous=True)``) it runs on the
    caller's loop; a synchronous client's blocking calls go to a thread.
    """
    config = await resolve(run_config(source, **settings))
    if isinstance(client, distributed.Client) and client.asynchronous:
        return await _on_async_client(client, config, shards, detail, progress, retries)
    own = not isinstance(client, distributed.Client)
    connected = (
        client if isinstance(client, distributed.Client) else await asyncio.to_thread(distributed.Client, client)
    )
    try:
        job = _Job(connected, progress)
        try:
            parts = await asyncio.to_thread(job.shards, config, shards)
            await asyncio.to_thread(job.submit, config, parts, detail, retries)
            # A cancelled await returns at once and stops the shards below; the thread then ends with them.
            await asyncio.to_thread(distributed.wait, job.futures)
            results: list[dict[str, Any]] = await asyncio.to_thread(connected.gather, job.futures)
        except BaseException:
            await asyncio.to_thread(job.stop)
            raise
        finally:
            job.close()
    finally:
        if own:
            await asyncio.to_thread(connected.close)
    return job.report(results)


async def _on_async_client(
    client: distributed.Client,
    config: RunConfig,
    shards: int | None,
    detail: Detail,
    progress: Counter | None,
    retries: int,
) -> Report:
    job = _Job(client, progress)
    try:
        parts = job.shards(config, shards)
        job.submit(config, parts, detail, retries)
        results: list[dict[str, Any]] = await client.gather(job.futures)
    except BaseException:
        with contextlib.suppress(Exception):
            await distributed.Event(job.stop_name, client=client).set()
            await client.cancel(job.futures)
        raise
    finally:
        job.close()
    return job.report(results)
