from __future__ import annotations

import pytest

pytest.importorskip("pyarrow", reason="the tables need pyarrow: pip install 'binance-archive[tables]' (in [test])")
