"""``python -m binance_archive``: the same as the ``binance-archive`` command."""

from binance_archive.cli import main

raise SystemExit(main())
