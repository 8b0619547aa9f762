"""The durable request queue: pure core, journal, and the Ray actor around them.

The journal is a plug point (``journal_api.RequestJournal``): ``journal.Journal`` is the
Delta table ``ib_requests`` a running queue writes, ``memory_journal.MemoryJournal`` its
in-memory twin for tests.
"""
