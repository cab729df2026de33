"""``python -m binance_archive``: the same as the ``binance-archive`` command."""

from binance_archive.cli import console_script

console_script()
