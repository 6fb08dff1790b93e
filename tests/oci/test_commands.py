"""Tests for the typed commands of the helper programs: the argv the rules write is the
command the program reads.

Every command goes through `to_argv()`, its program's own parser and `from_args()` and must
come back equal, with optional, switched and repeated flags both set and unset.
"""
from __future__ import annotations

import re
from typing import List, Set, Type

import pytest

from hostprocess.commandline import schema
from hostprocess.dockerfile.commands import PROGRAM as PARSER_PROGRAM
from hostprocess.dockerfile.commands import FetchCommand, ParseCommand
from hostprocess.oci.commands import (
    PROGRAM,
    ArchiveCommand,
    BaseLayerCommand,
    DeadlineOptions,
    DocumentsCommand,
    LayerCommand,
    LayerOptions,
    PullCommand,
    PushCommand,
    WriteIfPushedCommand,
)
from hostprocess.oci.types import Compression
from hostprocess.structure_test.commands import PROGRAM as RUNNER_PROGRAM
from hostprocess.structure_test.commands import ImageTestCommand

PROGRAMS = (PROGRAM, PARSER_PROGRAM, RUNNER_PROGRAM)

COMMAND_VALUES: List[schema.Command] = [
    BaseLayerCommand("cc0-legalcode.txt", LayerOptions(out="out", level=6)),
    BaseLayerCommand(
        "cc0.txt", LayerOptions(out="o", level=0, compression=Compression.NONE, mtime=9, threads=1)
    ),
    LayerCommand("root", LayerOptions(out="out", level=3, compression=Compression.ZSTD)),
    LayerCommand("tree dir", LayerOptions(out="out", level=1, mtime=86400, threads=4)),
    ArchiveCommand(layout="layout", format="oci-archive", out="image.oci.tar"),
    ArchiveCommand(
        layout="layout",
        format="docker-archive",
        out="image.docker.tar",
        repo_tag=("example/hello:v1", "example/hello:latest", "example/hello:v1"),
        mtime=7,
    ),
    PullCommand(
        reference="registry.example/app@sha256:" + "ab" * 32, architecture="amd64", out="out"
    ),
    PullCommand(
        reference="localhost:5000/app@sha256:" + "cd" * 32,
        architecture="arm64",
        out="out",
        insecure=True,
        ca_cert="certs/ca.pem",
        deadlines=DeadlineOptions(timeout=2.5, min_throughput=1024),
    ),
    PushCommand(layout="layout", registry="registry.example", repository="team/app"),
    PushCommand(
        layout="layout",
        registry="localhost:5000",
        repository="team/app",
        tag=("v1", "latest"),
        insecure=True,
        ca_cert="/etc/ssl/ca.pem",
        username_env="REG_USER",
        password_env="REG_PASSWORD",
        record="/work/dist/app.publish.json",
        failure_marker="/work/dist/app.localhost-5000.push-failed",
        follows=True,
        mount_from="team/base",
        deadlines=DeadlineOptions(timeout=90.0, min_throughput=65536),
        attach=("spdx=documents/app.spdx.json", "provenance=documents/app.provenance.json"),
        signing_key="/work/keys/cosign.key",
        signing_key_password_env="COSIGN_PASSWORD",
        public_key_out="/work/dist/app.localhost-5000.pub",
    ),
    DocumentsCommand(request="request.json", spdx="app.spdx.json"),
    DocumentsCommand(
        request="request.json",
        spdx="app.spdx.json",
        cyclonedx="app.cdx.json",
        provenance="app.provenance.json",
    ),
    WriteIfPushedCommand(
        reference="registry.example/team/app@sha256:" + "ef" * 32,
        digest="sha256:" + "ef" * 32,
        record="/work/dist/app.publish.json",
        file="deploy/app.yaml",
        dest="/work/dist/deploy/app.yaml",
    ),
    ParseCommand(dockerfile="examples/hello/Dockerfile"),
    FetchCommand(url="https://example.com/a b.txt", sha256="ab" * 32, out="fetched"),
    ImageTestCommand(spec="spec.json", archive="hello.docker.tar", junit="examples.hello.xml"),
]


