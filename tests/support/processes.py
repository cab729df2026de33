"""Child processes of the test process, seen through Linux's /proc."""

from __future__ import annotations

import contextlib
import os

import pytest


def s5cmd_children(*, skip_without_proc: bool = False) -> list[int]:
    """PIDs of s5cmd processes whose parent is this process; where /proc is missing, [] (or, with
    ``skip_without_proc``, the calling test skips)."""
    if skip_without_proc and not os.path.isdir("/proc"):
        pytest.skip("needs /proc to see child processes")
    found = []
    with contextlib.suppress(OSError):
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    fields = handle.read().rsplit(")", 1)
                name, ppid = fields[0].split("(", 1)[1], int(fields[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == os.getpid() and name == "s5cmd":
                found.append(int(entry))
    return found
