"""The image tool: what each command of `commands.py` does, run in Pants' sandboxes.

Each command reads only its arguments and declared input files and writes only under its
output path, so Pants can cache the result by digest and replay it on any machine.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from functools import singledispatch
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator, Mapping, Sequence

from hostprocess.commandline.schema import Command
from hostprocess.oci.attachments import Document, document_attachments
from hostprocess.oci.attest.cyclonedx import cyclonedx_document
from hostprocess.oci.attest.provenance import provenance_statement
from hostprocess.oci.attest.request import DocumentsRequest
from hostprocess.oci.attest.spdx import spdx_document
from hostprocess.oci.auth import CredentialsError, find_credentials, helper_env
from hostprocess.oci.commands import (
    LAYER_JSON,
    PROGRAM,
    ArchiveCommand,
    BaseLayerCommand,
    DocumentsCommand,
    LayerCommand,
    LayerOptions,
    PullCommand,
    PushCommand,
    WriteIfPushedCommand,
)
from hostprocess.oci.file_digests import FILES_JSON, FileDigest, files_json
from hostprocess.oci.image import Descriptor, Layer
from hostprocess.oci.layout import (
    blob_path,
    docker_manifest_json,
    fail_on_walk_error,
    read_manifest,
    write_archive,
)
from hostprocess.oci.layout_reader import read_layout_image
from hostprocess.oci.publish_record import (
    shows_pushed,
    update_attachments,
    update_record,
    write_atomically,
)
from hostprocess.oci.pull_base import pull_base
from hostprocess.oci.reference import Reference
from hostprocess.oci.registry import (
    Progress,
    PushResult,
    RegistryClient,
    RegistryError,
    TagsNotMoved,
)
from hostprocess.oci.windows.base import base_layer_files
from hostprocess.oci.windows.layer import LayerFile, write_layer

if TYPE_CHECKING:  # imported when a push signs (see oci/signatures.py)
    from hostprocess.oci.attest.keys import SigningKey


def tree_files(root: Path) -> Iterator[LayerFile]:
    """Every regular file under `root`, destination path relative to it."""
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True, onerror=fail_on_walk_error):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath, name)
            yield LayerFile(path.relative_to(root).as_posix(), path)


def _write_layer_dir(files: Sequence[LayerFile], options: LayerOptions, *, base: bool) -> None:
    """Write the blob under `out/blobs/sha256/` and its description to `out/layer.json`."""
    out = Path(options.out)
    out.mkdir(parents=True, exist_ok=True)
    fd, partial = tempfile.mkstemp(dir=out)
    file_digests: list[FileDigest] = []
    with os.fdopen(fd, "wb") as tmp:
        digests = write_layer(
            files,
            tmp,
            base=base,
            compression=options.compression,
            level=options.level,
            mtime=options.mtime,
            threads=options.threads,
            file_digests=file_digests,
        )
    blob = out / blob_path(digests.digest)
    blob.parent.mkdir(parents=True, exist_ok=True)
    os.replace(partial, blob)
    layer = Layer(digests.digest, digests.size, digests.diff_id, options.compression)
    (out / LAYER_JSON).write_text(json.dumps(layer.to_json(), sort_keys=True, indent=2) + "\n")
    (out / FILES_JSON).write_bytes(files_json(file_digests))


@singledispatch
def run(command: Command) -> None:
    raise NotImplementedError(f"no implementation of the {command.name} command")


@run.register
def base_layer(command: BaseLayerCommand) -> None:
    _write_layer_dir(base_layer_files(Path(command.cc0).read_bytes()), command.layer, base=True)


@run.register
def layer(command: LayerCommand) -> None:
    root = Path(command.root)
    files = list(tree_files(root)) if root.is_dir() else []
    _write_layer_dir(files, command.layer, base=False)


@run.register
def documents(command: DocumentsCommand) -> None:
    """Write the SBOMs and the provenance the command asks for, each atomically."""
    request = DocumentsRequest.read(Path(command.request))
    inventory, version = request.inventory, request.tool_version
    makers: dict[str | None, Callable[[], bytes]] = {
        command.spdx: lambda: spdx_document(inventory, version),
        command.cyclonedx: lambda: cyclonedx_document(inventory, version),
        command.provenance: lambda: provenance_statement(inventory, request.provenance, version),
    }
    for path, make in makers.items():
        if path:
            write_atomically(Path(path), make())


@run.register
def archive(command: ArchiveCommand) -> None:
    layout = Path(command.layout)
    extra = {}
    if command.format == "docker-archive":
        _, manifest = read_manifest(layout)
        extra["manifest.json"] = docker_manifest_json(json.loads(manifest), command.repo_tag)
    write_archive(layout, Path(command.out), extra_files=extra, mtime=command.mtime)


@run.register
def pull(command: PullCommand) -> None:
    """Pull a digest-pinned base; credentials come from Docker's config.json or helpers."""
    reference = Reference.parse(command.reference)
    if reference.registry is None:
        raise ValueError(f"{command.reference} names no registry host")
    client = RegistryClient(
        reference.registry,
        credentials=find_credentials(reference.registry, env=helper_env(os.environ)),
        insecure=command.insecure,
        ca_bundle=Path(command.ca_cert) if command.ca_cert else None,
        deadlines=command.deadlines.deadlines(),
    )
    pulled = pull_base(client, reference, command.architecture, Path(command.out))
    print(f"Pulled {pulled.reference}: {pulled.layers} layers, {pulled.bytes} bytes, verified.")


