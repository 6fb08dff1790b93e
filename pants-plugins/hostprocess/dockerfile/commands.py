"""The Dockerfile parser's commands as typed values (see `commandline/schema.py`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from hostprocess.commandline import schema


@dataclass(frozen=True)
class ParseCommand(schema.Command):
    name: ClassVar[str] = "parse"
    help: ClassVar[str] = "print a Dockerfile's instructions as JSON"

    dockerfile: str = schema.value("the Dockerfile")


@dataclass(frozen=True)
class FetchCommand(schema.Command):
    name: ClassVar[str] = "fetch"
    help: ClassVar[str] = "download a URL and check its SHA-256"

    url: str = schema.value("the URL")
    sha256: str = schema.value("the hex digest its content must have")
    out: str = schema.value("where to write it")

    def output_files(self) -> tuple[str, ...]:
        return (self.out,)


PROGRAM = schema.Program(
    "hostprocess-dockerfile",
    "Parses Dockerfiles and fetches ADD URLs.",
    (ParseCommand, FetchCommand),
)
