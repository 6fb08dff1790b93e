"""The image tool's commands as typed values: the one schema of its command line.

The rules build a command and run its `to_argv()`; the tool parses argv with `parser()` and
gets the same command back with `from_args()`. Both directions are derived from the
dataclass fields below (a field `repo_tag` is the flag `--repo-tag`), so the argv Pants
writes and the flags the tool reads cannot drift apart.

Paths in a command are as the tool process sees them: relative to its working directory
(the sandbox root, where the caller's input digest is materialised) unless absolute.
"""

from __future__ import annotations

import argparse
from dataclasses import MISSING, Field, dataclass, field, fields
from enum import Enum
from typing import Any, Callable, ClassVar, Sequence, Type, TypeVar

from hostprocess.oci.registry.deadline import (
    DEFAULT_MIN_THROUGHPUT,
    DEFAULT_REQUEST_SECONDS,
    Deadlines,
)
from hostprocess.oci.types import Compression

# Where every command that writes blobs puts `blobs/sha256/<hex>` and its metadata files.
TOOL_OUT = "out"
# Where the rules put an image's OCI layout for the commands that read one.
TOOL_LAYOUT = "layout"
# The metadata files under TOOL_OUT: a layer's description, a pulled image's manifest/config.
LAYER_JSON = "layer.json"
MANIFEST_FILE = "manifest.json"
CONFIG_FILE = "config.json"
ARCHIVE_FORMATS = ("oci-archive", "docker-archive")
# An argv word Pants replaces with the number of cores it grants the process.
PANTS_CONCURRENCY = "{pants_concurrency}"

_KIND = "kind"  # field metadata: how a field maps to flags (see the helpers below)


def _value(
    help: str,
    *,
    parse: Callable[[str], Any] = str,
    choices: Sequence[str] | None = None,
    default: Any = MISSING,
) -> Any:
    """`--flag VALUE`; required unless it has a default."""
    metadata = {_KIND: "value", "help": help, "parse": parse, "choices": choices}
    return field(default=default, metadata=metadata)


def _switch(help: str) -> Any:
    """`--flag` when true, absent when false."""
    return field(default=False, metadata={_KIND: "switch", "help": help})


def _repeated(help: str) -> Any:
    """`--flag VALUE` once per item, in order."""
    return field(default=(), metadata={_KIND: "repeated", "help": help})


def _group(options: type, *, optional: bool = False) -> Any:
    """A dataclass of options shared by several commands, flattened into theirs; `optional`
    groups default to the dataclass's own defaults."""
    metadata = {_KIND: "group", "options": options}
    if optional:
        return field(default_factory=options, metadata=metadata)
    return field(metadata=metadata)


def _flag(spec: Field) -> str:
    return "--" + spec.name.replace("_", "-")


def _word(value: Any) -> str:
    return str(value.value if isinstance(value, Enum) else value)


def _argv(options: Any) -> list[str]:
    argv: list[str] = []
    for spec in fields(options):
        value, kind = getattr(options, spec.name), spec.metadata[_KIND]
        if kind == "group":
            argv += _argv(value)
        elif kind == "switch":
            argv += [_flag(spec)] if value else []
        elif kind == "repeated":
            argv += [word for item in value for word in (_flag(spec), _word(item))]
        elif value is not None:
            argv += [_flag(spec), _word(value)]
    return argv


def _add_arguments(parser: argparse.ArgumentParser, options: type) -> None:
    for spec in fields(options):
        kind, help = spec.metadata[_KIND], spec.metadata.get("help")
        if kind == "group":
            _add_arguments(parser, spec.metadata["options"])
        elif kind == "switch":
            parser.add_argument(_flag(spec), action="store_true", help=help)
        elif kind == "repeated":
            parser.add_argument(_flag(spec), action="append", default=[], help=help)
        else:
            choices = spec.metadata["choices"]
            parser.add_argument(
                _flag(spec),
                # With choices, argparse checks the words and `_from_namespace` parses them.
                type=spec.metadata["parse"] if choices is None else str,
                choices=choices,
                required=spec.default is MISSING,
                help=help,
            )


_Options = TypeVar("_Options")


