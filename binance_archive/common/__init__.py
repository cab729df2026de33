"""What the built-in backends share, so that no transport imports a storage (or another transport) for it.

- :mod:`~binance_archive.common.staging`: the names of temporary files and staging folders, and the sweep
  that removes what a killed process left behind;
- :mod:`~binance_archive.common.urls`: URLs checked, and shown without their secrets;
- :mod:`~binance_archive.common.options`: options checked as they arrive from command lines and files;
- :mod:`~binance_archive.common.files`: small local files read whole;
- :mod:`~binance_archive.common.folders`: whether a local folder can hold a mirror (not a file; writable now);
- :mod:`~binance_archive.common.threads`: async work on an event loop of a worker thread, cancellable from another;
- :mod:`~binance_archive.common.aws`: AWS credentials found as the SDKs find them, for the S3 storage and the s5cmd
  transport, and a clear refusal before the first request when there are none.

Listing pages are built by :meth:`binance_archive.core.listing.ListingPage.of_entries` (no I/O: the core).
Standard library, attrs, the core and :mod:`binance_archive.errors` only.
"""
