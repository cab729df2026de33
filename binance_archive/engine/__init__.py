"""The download engine, a room for each job; :class:`~binance_archive.Archive` drives it.

- :mod:`.resolve`: a user's selections turned into a plan, a stream of lazy file iterators, with discovery
  (:mod:`.discovery`) where symbols or start dates are left out;
- :mod:`.run`: one run: the plan consumed by workers, the fallback queue, stopping on a full
  disk, events and the report;
- :mod:`.transfer`: one file: sidecar and zip fetched at once, verified, committed, the sidecar stored last;
- :mod:`.receive`: the ways a body is received, hashed and handed to its writer;
- :mod:`.refresh`: whether a stored file is still what the archive has;
- :mod:`.stored`: what is stored already, file by file or folder by folder;
- :mod:`.retry`: the retry policy, and the one helper that applies it;
- :mod:`.pace`: how many files are in flight, where the run finds the level by measuring.

The engine sees backends only through the contract of :mod:`binance_archive.backends`, never a concrete one.
"""
