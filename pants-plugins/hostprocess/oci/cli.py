"""The image tool: the commands Pants runs in its sandbox to write layers and archives.

Each command reads only its arguments and declared input files and writes only under its
output path, so Pants can cache the result by digest and replay it on any machine.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Iterator, Mapping, Sequence

from hostprocess.oci.auth import CredentialsError, find_credentials, helper_env
from hostprocess.oci.base import base_layer_files
from hostprocess.oci.image import Layer
from hostprocess.oci.layer import LayerFile, write_layer
from hostprocess.oci.layout import (
    blob_path,
    docker_manifest_json,
    fail_on_walk_error,
    read_manifest,
    write_archive,
)
from hostprocess.oci.pull import pull_base
from hostprocess.oci.reference import Reference
from hostprocess.oci.registry import Progress, RegistryClient, RegistryError
from hostprocess.oci.types import Compression

LAYER_JSON = "layer.json"


def tree_files(root: Path) -> Iterator[LayerFile]:
    """Every regular file under `root`, destination path relative to it."""
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True, onerror=fail_on_walk_error):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath, name)
            yield LayerFile(path.relative_to(root).as_posix(), path)


def _write_layer_dir(files: Sequence[LayerFile], args: argparse.Namespace, *, base: bool) -> None:
    """Write the blob under `out/blobs/sha256/` and its description to `out/layer.json`."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=out, delete=False) as tmp:
        digests = write_layer(
            files,
            tmp,
            base=base,
            compression=Compression(args.compression),
            level=args.level,
            mtime=args.mtime,
            threads=args.threads,
        )
    blob = out / blob_path(digests.digest)
    blob.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp.name, blob)
    layer = Layer(
        digests.digest,
        digests.size,
        digests.diff_id,
        Compression(args.compression),
        args.created_by,
    )
    (out / LAYER_JSON).write_text(json.dumps(layer.to_json(), sort_keys=True, indent=2) + "\n")


def cmd_base_layer(args: argparse.Namespace) -> None:
    _write_layer_dir(base_layer_files(Path(args.cc0).read_bytes()), args, base=True)


def cmd_layer(args: argparse.Namespace) -> None:
    root = Path(args.root)
    files = list(tree_files(root)) if root.is_dir() else []
    _write_layer_dir(files, args, base=False)


def cmd_archive(args: argparse.Namespace) -> None:
    layout = Path(args.layout)
    extra = {}
    if args.format == "docker-archive":
        _, manifest = read_manifest(layout)
        extra["manifest.json"] = docker_manifest_json(json.loads(manifest), args.repo_tag)
    write_archive(layout, Path(args.out), extra_files=extra, mtime=args.mtime)


def cmd_pull(args: argparse.Namespace) -> None:
    """Pull a digest-pinned base; credentials come from Docker's config.json or helpers."""
    reference = Reference.parse(args.reference)
    if reference.registry is None:
        raise ValueError(f"{args.reference} names no registry host")
    client = RegistryClient(
        reference.registry,
        credentials=find_credentials(reference.registry, env=helper_env(os.environ)),
        insecure=args.insecure,
        ca_bundle=Path(args.ca_cert) if args.ca_cert else None,
    )
    pulled = pull_base(client, reference, args.architecture, Path(args.out))
    print(f"Pulled {pulled.reference}: {pulled.layers} layers, {pulled.bytes} bytes, verified.")


def cmd_push(args: argparse.Namespace) -> None:
    """Push the layout's image; credentials come from the environment, never from argv."""
    credentials = find_credentials(
        args.registry,
        username_env=args.username_env,
        password_env=args.password_env,
        env=helper_env(os.environ),
    )
    client = RegistryClient(
        args.registry,
        credentials=credentials,
        insecure=args.insecure,
        ca_bundle=Path(args.ca_cert) if args.ca_cert else None,
        progress=_print_progress,
    )
    result = client.push(Path(args.layout), args.repository, args.tag, mount_from=args.mount_from)
    if result.blobs_uploaded:
        print(
            f"Uploaded {result.blobs_uploaded} blobs ({result.bytes_uploaded} bytes); "
            f"{result.blobs_skipped} already present, {result.blobs_mounted} mounted."
        )
    else:
        print(
            f"Nothing to upload: all {result.blobs_skipped + result.blobs_mounted} blobs were already present."
        )
    for reference, digest in result.references.items():
        print(f"{reference} -> {digest}")
    if args.record:
        _update_record(Path(args.record), result.references)


def _print_progress(progress: Progress) -> None:
    print(progress, flush=True)


def _update_record(path: Path, references: Mapping[str, str]) -> None:
    """Merge pushed references into the JSON record beside the image, atomically."""
    record = json.loads(path.read_text()) if path.is_file() else {}
    record.update(references)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial")
    tmp.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def _layer_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--created-by", required=True, help="history text for the image config")
    parser.add_argument("--compression", choices=[c.value for c in Compression], default="gzip")
    parser.add_argument("--level", type=int, required=True)
    parser.add_argument("--mtime", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="does not change the output")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="hostprocess-tool", description=__doc__)
    commands = top.add_subparsers(dest="command", required=True)

    base = commands.add_parser("base-layer", help="write the built-in base layer")
    base.add_argument("--cc0", required=True, help="the CC0 1.0 legal code text")
    _layer_options(base)
    base.set_defaults(func=cmd_base_layer)

    layer = commands.add_parser("layer", help="write a Windows layer from a directory tree")
    layer.add_argument("--root", required=True, help="the tree; paths map to C:\\")
    _layer_options(layer)
    layer.set_defaults(func=cmd_layer)

    archive = commands.add_parser("archive", help="tar an OCI layout")
    archive.add_argument("--layout", required=True)
    archive.add_argument("--format", required=True, choices=["oci-archive", "docker-archive"])
    archive.add_argument("--repo-tag", action="append", default=[])
    archive.add_argument("--out", required=True)
    archive.add_argument("--mtime", type=int, default=0)
    archive.set_defaults(func=cmd_archive)

    pull = commands.add_parser("pull", help="pull a base image pinned by digest")
    pull.add_argument("--reference", required=True, help="registry/repository@sha256:...")
    pull.add_argument("--architecture", required=True)
    pull.add_argument("--out", required=True)
    pull.add_argument("--insecure", action="store_true", help="allow plain HTTP and unverified TLS")
    pull.add_argument("--ca-cert", help="a PEM bundle to trust besides the system's")
    pull.set_defaults(func=cmd_pull)

    push = commands.add_parser("push", help="push an OCI layout's image to a registry")
    push.add_argument("--layout", required=True)
    push.add_argument("--registry", required=True, help="host[:port]")
    push.add_argument("--repository", required=True)
    push.add_argument("--tag", action="append", default=[])
    push.add_argument("--insecure", action="store_true", help="allow plain HTTP and unverified TLS")
    push.add_argument("--ca-cert", help="a PEM bundle to trust besides the system's")
    push.add_argument("--username-env", help="the variable holding the username")
    push.add_argument("--password-env", help="the variable holding the password")
    push.add_argument("--record", help="a JSON file of reference -> digest to update")
    push.add_argument("--mount-from", help="a repository on the registry that may hold the blobs")
    push.set_defaults(func=cmd_push)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        args.func(args)
    except (OSError, ValueError, RegistryError, CredentialsError) as e:
        print(f"hostprocess-tool: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
