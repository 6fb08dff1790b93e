"""The image tool's commands as typed values: the one schema of its command line.

The rules build a command and run its `to_argv()`; the tool parses argv with `PROGRAM` and
gets the same command back (`commandline/schema.py` derives both from the fields below).

Paths in a command are as the tool process sees them: relative to its working directory
(the sandbox root, where the caller's input digest is materialised) unless absolute.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Type

from hostprocess.commandline import schema
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
# Where the rules put an image's SBOMs and provenance for the push that attaches them.
TOOL_DOCUMENTS = "documents"
# The metadata files under TOOL_OUT: a layer's description, a pulled image's manifest/config.
LAYER_JSON = "layer.json"
MANIFEST_FILE = "manifest.json"
CONFIG_FILE = "config.json"
ARCHIVE_FORMATS = ("oci-archive", "docker-archive")


class Command(schema.Command):
    """An image tool command."""

    # The small files it writes beside `blobs/` in its output directory, if it has one.
    metadata: ClassVar[tuple[str, ...]] = ()


@dataclass(frozen=True)
class LayerOptions:
    """How a layer is written: every field is part of its process's cache key.

    `threads` does not change the output (by default, every core); the rules leave it out.
    """

    out: str = schema.value("output directory: blobs/sha256/<hex>, layer.json and files.json")
    level: int = schema.value("compression level", parse=int)
    compression: Compression = schema.value(
        "blob compression",
        parse=Compression,
        choices=[c.value for c in Compression],
        default=Compression.GZIP,
    )
    mtime: int = schema.value("the time stamp of every entry", parse=int, default=0)
    threads: int | None = schema.value("does not change the output", parse=int, default=None)

    def output_directories(self) -> tuple[str, ...]:
        return (self.out,)


@dataclass(frozen=True)
class BaseLayerCommand(Command):
    name: ClassVar[str] = "base-layer"
    help: ClassVar[str] = "write the built-in base layer"
    metadata: ClassVar[tuple[str, ...]] = (LAYER_JSON,)

    cc0: str = schema.value("the CC0 1.0 legal code text")
    layer: LayerOptions = schema.group(LayerOptions)

    def output_directories(self) -> tuple[str, ...]:
        return self.layer.output_directories()


@dataclass(frozen=True)
class LayerCommand(Command):
    name: ClassVar[str] = "layer"
    help: ClassVar[str] = "write a Windows layer from a directory tree"
    metadata: ClassVar[tuple[str, ...]] = (LAYER_JSON,)

    root: str = schema.value("the tree; paths map to C:\\ (a missing tree is an empty layer)")
    layer: LayerOptions = schema.group(LayerOptions)

    def output_directories(self) -> tuple[str, ...]:
        return self.layer.output_directories()


@dataclass(frozen=True)
class ArchiveCommand(Command):
    name: ClassVar[str] = "archive"
    help: ClassVar[str] = "tar an OCI layout"

    layout: str = schema.value("the OCI layout directory")
    format: str = schema.value("the archive format", choices=ARCHIVE_FORMATS)
    out: str = schema.value("the archive file")
    repo_tag: tuple[str, ...] = schema.repeated("a name:tag for a docker-archive's manifest.json")
    mtime: int = schema.value("the time stamp of every entry", parse=int, default=0)

    def output_files(self) -> tuple[str, ...]:
        return (self.out,)


@dataclass(frozen=True)
class DeadlineOptions:
    """How long each request to a registry may take (see `oci/registry/deadline.py`);
    unset values take the defaults there."""

    timeout: float | None = schema.value(
        "seconds a request may take, besides streaming a blob", parse=float, default=None
    )
    min_throughput: int | None = schema.value(
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
    help: ClassVar[str] = "pull an image pinned by digest (a base, or an image to test)"
    metadata: ClassVar[tuple[str, ...]] = (MANIFEST_FILE, CONFIG_FILE)

    reference: str = schema.value("registry/repository@sha256:...")
    out: str = schema.value("output directory: blobs/sha256/<hex>, manifest.json, config.json")
    architecture: str | None = schema.value(
        "the architecture a base must be for (unset: any platform, for an image under test)",
        default=None,
    )
    insecure: bool = schema.switch("allow plain HTTP and unverified TLS")
    ca_cert: str | None = schema.value("a PEM bundle to trust besides the system's", default=None)
    deadlines: DeadlineOptions = schema.group(DeadlineOptions, optional=True)

    def output_directories(self) -> tuple[str, ...]:
        return (self.out,)


@dataclass(frozen=True)
class PushCommand(Command):
    """Credentials and the signing key's password come from the environment (`*_env` name
    the variables), never from argv. `ca_cert` is passed as `PullCommand` says; `record`,
    `signing_key` and `public_key_out` are in the workspace, so they are absolute: the push
    runs uncached, and what it writes outlives it. A registry's first step (not `follows`)
    attaches the documents and signatures."""

    name: ClassVar[str] = "push"
    help: ClassVar[str] = "push an OCI layout's image to a registry"

    layout: str = schema.value("the OCI layout directory")
    registry: str = schema.value("host[:port]")
    repository: str = schema.value("the repository to push to")
    tag: tuple[str, ...] = schema.repeated("a tag to point at the image")
    insecure: bool = schema.switch("allow plain HTTP and unverified TLS")
    ca_cert: str | None = schema.value("a PEM bundle to trust besides the system's", default=None)
    username_env: str | None = schema.value("the variable holding the username", default=None)
    password_env: str | None = schema.value("the variable holding the password", default=None)
    record: str | None = schema.value("a JSON file of reference -> digest to update", default=None)
    failure_marker: str | None = schema.value(
        "a file the first push of an image to the registry writes when the image did not get "
        "there, and removes when it did; a push with --follows then stops at once",
        default=None,
    )
    follows: bool = schema.switch(
        "a later tag's step, after the first push of the same image: move the tags only"
    )
    mount_from: str | None = schema.value(
        "a repository on the registry that may hold the blobs", default=None
    )
    deadlines: DeadlineOptions = schema.group(DeadlineOptions, optional=True)
    attach: tuple[str, ...] = schema.repeated(
        "after the image, attach a document as a referrer: kind=path (spdx, cyclonedx, provenance)"
    )
    signing_key: str | None = schema.value(
        "sign the image and each attached document with this private key (checked first)",
        default=None,
    )
    signing_key_password_env: str | None = schema.value(
        "the variable holding the signing key's password", default=None
    )
    public_key_out: str | None = schema.value(
        "write the signing key's public key (PEM) here, for verifiers", default=None
    )


@dataclass(frozen=True)
class WriteIfPushedCommand(Command):
    """A DaemonSet's publish step: its manifest lands in `dest` only once the push `record`
    (see `publish_record`) shows the digest it pins. `record` and `dest` are in the workspace,
    so they are absolute."""

    name: ClassVar[str] = "write-if-pushed"
    help: ClassVar[str] = "copy a file to its destination once a push record shows a reference"

    reference: str = schema.value("the pinned reference, registry/repository@digest")
    digest: str = schema.value("the digest the record must show for the reference")
    record: str = schema.value("the JSON file of reference -> digest that push commands update")
    file: str = schema.value("the file to copy")
    dest: str = schema.value("where to write it, atomically")


@dataclass(frozen=True)
class DocumentsCommand(Command):
    """Paths are relative to the sandbox; `request` names each layer's files.json and
    origins.json (see `attest/request.py`). Each document is written only if asked for."""

    name: ClassVar[str] = "documents"
    help: ClassVar[str] = "write an image's SBOMs and build provenance"

    request: str = schema.value("the request JSON: the image, its base, its layers' file lists")
    spdx: str | None = schema.value("write the SPDX 2.3 JSON SBOM here", default=None)
    cyclonedx: str | None = schema.value("write the CycloneDX 1.6 JSON SBOM here", default=None)
    provenance: str | None = schema.value("write the SLSA v1 provenance here", default=None)

    def output_files(self) -> tuple[str, ...]:
        return tuple(path for path in (self.spdx, self.cyclonedx, self.provenance) if path)


COMMANDS: tuple[Type[Command], ...] = (
    BaseLayerCommand,
    LayerCommand,
    ArchiveCommand,
    PullCommand,
    PushCommand,
    WriteIfPushedCommand,
    DocumentsCommand,
)


PROGRAM = schema.Program(
    "hostprocess-tool",
    (
        "The commands Pants runs in its sandbox to write layers and archives, "
        "pull bases and push images."
    ),
    COMMANDS,
)