def _from_namespace(options: Type[_Options], namespace: argparse.Namespace) -> _Options:
    """The dataclass `options` from parsed flags; absent optional flags keep its defaults."""
    values: dict[str, Any] = {}
    for spec in fields(options):  # type: ignore[arg-type]
        kind = spec.metadata[_KIND]
        if kind == "group":
            values[spec.name] = _from_namespace(spec.metadata["options"], namespace)
        elif kind == "repeated":
            values[spec.name] = tuple(getattr(namespace, spec.name))
        elif getattr(namespace, spec.name) is not None:
            value = getattr(namespace, spec.name)
            choices = spec.metadata.get("choices")
            values[spec.name] = value if choices is None else spec.metadata["parse"](value)
    return options(**values)


_Command = TypeVar("_Command", bound="Command")


class Command:
    """What every tool command shares: its name on the command line, and the conversions."""

    name: ClassVar[str]
    help: ClassVar[str]
    # The small files it writes beside `blobs/` in its output directory, if it has one.
    metadata: ClassVar[tuple[str, ...]] = ()

    def to_argv(self) -> tuple[str, ...]:
        return (self.name, *_argv(self))

    @classmethod
    def from_args(cls: Type[_Command], namespace: argparse.Namespace) -> _Command:
        return _from_namespace(cls, namespace)

    def output_files(self) -> tuple[str, ...]:
        """What a Pants process running this command must capture as files."""
        return ()

    def output_directories(self) -> tuple[str, ...]:
        """What a Pants process running this command must capture as directories."""
        return ()


@dataclass(frozen=True)
class LayerOptions:
    """How a layer is written: every field is part of its process's cache key.

    `threads` does not change the output; the rules pass PANTS_CONCURRENCY, which Pants
    turns into a number before the tool parses it.
    """

    out: str = _value("output directory: blobs/sha256/<hex> and layer.json")
    level: int = _value("compression level", parse=int)
    compression: Compression = _value(
        "blob compression",
        parse=Compression,
        choices=[c.value for c in Compression],
        default=Compression.GZIP,
    )
    mtime: int = _value("the time stamp of every entry", parse=int, default=0)
    threads: int | str | None = _value("does not change the output", parse=int, default=None)

    def output_directories(self) -> tuple[str, ...]:
        return (self.out,)


@dataclass(frozen=True)
class BaseLayerCommand(Command):
    name: ClassVar[str] = "base-layer"
    help: ClassVar[str] = "write the built-in base layer"
    metadata: ClassVar[tuple[str, ...]] = (LAYER_JSON,)

    cc0: str = _value("the CC0 1.0 legal code text")
    layer: LayerOptions = _group(LayerOptions)

    def output_directories(self) -> tuple[str, ...]:
        return self.layer.output_directories()


@dataclass(frozen=True)
class LayerCommand(Command):
    name: ClassVar[str] = "layer"
    help: ClassVar[str] = "write a Windows layer from a directory tree"
    metadata: ClassVar[tuple[str, ...]] = (LAYER_JSON,)

    root: str = _value("the tree; paths map to C:\\ (a missing tree is an empty layer)")
    layer: LayerOptions = _group(LayerOptions)

    def output_directories(self) -> tuple[str, ...]:
        return self.layer.output_directories()


@dataclass(frozen=True)
class ArchiveCommand(Command):
    name: ClassVar[str] = "archive"
    help: ClassVar[str] = "tar an OCI layout"

    layout: str = _value("the OCI layout directory")
    format: str = _value("the archive format", choices=ARCHIVE_FORMATS)
    out: str = _value("the archive file")
    repo_tag: tuple[str, ...] = _repeated("a name:tag for a docker-archive's manifest.json")
    mtime: int = _value("the time stamp of every entry", parse=int, default=0)

    def output_files(self) -> tuple[str, ...]:
        return (self.out,)


@dataclass(frozen=True)
class DeadlineOptions:
    """How long each request to a registry may take (see `oci/registry/deadline.py`);
    unset values take the defaults there."""

    timeout: float | None = _value(
        "seconds a request may take, besides streaming a blob", parse=float, default=None
    )
    min_throughput: int | None = _value(
        "bytes per second a blob must at least stream at", parse=int, default=None
    )

    def deadlines(self) -> Deadlines:
        return Deadlines(
            DEFAULT_REQUEST_SECONDS if self.timeout is None else self.timeout,
            DEFAULT_MIN_THROUGHPUT if self.min_throughput is None else self.min_throughput,
        )


