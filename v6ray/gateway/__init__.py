"""The IB gateway: the one actor that holds the only IB connection of v6ray.

Pure decision modules (``pacing``, ``breaker``, ``costs``, ``ib_errors``, ``parsing``) are
unit-tested without Ray or sockets; ``actor`` and ``connection`` are the thin I/O shell.
Only this package imports ``ib_async``.
"""
