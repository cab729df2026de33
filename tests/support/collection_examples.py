"""The configuration examples of the collection workflow users migrate from, as its documentation gives them (its
README, guide, API reference and examples pages), for the test that every one loads.

Only the configuration documents are kept, each under the heading it has there. Python's ``True`` / ``False``
are JSON's here; the batch script's ``$date`` is a date.
"""

from __future__ import annotations

from typing import Any

MATRIX = "enhanced_binance_archive_matrix.json"
"""The ``matrix_path`` the examples name (the test writes a catalog there)."""

_HEAD: dict[str, Any] = {"workflow_type": "archive_collection", "matrix_path": MATRIX}
_DAY = {"start": "2025-07-15", "end": "2025-07-15"}
_FOUR_MARKETS = {
    "spot": ["BTCUSDT", "ETHUSDT"],
    "futures_um": ["BTCUSDT", "ETHUSDT"],
    "futures_cm": ["BTCUSD_PERP"],
    "options": ["BTC"],
}

EXAMPLES: dict[str, dict[str, Any]] = {
    # -- the examples page ---------------------------------------------------------------------------------
    "Basic Collection - Single Market": {
        **_HEAD, "output_directory": "output/basic_collection", "markets": ["spot"], "symbols": ["BTCUSDT"],
        "data_types": ["klines"], "intervals": {"klines": ["1h", "1d"]}, "date_range": _DAY,
    },
    "Multi-Market Collection": {
        **_HEAD, "output_directory": "output/multi_market", "markets": ["spot", "futures_um", "futures_cm", "options"],
        "symbols": _FOUR_MARKETS, "data_types": ["klines", "trades"], "intervals": {"klines": ["1h", "1d"]},
        "date_range": {"start": "2025-07-10", "end": "2025-07-15"}, "batch_size": 100, "max_parallel_downloads": 8,
    },
    "Spot Market - Complete Dataset": {
        **_HEAD, "output_directory": "output/spot_complete", "markets": ["spot"],
        "symbols": ["BTCUSDT", "ETHUSDT", "ADAUSDT", "DOTUSDT", "LINKUSDT"],
        "data_types": ["klines", "trades", "aggTrades", "bookDepth", "bookTicker"],
        "intervals": {"klines": ["1m", "5m", "15m", "1h", "4h", "1d"], "bookDepth": ["100ms", "1000ms"]},
        "date_range": {"start": "2025-07-01", "end": "2025-07-15"}, "batch_size": 150, "enable_batch_mode": True,
        "enable_resume": True,
    },
    "Futures UM - Trading Analysis Dataset": {
        **_HEAD, "output_directory": "output/futures_trading", "markets": ["futures_um"],
        "symbols": ["BTCUSDT", "ETHUSDT", "BNBUSDT"],
        "data_types": ["klines", "fundingRate", "premiumIndex", "liquidationSnapshot", "metrics"],
        "intervals": {
            "klines": ["1m", "5m", "15m", "1h", "4h"], "indexPriceKlines": ["1h", "4h"], "markPriceKlines": ["1h", "4h"],
        },
        "date_range": {"start": "2025-07-01", "end": "2025-07-15"}, "max_parallel_downloads": 10,
    },
    "Options - Volatility Analysis": {
        **_HEAD, "output_directory": "output/options_volatility", "markets": ["options"], "symbols": ["BTC", "ETH"],
        "data_types": ["BVOLIndex", "EOHSummary"], "intervals": {"BVOLIndex": ["1m", "5m", "1h", "1d"]},
        "date_range": {"start": "2025-07-01", "end": "2025-07-15"},
    },
    "Comprehensive Klines Collection": {
        **_HEAD, "output_directory": "output/all_klines", "markets": ["spot", "futures_um", "futures_cm"],
        "symbols": {
            "spot": ["BTCUSDT", "ETHUSDT"], "futures_um": ["BTCUSDT", "ETHUSDT"],
            "futures_cm": ["BTCUSD_PERP", "ETHUSD_PERP"],
        },
        "data_types": ["klines", "indexPriceKlines", "markPriceKlines"],
        "intervals": {
            "klines": ["1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d", "1w", "1M"],
            "indexPriceKlines": ["1m", "5m", "1h", "1d"], "markPriceKlines": ["1m", "5m", "1h", "1d"],
        },
        "date_range": _DAY,
    },
    "Order Book Analysis": {
        **_HEAD, "output_directory": "output/orderbook_analysis", "markets": ["spot", "futures_um"],
        "symbols": ["BTCUSDT", "ETHUSDT"], "data_types": ["bookDepth", "bookTicker"],
        "intervals": {"bookDepth": ["100ms", "1000ms"]}, "date_range": _DAY, "batch_size": 50,
        "max_parallel_downloads": 6,
    },
    "Liquidation Events": {
        **_HEAD, "output_directory": "output/liquidations", "markets": ["futures_um", "futures_cm"],
        "symbols": ["BTCUSDT", "ETHUSDT", "ADAUSDT"], "data_types": ["liquidationSnapshot"],
        "date_range": {"start": "2025-07-01", "end": "2025-07-15"},
    },
    "High-Throughput Configuration": {
        **_HEAD, "output_directory": "output/high_performance", "markets": ["spot", "futures_um"],
        "symbols": ["BTCUSDT", "ETHUSDT"], "data_types": ["klines", "trades"], "intervals": {"klines": ["1h", "1d"]},
        "date_range": {"start": "2025-07-01", "end": "2025-07-15"}, "batch_size": 200, "max_parallel_downloads": 10,
        "enable_batch_mode": True, "enable_resume": True, "download_checksum": False,
        "s5cmd_extra_args": ["--no-sign-request", "--retry-count=3", "--numworkers=16", "--part-size=100MB"],
        "part_size_mb": 100,
    },
    "Memory-Optimized Configuration": {
        **_HEAD, "output_directory": "output/memory_optimized", "markets": ["spot"], "symbols": ["BTCUSDT"],
        "data_types": ["klines"], "intervals": {"klines": ["1h", "1d"]}, "date_range": _DAY, "batch_size": 20,
        "max_parallel_downloads": 2, "enable_batch_mode": False, "part_size_mb": 10, "timeout_seconds": 600,
    },
    "Network-Resilient Configuration": {
        **_HEAD, "output_directory": "output/resilient", "markets": ["spot"], "symbols": ["BTCUSDT", "ETHUSDT"],
        "data_types": ["klines", "trades"], "intervals": {"klines": ["1h", "1d"]}, "date_range": _DAY,
        "enable_resume": True, "download_checksum": True, "timeout_seconds": 900, "force_redownload": False,
        "s5cmd_extra_args": ["--no-sign-request", "--retry-count=5", "--part-size=50MB"],
    },
    "Single Day Collection": {
        **_HEAD, "output_directory": "output/single_day", "markets": ["spot", "futures_um"], "symbols": ["BTCUSDT"],
        "data_types": ["klines", "trades", "fundingRate"], "date_range": _DAY,
    },
    "Weekly Collection": {
        **_HEAD, "output_directory": "output/weekly", "markets": ["spot"], "symbols": ["BTCUSDT", "ETHUSDT"],
        "data_types": ["klines"], "intervals": {"klines": ["1h", "1d"]},
        "date_range": {"start": "2025-07-08", "end": "2025-07-15"},
    },
    "Monthly Collection": {
        **_HEAD, "output_directory": "output/monthly", "markets": ["spot"], "symbols": ["BTCUSDT"],
        "data_types": ["klines"], "intervals": {"klines": ["1d"]},
        "date_range": {"start": "2025-06-15", "end": "2025-07-15"}, "batch_size": 50,
    },
    "Robust Collection with Retry Logic": {
        **_HEAD, "output_directory": "output/robust", "markets": ["spot"], "symbols": ["BTCUSDT"],
        "data_types": ["klines"], "date_range": _DAY, "enable_resume": True,
    },
    "Partial Collection Handling": {
        **_HEAD, "output_directory": "output/partial", "markets": ["spot", "futures_um"],
        "symbols": ["BTCUSDT", "ETHUSDT"], "data_types": ["klines", "trades"],
        "date_range": {"start": "2025-07-10", "end": "2025-07-15"},
    },
    "Research Dataset Creation": {
        **_HEAD, "output_directory": "output/research_dataset", "markets": ["spot", "futures_um", "futures_cm", "options"],
        "symbols": {
            "spot": ["BTCUSDT", "ETHUSDT", "ADAUSDT", "DOTUSDT", "LINKUSDT"],
            "futures_um": ["BTCUSDT", "ETHUSDT", "ADAUSDT", "DOTUSDT"],
            "futures_cm": ["BTCUSD_PERP", "ETHUSD_PERP"], "options": ["BTC", "ETH"],
        },
        "data_types": [
            "klines", "trades", "aggTrades", "bookDepth", "bookTicker", "fundingRate", "premiumIndex",
            "liquidationSnapshot", "metrics", "BVOLIndex", "EOHSummary", "indexPriceKlines", "markPriceKlines",
        ],
        "intervals": {
            "klines": ["1m", "5m", "15m", "1h", "4h", "1d"], "indexPriceKlines": ["1h", "4h", "1d"],
            "markPriceKlines": ["1h", "4h", "1d"], "BVOLIndex": ["1h", "1d"], "bookDepth": ["1000ms"],
        },
        "date_range": {"start": "2025-07-01", "end": "2025-07-15"}, "batch_size": 100, "max_parallel_downloads": 8,
        "enable_batch_mode": True, "download_checksum": True,
    },
    "Trading System Backtesting Data": {
        **_HEAD, "output_directory": "output/backtest_data", "markets": ["spot", "futures_um"],
        "symbols": ["BTCUSDT", "ETHUSDT"], "data_types": ["klines", "trades", "fundingRate", "liquidationSnapshot"],
        "intervals": {"klines": ["1m", "5m", "1h"]}, "date_range": {"start": "2025-06-01", "end": "2025-07-15"},
        "batch_size": 150, "enable_resume": True,
    },
    "Real-time Data Pipeline Initialization": {
        **_HEAD, "output_directory": "output/pipeline_init", "markets": ["spot", "futures_um"],
        "symbols": ["BTCUSDT", "ETHUSDT", "BNBUSDT"], "data_types": ["klines", "trades", "fundingRate", "bookTicker"],
        "intervals": {"klines": ["1m", "5m", "1h"]}, "date_range": {"start": "2025-07-14", "end": "2025-07-15"},
        "force_redownload": True, "download_checksum": True,
    },
    "Unit Test Configuration": {
        **_HEAD, "output_directory": "output/test", "markets": ["spot"], "symbols": ["BTCUSDT"],
        "data_types": ["klines"], "intervals": {"klines": ["1h"]}, "date_range": _DAY, "batch_size": 5,
        "max_parallel_downloads": 2, "timeout_seconds": 60,
    },
    "Performance Test": {
        **_HEAD, "output_directory": "output/performance_test", "markets": ["spot"], "symbols": ["BTCUSDT", "ETHUSDT"],
        "data_types": ["klines", "trades"], "intervals": {"klines": ["1h", "1d"]}, "date_range": _DAY,
        "batch_size": 100, "max_parallel_downloads": 8,
    },
    "Direct Execution (config.json)": {
        **_HEAD, "output_directory": "output/cli_test", "markets": ["spot"], "symbols": ["BTCUSDT"],
        "data_types": ["klines"], "intervals": {"klines": ["1h", "1d"]}, "date_range": _DAY,
    },
    "Batch Script Execution": {
        **_HEAD, "output_directory": "output/batch_2025-07-10", "markets": ["spot", "futures_um"],
        "symbols": ["BTCUSDT", "ETHUSDT"], "data_types": ["klines", "trades"], "intervals": {"klines": ["1h", "1d"]},
        "date_range": {"start": "2025-07-10", "end": "2025-07-10"}, "enable_resume": True,
    },
    # -- the API reference -----------------------------------------------------------------------------------
    "API: the constructor's example": {
        **_HEAD, "output_directory": "output/data", "markets": ["spot", "futures_um"], "symbols": ["BTCUSDT"],
        "data_types": ["klines"],
    },
    "API: Workflow Configuration Schema": {
        **_HEAD, "output_directory": "output/data", "markets": ["spot", "futures_um", "futures_cm", "options"],
        "symbols": _FOUR_MARKETS, "data_types": ["klines", "trades", "fundingRate", "BVOLIndex"],
        "intervals": {"klines": ["1m", "1h", "1d"], "BVOLIndex": ["1h", "1d"]}, "date_range": _DAY,
        "batch_size": 100, "max_parallel_downloads": 8, "enable_batch_mode": True, "enable_resume": True,
        "download_checksum": True, "timeout_seconds": 300, "force_redownload": False,
        "s5cmd_extra_args": ["--no-sign-request", "--retry-count=3"], "part_size_mb": 50,
        "environment": "production", "enable_monitoring": True, "local_data_dir": "output/data",
        "logging": {"level": "INFO"},
    },
    # -- the guide -------------------------------------------------------------------------------------------
    "Guide: Basic Usage": {
        **_HEAD, "output_directory": "output/archive_data", "markets": ["spot", "futures_um", "futures_cm", "options"],
        "symbols": _FOUR_MARKETS, "data_types": ["klines", "trades", "fundingRate", "BVOLIndex"],
        "intervals": {"klines": ["1m", "1h", "1d"], "BVOLIndex": ["1h", "1d"]}, "date_range": _DAY,
    },
    "Guide: Full Market Collection": {
        **_HEAD, "output_directory": "output/full_collection", "markets": ["spot", "futures_um", "futures_cm", "options"],
        "symbols": {
            "spot": ["BTCUSDT", "ETHUSDT", "ADAUSDT"], "futures_um": ["BTCUSDT", "ETHUSDT", "ADAUSDT"],
            "futures_cm": ["BTCUSD_PERP", "ETHUSD_PERP"], "options": ["BTC", "ETH"],
        },
        "data_types": ["klines", "trades", "fundingRate", "liquidationSnapshot", "BVOLIndex"],
        "intervals": {
            "klines": ["1m", "5m", "1h", "1d"], "indexPriceKlines": ["1h", "1d"], "markPriceKlines": ["1h", "1d"],
            "BVOLIndex": ["1h", "1d"], "bookDepth": ["100ms", "1000ms"],
        },
        "date_range": {"start": "2025-07-01", "end": "2025-07-15"}, "batch_size": 100, "max_parallel_downloads": 8,
        "enable_batch_mode": True, "enable_resume": True, "s5cmd_extra_args": ["--no-sign-request", "--retry-count=3"],
    },
    "Guide: Market-Specific Collection": {
        **_HEAD, "output_directory": "output/spot_only", "markets": ["spot"], "symbols": ["BTCUSDT", "ETHUSDT"],
        "data_types": ["klines", "trades", "bookDepth"], "intervals": {"klines": ["1m", "1h"], "bookDepth": ["100ms"]},
        "date_range": _DAY,
    },
    # -- the README (templates without the workflow's own keys) ----------------------------------------------
    "README: Multi-Market Collection": {
        "markets": ["spot", "futures_um", "futures_cm", "options"], "symbols": _FOUR_MARKETS,
        "data_types": ["klines", "trades", "fundingRate", "BVOLIndex"], "batch_size": 100, "max_parallel_downloads": 8,
    },
    "README: Multi-Market Research Dataset": {
        "markets": ["spot", "futures_um", "futures_cm", "options"], "symbols": _FOUR_MARKETS,
        "data_types": ["klines", "trades", "fundingRate", "liquidationSnapshot", "BVOLIndex"], "batch_size": 100,
        "max_parallel_downloads": 8,
    },
    "README: Research Dataset": {
        "markets": ["spot", "futures_um", "futures_cm", "options"],
        "symbols": {
            "spot": ["BTCUSDT", "ETHUSDT", "ADAUSDT"], "futures_um": ["BTCUSDT", "ETHUSDT", "ADAUSDT"],
            "futures_cm": ["BTCUSD_PERP", "ETHUSD_PERP"], "options": ["BTC", "ETH"],
        },
        "data_types": ["klines", "trades", "fundingRate", "liquidationSnapshot", "BVOLIndex", "metrics", "bookDepth"],
        "intervals": {"klines": ["1m", "5m", "1h", "1d"], "BVOLIndex": ["1h", "1d"], "bookDepth": ["1000ms"]},
    },
}  # fmt: skip

INVALID = {
    **_HEAD, "matrix_path": "nonexistent_matrix.json", "output_directory": "output/test", "markets": ["invalid_market"],
    "symbols": ["BTCUSDT"], "data_types": ["invalid_type"],
}  # fmt: skip
"""The examples page's invalid configuration (its test expects an exception)."""
