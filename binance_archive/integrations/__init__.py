"""Running the library on engines of other projects: :mod:`.dask` (a Dask cluster, ``[dask]``) and :mod:`.prefect`
(a Prefect flow, ``[prefect]``).

Each module imports its engine when it is imported itself, and says what to install where it is missing;
``import binance_archive`` imports neither.
"""
