"""The local storage's commits of small files (storages/commits.py): on the event loop while they are cheap, in
batches on writer threads once they are measured slow; files created unnamed (``O_TMPFILE``) or named and renamed;
every way atomic, cancellable, and with the storage's own errors."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from binance_archive import Archive
from binance_archive.errors import ConfigurationError, StorageError
from binance_archive.storages.local import LocalStorage

from ..support.mounts import mounted_tmpfs, remount

FOLDER = "data/spot/daily/klines/BTCUSDT/1h"


def _key(i: int, folder: str = FOLDER) -> str:
    return f"{folder}/BTCUSDT-1h-2024-01-{i:04d}.zip"


def _data(i: int) -> bytes:
    return f"file {i} ".encode() * (1 + i % 700)


def _commit_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("binance-archive-commit-")]


def _temporary(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.startswith(".binance-archive-")]


async def _write(storage: LocalStorage, key: str, data: bytes) -> None:
    async with storage.writer(key) as writer:
        await writer.write_many([data[: len(data) // 2], data[len(data) // 2 :]])
        await writer.commit()


def _storage(root: Path, *, unnamed: bool, **options: object) -> LocalStorage:
    storage = LocalStorage(root, **options)  # type: ignore[arg-type]
    if not unnamed:
        storage.committer.unnamed = False  # the named way: a temporary file beside the final one, renamed
    else:
        assert storage.committer.unnamed, "this machine's file systems (ext4, tmpfs) create unnamed files"
    return storage


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs of its own (mounting needs root), to be made read-only under a running storage."""
    with mounted_tmpfs(tmp_path / "tmpfs", "size=4m", refused=pytest.fail) as target:
        yield target


@pytest.mark.parametrize("unnamed", [True, False], ids=["unnamed", "named"])
async def test_threaded_commits_store_every_file_whole(tmp_path: Path, unnamed: bool) -> None:
    """``slow_commit=0``: every small file's commit goes to the writer threads, many at once in several folders,
    sidecars (put_bytes) and zips (writers) alike; each lands whole, nothing temporary is left."""
    storage = _storage(tmp_path / "mirror", unnamed=unnamed, slow_commit=0, commit_threads=3)
    assert storage.committer.threaded
    keys = [_key(i, f"{FOLDER}{i % 5}") for i in range(600)]
    before = {t.ident for t in _commit_threads()}  # other storages' threads, idling out
    async with storage:
        await asyncio.gather(
            *(_write(storage, k, _data(i)) for i, k in enumerate(keys)),
            *(storage.put_bytes(k + ".CHECKSUM", b"sum %d" % i) for i, k in enumerate(keys)),
        )
        started = {t.ident for t in _commit_threads()} - before
        assert 1 <= len(started) <= 3, "the commits went to (at most 3) writer threads"
    for i, key in enumerate(keys):
        assert (tmp_path / "mirror" / key).read_bytes() == _data(i)
        assert (tmp_path / "mirror" / (key + ".CHECKSUM")).read_bytes() == b"sum %d" % i
    assert _temporary(tmp_path / "mirror") == []
    assert storage.committer.unnamed is unnamed


@pytest.mark.parametrize("unnamed", [True, False], ids=["unnamed", "named"])
async def test_commits_move_to_threads_once_measured_slow(tmp_path: Path, unnamed: bool) -> None:
    """Commits start on the loop; once a window of them is measured above ``slow_commit`` (here a nanosecond:
    any), the next ones go to the writer threads. With ``commit_threads=0`` they never do."""
    storage = _storage(tmp_path / "mirror", unnamed=unnamed, slow_commit=1e-9, commit_threads=2)
    stays = _storage(tmp_path / "stays", unnamed=unnamed, slow_commit=1e-9, commit_threads=0)
    async with storage, stays:
        assert not storage.committer.threaded
        for i in range(31):
            await storage.put_bytes(_key(i), _data(i))
            await stays.put_bytes(_key(i), _data(i))
        assert not storage.committer.threaded, "one window of commits is measured before deciding"
        await storage.put_bytes(_key(31), _data(31))
        assert storage.committer.threaded
        before = {t.ident for t in _commit_threads()}
        await asyncio.gather(*(_write(storage, _key(i), _data(i)) for i in range(32, 100)))
        assert {t.ident for t in _commit_threads()} - before, "the later commits ran on a writer thread"
        for i in range(31, 200):
            await stays.put_bytes(_key(i), _data(i))
        assert not stays.committer.threaded
    for i in range(100):
        assert (tmp_path / "mirror" / _key(i)).read_bytes() == _data(i)
    assert _temporary(tmp_path / "mirror") == [] and _temporary(tmp_path / "stays") == []