@dataclass(frozen=True)
class PullCommand(Command):
    """`ca_cert` is the registry's setting as written: relative paths are relative to the
    build root, and the caller puts that file at the same path in the process's input
    digest (see `util_rules/tool.py`), so the sandboxed, cached process finds it."""

    name: ClassVar[str] = "pull"
    help: ClassVar[str] = "pull a base image pinned by digest"
    metadata: ClassVar[tuple[str, ...]] = (MANIFEST_FILE, CONFIG_FILE)

    reference: str = _value("registry/repository@sha256:...")
    architecture: str = _value("the architecture the image must be for")
    out: str = _value("output directory: blobs/sha256/<hex>, manifest.json, config.json")
    insecure: bool = _switch("allow plain HTTP and unverified TLS")
    ca_cert: str | None = _value("a PEM bundle to trust besides the system's", default=None)
    deadlines: DeadlineOptions = _group(DeadlineOptions, optional=True)

    def output_directories(self) -> tuple[str, ...]:
        return (self.out,)


@dataclass(frozen=True)
class PushCommand(Command):
    """Credentials come from the environment (`username_env`/`password_env` name the
    variables), never from argv. `ca_cert` is passed as `PullCommand` says; `record` is in
    the workspace, so it is absolute: the push runs uncached, and its record outlives it."""

    name: ClassVar[str] = "push"
    help: ClassVar[str] = "push an OCI layout's image to a registry"

    layout: str = _value("the OCI layout directory")
    registry: str = _value("host[:port]")
    repository: str = _value("the repository to push to")
    tag: tuple[str, ...] = _repeated("a tag to point at the image")
    insecure: bool = _switch("allow plain HTTP and unverified TLS")
    ca_cert: str | None = _value("a PEM bundle to trust besides the system's", default=None)
    username_env: str | None = _value("the variable holding the username", default=None)
    password_env: str | None = _value("the variable holding the password", default=None)
    record: str | None = _value("a JSON file of reference -> digest to update", default=None)
    failure_marker: str | None = _value(
        "a file the first push of an image to the registry writes when the image did not get "
        "there, and removes when it did; a push with --follows then stops at once",
        default=None,
    )
    follows: bool = _switch(
        "a later tag's step, after the first push of the same image: move the tags only"
    )
    mount_from: str | None = _value(
        "a repository on the registry that may hold the blobs", default=None
    )
    deadlines: DeadlineOptions = _group(DeadlineOptions, optional=True)


@dataclass(frozen=True)
class WriteIfPushedCommand(Command):
    """A DaemonSet's publish step: its manifest lands in `dest` only once the push `record`
    (see `publish_record`) shows the digest it pins. `record` and `dest` are in the workspace,
    so they are absolute."""

    name: ClassVar[str] = "write-if-pushed"
    help: ClassVar[str] = "copy a file to its destination once a push record shows a reference"

    reference: str = _value("the pinned reference, registry/repository@digest")
    digest: str = _value("the digest the record must show for the reference")
    record: str = _value("the JSON file of reference -> digest that push commands update")
    file: str = _value("the file to copy")
    dest: str = _value("where to write it, atomically")


COMMANDS: tuple[Type[Command], ...] = (
    BaseLayerCommand,
    LayerCommand,
    ArchiveCommand,
    PullCommand,
    PushCommand,
    WriteIfPushedCommand,
)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="hostprocess-tool",
        description="The commands Pants runs in its sandbox to write layers and archives, "
        "pull bases and push images.",
    )
    commands = top.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        sub = commands.add_parser(command.name, help=command.help)
        _add_arguments(sub, command)
        sub.set_defaults(command_type=command)
    return top


def parse(argv: Sequence[str] | None) -> Command:
    """The command `argv` names; argparse exits with a usage error for a bad one."""
    namespace = parser().parse_args(argv)
    command_type: Type[Command] = namespace.command_type
    return command_type.from_args(namespace)
