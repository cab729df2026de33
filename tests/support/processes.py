"""Child processes of the test process, seen through Linux's /proc."""

from __future__ import annotations

import contextlib
import os


def s5cmd_children() -> list[int]:
    """PIDs of s5cmd processes whose parent is this process ([] where /proc is missing)."""
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