def _program(command: Type[schema.Command]) -> schema.Program:
    """The program that runs `command`."""
    (program,) = (p for p in PROGRAMS if command in p.commands)
    return program


@pytest.mark.parametrize("command", COMMAND_VALUES, ids=lambda c: " ".join(c.to_argv()))
def test_argv_round_trip(command: schema.Command) -> None:
    program = _program(type(command))
    namespace = program.parser().parse_args(command.to_argv())
    assert type(command).from_args(namespace) == command
    assert program.parse(command.to_argv()) == command


def _flags_in_help(command: Type[schema.Command], capsys: pytest.CaptureFixture) -> Set[str]:
    with pytest.raises(SystemExit):
        _program(command).parser().parse_args([command.name, "--help"])
    return set(re.findall(r"--[a-z][a-z0-9-]*", capsys.readouterr().out)) - {"--help"}


def test_every_flag_is_covered(capsys: pytest.CaptureFixture) -> None:
    """The round trips above write every flag each command's help lists."""
    commands = {command for program in PROGRAMS for command in program.commands}
    assert {type(c) for c in COMMAND_VALUES} == commands
    for command in commands:
        written = {
            word
            for value in COMMAND_VALUES
            if type(value) is command
            for word in value.to_argv()
            if word.startswith("--")
        }
        assert written == _flags_in_help(command, capsys), command.name


def test_unset_options_are_not_written() -> None:
    pull = PullCommand(reference="r.example/a@sha256:" + "ab" * 32, architecture="amd64", out="o")
    assert pull.to_argv() == (
        "pull",
        "--reference",
        "r.example/a@sha256:" + "ab" * 32,
        "--out",
        "o",
        "--architecture",
        "amd64",
    )
    # An image under test is pulled for any platform: no architecture, no flag.
    for_test = PullCommand(reference="r.example/a@sha256:" + "ab" * 32, out="o")
    assert for_test.to_argv() == (
        "pull",
        "--reference",
        "r.example/a@sha256:" + "ab" * 32,
        "--out",
        "o",
    )
    assert PROGRAM.parse(for_test.to_argv()) == for_test


def test_defaults_match_the_command_line() -> None:
    """Flags left out on the command line mean what the dataclass defaults say."""
    assert PROGRAM.parse(["layer", "--root", "r", "--out", "o", "--level", "1"]) == LayerCommand(
        "r", LayerOptions(out="o", level=1, compression=Compression.GZIP, mtime=0, threads=None)
    )
    assert PROGRAM.parse(["archive", "--layout", "l", "--format", "oci-archive", "--out", "x"]) == (
        ArchiveCommand(layout="l", format="oci-archive", out="x", repo_tag=(), mtime=0)
    )


@pytest.mark.parametrize(
    "argv, flag",
    [
        (["archive", "--layout", "l", "--format", "tar", "--out", "x"], "--format"),
        (
            ["layer", "--root", "r", "--out", "o", "--level", "1", "--compression", "xz"],
            "--compression",
        ),
        (["layer", "--root", "r", "--out", "o", "--level", "high"], "--level"),
        (["pull", "--reference", "r", "--architecture", "amd64"], "--out"),
    ],
)
def test_bad_argv_is_a_usage_error(
    argv: List[str], flag: str, capsys: pytest.CaptureFixture
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        PROGRAM.parse(argv)
    assert exit_info.value.code == 2
    assert flag in capsys.readouterr().err


def test_outputs_are_what_pants_captures() -> None:
    layer = LayerCommand("root", LayerOptions(out="out", level=1))
    archive = ArchiveCommand(layout="layout", format="oci-archive", out="image.tar")
    push = PushCommand(layout="layout", registry="r.example", repository="a")
    assert (layer.output_directories(), layer.output_files()) == (("out",), ())
    assert (archive.output_directories(), archive.output_files()) == ((), ("image.tar",))
    assert (push.output_directories(), push.output_files()) == ((), ())
