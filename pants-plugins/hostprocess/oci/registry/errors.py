"""How registry operations fail: for good, worth another try, or abandoned on purpose."""

from __future__ import annotations

from collections.abc import Sequence


class RegistryError(Exception):
    """A request failed for good; the message names the registry and its error codes."""

    def __init__(
        self, message: str, *, status: int | None = None, codes: Sequence[str] = ()
    ) -> None:
        super().__init__(message)
        self.status = status
        self.codes = tuple(codes)


class TransientError(Exception):
    """A failure worth retrying; `transport` marks ones below HTTP (no response at all)."""

    def __init__(
        self,
        message: str,
        *,
        transport: bool = False,
        retry_after: float | None = None,
        status: int | None = None,
        codes: Sequence[str] = (),
    ) -> None:
        super().__init__(message)
        self.transport = transport
        self.retry_after = retry_after
        self.status = status
        self.codes = tuple(codes)


class Cancelled(Exception):
    """An operation given up because a sibling operation failed: never the error reported."""
