"""How long one request to a registry may take, and the watchdog that enforces it.

A socket timeout bounds each read, not the request: a server that sends one byte every few
seconds never trips it. So every request gets a deadline of its own (a fixed allowance, plus
time for the blob it carries at a minimum throughput), and a watchdog shuts the connection
down when the deadline passes, whatever the request is doing at that moment: connecting,
sending, waiting for headers or reading the body.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from types import TracebackType

DEFAULT_REQUEST_SECONDS = 60.0
DEFAULT_MIN_THROUGHPUT = 64 << 10  # bytes per second: 512 kbit/s, a slow WAN link
_POLL_SECONDS = 0.05  # how soon the watchdog retries when the socket is not open yet


@dataclass(frozen=True)
class Deadlines:
    """A request's allowance: `request_seconds` for everything but a streamed blob body,
    which gets `size / min_throughput` seconds more."""

    request_seconds: float = DEFAULT_REQUEST_SECONDS
    min_throughput: int = DEFAULT_MIN_THROUGHPUT

    def __post_init__(self) -> None:
        if self.request_seconds <= 0:
            raise ValueError(f"the request timeout must be positive, not {self.request_seconds}")
        if self.min_throughput <= 0:
            raise ValueError(f"the minimum throughput must be positive, not {self.min_throughput}")

    def allowance(self, streamed_bytes: int) -> float:
        """Seconds a request streaming `streamed_bytes` of blob (either way) may take."""
        return self.request_seconds + streamed_bytes / self.min_throughput


class Watchdog:
    """Shuts the guarded socket down once `seconds` have passed, unless the `with` block
    ended first.

    The request hands over its socket with `guard` as soon as it is connected (http.client
    drops its own reference once a response owns the connection). Should the deadline pass
    before that, the watchdog waits for the socket and shuts it down at once. `expired` tells
    the request's error handling why it failed.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._deadline = time.monotonic() + seconds
        self._sock: socket.socket | None = None
        self._done = threading.Event()
        self._expired = threading.Event()
        self._thread = threading.Thread(
            target=self._watch, name="hostprocess-deadline", daemon=True
        )

    @property
    def expired(self) -> bool:
        return self._expired.is_set()

    def guard(self, sock: socket.socket | None) -> None:
        self._sock = sock

    def __enter__(self) -> Watchdog:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._done.set()
        self._thread.join()

    def _watch(self) -> None:
        if self._done.wait(max(0.0, self._deadline - time.monotonic())):
            return
        self._expired.set()
        while not self._done.is_set():
            if self._sock is not None:
                try:
                    self._sock.shutdown(socket.SHUT_RDWR)  # wakes a blocked send or recv at once
                except OSError:
                    pass  # already closed: the request is ending anyway
                return
            self._done.wait(_POLL_SECONDS)