async def test_a_fast_file_system_keeps_commits_on_the_loop(tmp_path: Path) -> None:
    """With a threshold no commit reaches, commits stay on the loop: no thread is started for them."""
    storage = LocalStorage(tmp_path / "mirror", slow_commit=10.0)
    before = {t.ident for t in _commit_threads()}
    async with storage:
        for i in range(100):
            await storage.put_bytes(_key(i), _data(i))
    assert not storage.committer.threaded
    assert {t.ident for t in _commit_threads()} <= before


@pytest.mark.parametrize("unnamed", [True, False], ids=["unnamed", "named"])
async def test_a_cancelled_queued_commit_leaves_nothing(tmp_path: Path, unnamed: bool) -> None:
    """A commit queued for a writer thread and cancelled before the thread takes it is skipped there: no file under
    its final name, no temporary file; the files around it are stored, and the storage keeps working."""
    storage = _storage(tmp_path / "mirror", unnamed=unnamed, slow_commit=0)
    async with storage:
        others = [asyncio.create_task(storage.put_bytes(_key(i), _data(i))) for i in range(10)]
        cancelled = [asyncio.create_task(_write(storage, _key(100 + i), _data(i))) for i in range(10)]
        await asyncio.sleep(0)  # every commit queued, none handed over yet (that comes at the end of the turn)
        for task in cancelled:
            task.cancel()
        await asyncio.gather(*others)
        for task in cancelled:
            with pytest.raises(asyncio.CancelledError):
                await task
        await storage.put_bytes(_key(200), b"after")  # behind any thread still busy: all done by then
    assert sorted(p.name for p in (tmp_path / "mirror" / FOLDER).iterdir()) == sorted(
        Path(_key(i)).name for i in [*range(10), 200]
    )
    assert _temporary(tmp_path / "mirror") == []


@pytest.mark.parametrize("unnamed", [True, False], ids=["unnamed", "named"])
@pytest.mark.parametrize("threaded", [True, False], ids=["threads", "loop"])
async def test_a_folder_replaced_by_a_file_is_a_storage_error_naming_it(
    tmp_path: Path, unnamed: bool, threaded: bool
) -> None:
    """An OSError in a writer thread (or on the loop) comes back to the file's commit as the storage's error,
    saying which file stands where a folder should be."""
    storage = _storage(tmp_path / "mirror", unnamed=unnamed, slow_commit=0 if threaded else 10.0)
    folder = tmp_path / "mirror" / FOLDER
    async with storage:
        await storage.put_bytes(_key(1), b"one")  # the folder is made and remembered as ready
        for entry in folder.iterdir():
            entry.unlink()
        folder.rmdir()
        folder.write_bytes(b"a file now")
        with pytest.raises(StorageError) as raised:
            await _write(storage, _key(2), b"two")
        with pytest.raises(StorageError) as raised_too:
            await storage.put_bytes(_key(3) + ".CHECKSUM", b"three")
    for exc in (raised.value, raised_too.value):
        assert f"{folder} is a file where a folder should be; move it away" in str(exc), exc
    assert folder.read_bytes() == b"a file now"
    assert storage.committer.unnamed is unnamed, "a failure of one folder does not turn unnamed files off"


