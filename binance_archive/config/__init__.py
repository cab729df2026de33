"""Run configurations: the selections and settings of a download, in code (:class:`RunConfig`) or in a TOML or
JSON file (:func:`load_config`).

Two schemas are read:

- this library's own (:mod:`.native`): top-level settings (``to``, ``transport``, ``concurrency``, ...), one or
  more ``[[selection]]`` tables, and ``[transport_options]`` / ``[storage_options]``;
- the schema of the collection workflow users migrate from (:mod:`.legacy`: ``workflow_type``, ``markets``,
  ``symbols``, ``data_types``, ``intervals``, ``date_range``, ``output_directory``, ``max_parallel_downloads``,
  ...), mapped onto the same settings; a run from it can report the result mapping that workflow returned
  (:func:`collection_result`, in :mod:`.result`).

Unknown keys and invalid values raise :class:`~binance_archive.errors.ConfigurationError` naming the key and
the valid choices. The command line, ``download --processes`` and the integrations all run a :class:`RunConfig`.
"""

from binance_archive.config.legacy import LEGACY_KEYS, WORKFLOW_TYPE
from binance_archive.config.native import NATIVE_KEYS, SELECTION_KEYS
from binance_archive.config.result import CollectionMetadata, collection_result, format_size
from binance_archive.config.run_config import RunConfig, load_config

__all__ = [
    "LEGACY_KEYS",
    "WORKFLOW_TYPE",
    "CollectionMetadata",
    "NATIVE_KEYS",
    "SELECTION_KEYS",
    "RunConfig",
    "collection_result",
    "format_size",
    "load_config",
]