@run.register
def push(command: PushCommand) -> None:
    """Push the layout's image, unless an earlier step of this run could not get it there;
    then (a registry's first step) attach the documents and signatures.

    A registry's first push step of a run replaces the failure marker; a later tag's step
    (`follows`) finds it when the image did not get there, and stops at once instead of
    spending the retry budget on a registry that already failed. A signing key is loaded
    before anything is pushed, so a wrong password or key pushes nothing.
    """
    marker = Path(command.failure_marker) if command.failure_marker else None
    if marker is not None and command.follows and marker.is_file():
        _report_references({}, _tag_references(command))
        raise RegistryError(
            f"not pushed, as the first push of this image to {command.registry} failed: "
            f"{marker.read_text().strip()}"
        )
    if marker is not None and not command.follows:
        marker.unlink(missing_ok=True)
    key = None
    if command.signing_key and not command.follows:
        from hostprocess.oci.signatures import read_signing_key  # needs cryptography: see there

        key = read_signing_key(command.signing_key, command.signing_key_password_env)
    client = _client(command)
    try:
        _push(command, client)
    except TagsNotMoved:
        raise  # the image is there: later tags may still move
    except (RegistryError, CredentialsError) as error:
        if marker is not None and not command.follows:
            write_atomically(marker, f"{error}\n")
        raise
    if (command.attach or key) and not command.follows:
        _attach(command, client, key)


def _client(command: PushCommand) -> RegistryClient:
    """A client for the registry; credentials come from the environment, never from argv."""
    credentials = find_credentials(
        command.registry,
        username_env=command.username_env,
        password_env=command.password_env,
        env=helper_env(os.environ),
    )
    return RegistryClient(
        command.registry,
        credentials=credentials,
        insecure=command.insecure,
        ca_bundle=Path(command.ca_cert) if command.ca_cert else None,
        deadlines=command.deadlines.deadlines(),
        progress=_print_progress,
    )


def _push(command: PushCommand, client: RegistryClient) -> None:
    """Push the layout's image and report what moved."""
    start = time.monotonic()
    result = _push_reporting_failure(client, command)
    took = f"{time.monotonic() - start:.2f} s"
    if command.follows:
        print("The image went up in this registry's first step: only the tag moves here.")
    elif result.blobs_uploaded:
        print(
            f"Uploaded {result.blobs_uploaded} blobs ({result.bytes_uploaded} bytes); "
            f"{result.blobs_skipped} already present, {result.blobs_mounted} mounted; {took}."
        )
    else:
        print(
            f"Nothing to upload: all {result.blobs_skipped + result.blobs_mounted} blobs were "
            f"already present; {took}."
        )
    _report_references(result.references, ())
    if command.record:
        update_record(Path(command.record), result.references, ())