@pytest.mark.parametrize("unnamed", [True, False], ids=["unnamed", "named"])
async def test_a_read_only_file_system_in_a_writer_thread_stops_the_run(tmpfs: Path, unnamed: bool) -> None:
    """A file system remounted read-only under a running storage: the writer thread's EROFS comes back as the
    storage's StorageFullError (the engine then starts no more files), saying so."""
    from binance_archive.errors import StorageFullError

    storage = _storage(tmpfs / "mirror", unnamed=unnamed, slow_commit=0)
    async with storage:
        await storage.put_bytes(_key(1), b"one")
        await asyncio.to_thread(remount, tmpfs, "ro")
        with pytest.raises(StorageFullError, match=r"cannot write .*: the file system is read-only"):
            await _write(storage, _key(2), b"two")
    assert (tmpfs / "mirror" / _key(1)).read_bytes() == b"one"
    assert not (tmpfs / "mirror" / _key(2)).exists()


@pytest.mark.parametrize("unnamed", [True, False], ids=["unnamed", "named"])
@pytest.mark.parametrize("threaded", [True, False], ids=["threads", "loop"])
async def test_replacing_a_stored_file_is_atomic(tmp_path: Path, unnamed: bool, threaded: bool) -> None:
    """A stored file replaced again and again (``--force``, a refresh) while a thread reads it: every read sees one
    whole version, never a mix or a short file; a hard link to the old file (a mirror's adopted copy) keeps the old
    bytes (a new file is linked in, the old one never written into)."""
    storage = _storage(tmp_path / "mirror", unnamed=unnamed, slow_commit=0 if threaded else 10.0)
    final = tmp_path / "mirror" / _key(1)
    versions = [bytes([65 + v]) * (50_000 + 1000 * v) for v in range(8)]
    seen: set[bytes] = set()
    stop = threading.Event()

    def read_all_the_time() -> None:
        while not stop.is_set():
            seen.add(final.read_bytes())

    async with storage:
        await storage.put_bytes(_key(1), versions[0])
        os.link(final, tmp_path / "shared-copy")
        reader = threading.Thread(target=read_all_the_time)
        reader.start()
        try:
            for round_ in range(40):
                data = versions[round_ % len(versions)]
                if round_ % 2:
                    await storage.put_bytes(_key(1), data)
                else:
                    await _write(storage, _key(1), data)
        finally:
            stop.set()
            reader.join()
    assert seen <= set(versions), "a reader saw a partial or mixed file"
    assert final.read_bytes() == versions[39 % len(versions)]
    assert (tmp_path / "shared-copy").read_bytes() == versions[0]
    assert _temporary(tmp_path / "mirror") == []


def test_without_proc_files_are_named_and_renamed(tmp_path: Path) -> None:
    """Where ``/proc/self/fd`` is missing (unnamed files cannot be linked by their descriptor), commits go the named
    way, on the loop and on threads, and still store every file whole. Run in a mount namespace without /proc."""
    script = textwrap.dedent(
        f"""
        import asyncio, sys
        from pathlib import Path
        from binance_archive.storages.local import LocalStorage

        async def main():
            for slow in (10.0, 0.0):
                storage = LocalStorage({str(tmp_path)!r} + f"/m{{slow}}", slow_commit=slow)
                assert not storage.committer.unnamed
                async with storage:
                    await asyncio.gather(*(storage.put_bytes(f"data/a/{{i}}.zip", b"x%d" % i) for i in range(50)))
                    await storage.put_bytes("data/a/1.zip", b"again")
                files = sorted(p.name for p in Path(storage.location, "data/a").iterdir())
                assert files == sorted(f"{{i}}.zip" for i in range(50)), files
                assert Path(storage.location, "data/a/1.zip").read_bytes() == b"again"
            print("ok")

        asyncio.run(main())
        """
    )
    done = subprocess.run(
        ["unshare", "-m", "sh", "-c", 'umount -l /proc && test ! -e /proc/self/fd && exec "$0" -c "$1"',
         sys.executable, script],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    if done.returncode != 0 and "unshare" in done.stderr and "Operation not permitted" in done.stderr:
        pytest.fail(f"this test needs root (a mount namespace): {done.stderr}")
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"commit_threads": -1}, "commit_threads must be a whole number from 0 to 64, not -1"),
        ({"commit_threads": "4"}, "commit_threads must be a whole number from 0 to 64, not '4'"),
        ({"commit_threads": True}, "commit_threads must be a whole number from 0 to 64, not True"),
        ({"slow_commit": -0.1}, "slow_commit must be a number of seconds (0 or more), not -0.1"),
        ({"slow_commit": "fast"}, "slow_commit must be a number of seconds (0 or more), not 'fast'"),
    ],
)
def test_bad_commit_options_are_refused_naming_the_option(tmp_path: Path, options: dict, message: str) -> None:
    with pytest.raises(ConfigurationError, match="^" + message.replace("(", r"\(").replace(")", r"\)") + "$"):
        Archive(tmp_path / "mirror", storage_options=options, entry_points=False)


