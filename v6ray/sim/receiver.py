"""Reading a client's messages the way IB counts them: at arrival, not when we get to them.

IB counts the 50 messages/s rule (error 100) on its own server, which reads its socket
promptly. The simulator shares the client's machine: a busy event loop (an option chain
being priced, a stats call) or a starved process would read a second and a half of a
well-paced client's traffic in one gulp and count it as one burst, an error 100 that the
client never caused and real IB would never send.

So each session's socket is read by a thread of its own, blocked in ``poll`` (no GIL held)
and woken by the kernel as data arrives, and each read is stamped with the kernel's own
receive time (``SO_TIMESTAMPNS``, Linux; ``tcp(7)``/``socket(7)``): the time the last
segment of that read reached the socket, which is no later than when we read it. Where the
kernel gives no timestamp the stamp is the read time in this thread. Messages then go to the
simulator's event loop, in order, with their stamps.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import socket
import struct
import threading
import time
from collections.abc import Callable

from v6ray.sim import protocol as p

# <asm-generic/socket.h>: SO_TIMESTAMPNS (SO_TIMESTAMPNS_OLD) = 35, delivered as a
# SCM_TIMESTAMPNS control message of struct timespec {time_t tv_sec; long tv_nsec}.
# Python's socket module does not export it.
_SO_TIMESTAMPNS = 35
_TIMESPEC = struct.Struct("@qq")
_READ_BYTES = 65536
_POLL_MS = 200  # how often a blocked reader looks whether its session was closed

# Called on the loop with each read's messages and its stamp (time.monotonic()'s clock).
Deliver = Callable[[list[list[str]], float], None]


def _enable_kernel_stamps(sock: socket.socket) -> bool:
    if not hasattr(socket, "CMSG_SPACE") or os.uname().sysname != "Linux":
        return False
    try:
        sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
    except OSError:
        return False
    return True


def _kernel_stamp(ancillary: list[tuple[int, int, bytes]]) -> float | None:
    """The read's kernel receive time on time.monotonic()'s clock, if the kernel gave one."""
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPNS and len(data) >= _TIMESPEC.size:
            seconds, nanos = _TIMESPEC.unpack_from(data)
            # CLOCK_REALTIME -> monotonic: the offset read now is exact to microseconds.
            return seconds + nanos * 1e-9 - time.time() + time.monotonic()
    return None


class FrameReceiver:
    """Reads one connected socket in its own thread; hands messages to ``loop``.

    The socket stays the asyncio transport's for writing (its reading must be paused before
    this starts). The thread reads a duplicate of the descriptor, so closing the transport
    never leaves it polling a number the process has reused; ``stop`` shuts the socket down,
    which the peer sees as the close.
    """

    def __init__(self, sock: socket.socket, loop: asyncio.AbstractEventLoop,
                 deliver: Deliver, on_end: Callable[[], None], name: str) -> None:
        self._sock = socket.socket(fileno=os.dup(sock.fileno()))
        self._loop = loop
        self._deliver = deliver
        self._on_end = on_end
        self._stopped = threading.Event()
        self._closing = threading.Lock()  # shutdown never races the close (a reused fd)
        self.kernel_stamps = _enable_kernel_stamps(self._sock)
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> FrameReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop reading and shut the connection down (idempotent, any thread)."""
        self._stopped.set()
        with self._closing, contextlib.suppress(OSError):
            if self._sock.fileno() >= 0:
                self._sock.shutdown(socket.SHUT_RDWR)

    def peer_closed(self) -> bool:
        """Whether the client has closed its end, though this thread may not have told the
        loop yet (a peek at the socket: nothing is consumed)."""
        with self._closing:
            if self._sock.fileno() < 0:
                return True
            try:
                return self._sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
            except BlockingIOError:
                return False  # open, nothing to read
            except OSError:
                return True

    def _run(self) -> None:
        frames = p.FrameReader()
        poller = select.poll()
        poller.register(self._sock.fileno(), select.POLLIN | select.POLLPRI)
        control = socket.CMSG_SPACE(_TIMESPEC.size) if self.kernel_stamps else 0
        try:
            while not self._stopped.is_set():
                if not poller.poll(_POLL_MS):
                    continue
                try:
                    data, ancillary, _, _ = self._sock.recvmsg(_READ_BYTES, control)
                except (BlockingIOError, InterruptedError):
                    continue
                if not data:
                    break
                messages = frames.feed(data)
                if messages:
                    stamp = _kernel_stamp(ancillary) if ancillary else None
                    self._call(self._deliver, messages, stamp or time.monotonic())
        except (OSError, p.ProtocolError):
            pass
        finally:
            with self._closing:
                self._sock.close()
            self._call(self._on_end)

    def _call(self, callback: Callable, *args) -> None:
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody is listening
            self._loop.call_soon_threadsafe(callback, *args)
