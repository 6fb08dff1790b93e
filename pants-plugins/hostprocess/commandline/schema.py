"""Commands as typed values: one schema for the argv a rule writes and the flags a program reads.

A program's commands are frozen dataclasses subclassing `Command`; `to_argv()` and
`from_args()` are both derived from their fields (a field `repo_tag` is the flag
`--repo-tag`), so the two sides cannot drift apart. Pure: no Pants imports, so every helper
program ships it.
"""

from __future__ import annotations

import argparse
from dataclasses import MISSING, Field, dataclass, field, fields
from enum import Enum
from typing import Any, Callable, ClassVar, Sequence, Type, TypeVar

_KIND = "kind"  # field metadata: how a field maps to flags (see the helpers below)


def value(
    help: str,
    *,
    parse: Callable[[str], Any] = str,
    choices: Sequence[str] | None = None,
    default: Any = MISSING,
) -> Any:
    """`--flag VALUE`; required unless it has a default."""
    metadata = {_KIND: "value", "help": help, "parse": parse, "choices": choices}
    return field(default=default, metadata=metadata)


def switch(help: str) -> Any:
    """`--flag` when true, absent when false."""
    return field(default=False, metadata={_KIND: "switch", "help": help})


def repeated(help: str) -> Any:
    """`--flag VALUE` once per item, in order."""
    return field(default=(), metadata={_KIND: "repeated", "help": help})


def group(options: type, *, optional: bool = False) -> Any:
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
    """What every command shares: its name on the command line, and the conversions."""

    name: ClassVar[str]
    help: ClassVar[str]

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
class Program:
    """A helper program's command line: its name, what it does, and its commands."""

    prog: str
    description: str
    commands: tuple[Type[Command], ...]

    def parser(self) -> argparse.ArgumentParser:
        """One subcommand per command type."""
        top = argparse.ArgumentParser(prog=self.prog, description=self.description)
        subparsers = top.add_subparsers(dest="command", required=True)
        for command in self.commands:
            sub = subparsers.add_parser(command.name, help=command.help)
            _add_arguments(sub, command)
            sub.set_defaults(command_type=command)
        return top

    def parse(self, argv: Sequence[str] | None) -> Command:
        """The command `argv` names; argparse exits with a usage error for a bad one."""
        namespace = self.parser().parse_args(argv)
        command_type: Type[Command] = namespace.command_type
        return command_type.from_args(namespace)
