"""What a push reports as it goes, for the caller to print."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Progress:
    """One step of a push, for the caller to print: `event` is e.g. `blob-uploading`."""

    event: str
    subject: str
    done: int = 0
    total: int = 0

    def __str__(self) -> str:
        amount = f" {self.done}/{self.total} bytes" if self.total else ""
        return f"{self.event} {self.subject}{amount}"


ProgressCallback = Callable[[Progress], None]


def one_at_a_time(callback: ProgressCallback) -> ProgressCallback:
    """`callback`, never entered by two upload threads at once (so printed lines never mix)."""
    lock = threading.Lock()

    def report(progress: Progress) -> None:
        with lock:
            callback(progress)

    return report
