"""The producers' side: ``v6ray.connect()`` and the ``Client`` (``api``), and the
coalescer that batches many threads' submits into one call to the queue."""
