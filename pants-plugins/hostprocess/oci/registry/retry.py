"""Retrying transient failures: the backoff policy, `Retry-After`, and the loop that applies them."""

from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Callable, TypeVar

from hostprocess.oci.registry.errors import Cancelled, RegistryError, TransientError

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class Retry:
    """How long one operation may keep retrying transient failures, and the backoff shape."""

    total_seconds: float = 120.0
    first_delay: float = 0.5
    max_delay: float = 10.0

    def delay(self, failures: int) -> float:
        """Exponential backoff with jitter, so clients that failed together don't retry together."""
        ceiling = min(self.max_delay, self.first_delay * 2.0 ** (failures - 1))
        return ceiling * random.uniform(0.5, 1.0)


def retry_after(value: str | None) -> float | None:
    """Retry-After in seconds: a number of seconds or an HTTP date."""
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def retrying(
    policy: Retry,
    what: str,
    attempt: Callable[[int], T],
    *,
    stop: threading.Event | None = None,
) -> T:
    """Run `attempt(failures so far)`, retrying transient failures within the time budget.

    `what` names the operation and the registry (`upload blob sha256:.. at host`). Setting
    `stop` ends the waiting between tries with `Cancelled`.
    """
    deadline = time.monotonic() + policy.total_seconds
    failures = 0
    while True:
        try:
            return attempt(failures)
        except TransientError as error:
            failures += 1
            # A Retry-After is a floor: "0" must not turn backoff into a busy loop.
            delay = max(error.retry_after or 0.0, policy.delay(failures))
            if time.monotonic() + delay > deadline:
                raise RegistryError(
                    f"{what} failed after {failures} attempts: {error}",
                    status=error.status,
                    codes=error.codes,
                ) from None
            # Visible by default: a push stalled on a sick registry must say why it waits.
            log.warning("%s: %s; retrying in %.1f s", what, error, delay)
            if stop is None:
                time.sleep(delay)
            elif stop.wait(delay):
                raise Cancelled(what) from None