def _attach(command: PushCommand, client: RegistryClient, key: SigningKey | None) -> None:
    """Attach the documents (and, with a key, the signatures) as referrers of the image;
    list and record each one; write the public key for verifiers."""
    image = read_layout_image(Path(command.layout))
    subject = Descriptor(image.media_type, image.digest, len(image.manifest))
    documents = [Document.parse(spec) for spec in command.attach]
    kinds_and_attachments = document_attachments(documents)
    if key:
        from hostprocess.oci.signatures import signature_attachments

        kinds_and_attachments += signature_attachments(
            key, command.repository, image.digest, documents
        )
    result = client.attach(command.repository, subject, [a for _, a in kinds_and_attachments])
    entries = []
    for (kind, _), attached in zip(kinds_and_attachments, result.attached):
        print(
            f"Attached the {kind} ({attached.artifact_type}): {attached.reference} ({attached.status})"
        )
        entries.append(
            {
                "kind": kind,
                "artifact_type": attached.artifact_type,
                "reference": attached.reference,
                "digest": attached.digest,
            }
        )
    where = "the referrers API" if result.referrers_api else f"the tag {result.index_tag}"
    print(f"{len(entries)} referrers of {image.digest}, listed by {where}.")
    if command.record:
        image_reference = str(Reference(command.registry, command.repository, digest=image.digest))
        update_attachments(Path(command.record), image_reference, entries)
    if key and command.public_key_out:
        write_atomically(Path(command.public_key_out), key.public_key_pem())
        print(f"Signed with the key whose public half is {command.public_key_out}.")


def _push_reporting_failure(client: RegistryClient, command: PushCommand) -> PushResult:
    """The push; if it fails, first say (and record) which references moved and which did not."""
    layout = Path(command.layout)
    try:
        if command.follows:  # the first step of this run put the image there
            return client.tag(layout, command.repository, command.tag)
        return client.push(layout, command.repository, command.tag, mount_from=command.mount_from)
    except TagsNotMoved as error:
        _report_references(error.result.references, error.not_moved)
        if command.record:
            update_record(Path(command.record), error.result.references, error.not_moved[:1])
        raise
    except RegistryError:  # no manifest went up, so no tag moved
        _report_references({}, _tag_references(command))
        raise


def _tag_references(command: PushCommand) -> list[str]:
    return [str(Reference(command.registry, command.repository, tag=tag)) for tag in command.tag]


def _report_references(moved: Mapping[str, str], not_moved: Sequence[str]) -> None:
    """Which references point at the image now, and which do not: a failed push says so too."""
    for reference, digest in moved.items():
        print(f"{reference} -> {digest}")
    for reference in not_moved:
        print(f"{reference} not moved")
    sys.stdout.flush()  # before the error, which goes to stderr


def _print_progress(progress: Progress) -> None:
    print(progress, flush=True)


@run.register
def write_if_pushed(command: WriteIfPushedCommand) -> None:
    """Copy `file` to `dest` once the record shows the reference it pins as pushed."""
    if not shows_pushed(Path(command.record), command.reference, command.digest):
        raise ValueError(
            f"not writing {command.dest}: {command.record} does not show {command.reference} "
            f"as pushed (its push failed or did not run)."
        )
    write_atomically(Path(command.dest), Path(command.file).read_bytes())
    print(f"Wrote {command.dest}, pinning {command.reference}")


def main(argv: Sequence[str] | None = None) -> int:
    command = PROGRAM.parse(argv)
    try:
        run(command)
    except (OSError, ValueError, RegistryError, CredentialsError) as e:
        print(f"hostprocess-tool: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