def test_commit_options_reach_the_storage_from_the_command_line(tmp_path: Path) -> None:
    """``--storage-option commit_threads=4`` (and ``slow_commit``) reach the local storage; a bad value is refused
    with status 2 before any request, naming the option."""
    from binance_archive.cli.arguments import config_of
    from binance_archive.cli.parser import build_parser

    argv = ["download", "--market", "spot", "--data-type", "klines", "--symbol", "BTCUSDT", "--interval", "1h",
            "--start", "2024-01-01", "--to", str(tmp_path / "m"), "--storage-option", "commit_threads=4",
            "--storage-option", "slow_commit=0.001"]  # fmt: skip
    config = config_of(build_parser().parse_args(argv))
    storage = config.archive(entry_points=False).storage
    assert isinstance(storage, LocalStorage)
    assert (storage.commit_threads, storage.slow_commit) == (4, 0.001)
    bad = subprocess.run(
        [sys.executable, "-m", "binance_archive", *argv[:-4], "--storage-option", "commit_threads=100",
         "--base-url", "http://127.0.0.1:9/"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert bad.returncode == 2, bad.stderr
    assert "commit_threads must be a whole number from 0 to 64, not 100" in bad.stderr


@pytest.mark.parametrize("threads", [2, 0])
async def test_fsync_commits_never_run_on_the_loop(
    tmp_path: Path, threads: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With ``fsync`` a commit waits for the disk: on the writer threads from the start, or with
    ``commit_threads=0`` each in a thread of its own, never on the event loop; every file lands whole."""
    storage = LocalStorage(tmp_path / "mirror", fsync=True, commit_threads=threads)
    assert storage.committer.threaded is (threads > 0)
    loop_thread = threading.get_ident()
    seen: set[int] = set()
    real_fsync = os.fsync

    def watching_fsync(fd: int) -> None:  # the real call, noting the thread it runs on
        seen.add(threading.get_ident())
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", watching_fsync)
    async with storage:
        await asyncio.gather(*(_write(storage, _key(i), _data(i)) for i in range(20)))
    assert seen and loop_thread not in seen
    for i in range(20):
        assert (tmp_path / "mirror" / _key(i)).read_bytes() == _data(i)
    assert _temporary(tmp_path / "mirror") == []


def test_no_thread_to_be_had_keeps_commits_on_the_loop(tmp_path: Path) -> None:
    """Where no thread can be started (a process or thread limit; here a stack size the system cannot give), the
    commits queued for the writer threads are done on the loop, and the next ones stay there: a warning, never a
    commit waiting for a thread that will not come."""
    script = textwrap.dedent(
        f"""
        import asyncio, logging, sys, threading
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
        threading.stack_size(2**44)  # 16 TiB a thread: more than the system gives, so no thread starts
        from binance_archive.storages.local import LocalStorage

        async def main():
            storage = LocalStorage({str(tmp_path / "mirror")!r}, slow_commit=0)
            async with storage:
                await asyncio.gather(*(storage.put_bytes(f"data/a/{{i}}.zip", b"x%d" % i) for i in range(50)))
                await storage.put_bytes("data/a/last.zip", b"last")
            print("threaded", storage.committer.threaded)

        asyncio.run(asyncio.wait_for(main(), 60))  # a bound, not a measurement: it takes milliseconds
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "threaded False"
    assert (
        "WARNING cannot start a writer thread (can't start new thread): commits stay on the event loop" in done.stderr
    )
    assert sorted(p.name for p in (tmp_path / "mirror/data/a").iterdir()) == sorted(
        [*(f"{i}.zip" for i in range(50)), "last.zip"]
    )
    assert (tmp_path / "mirror/data/a/7.zip").read_bytes() == b"x7"
