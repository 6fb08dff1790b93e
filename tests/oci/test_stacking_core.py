"""Tests for building an image on a parent image: layers, config inheritance, media types.

Every image here stands on real layer blobs (the built-in base layer and small trees written
by `write_layer`), chained parent -> child -> grandchild with `build_image(parent=...)`.
Expected values are written out literally or derived from the parent's JSON, never from
the module's own tables; the child's OCI layout is checked by oci-image-tool (against the
spec's schemas) and skopeo (as container tooling reads it). A missing tool fails the test.
"""
from __future__ import annotations

import datetime
import gzip
import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Sequence

import pytest
from digests import sha256_of

from hostprocess.oci.image import (
    BaseImageError,
    Image,
    Layer,
    RuntimeConfig,
    build_config,
    build_image,
    compression_of,
    image_from_manifest,
    merge_runtime,
)
from hostprocess.oci.layout import blob_path, layout_files
from hostprocess.oci.types import Compression
from hostprocess.oci.windows.base import base_layer_files
from hostprocess.oci.windows.layer import LayerFile
from oci.layer_blobs import write_layer_blob
from system_tools import run_tool, system_tool

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
OCI_TAR = "application/vnd.oci.image.layer.v1.tar"
DOCKER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_ZSTD = "application/vnd.docker.image.rootfs.diff.tar.zstd"
DOCKER_TAR = "application/vnd.docker.image.rootfs.diff.tar"
DOCKER_FOREIGN = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
OCI_NONDISTRIBUTABLE = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
CONFIG_KEYS = {"created", "architecture", "os", "config", "rootfs", "history"}

PARENT_CREATED, CHILD_CREATED, GRANDCHILD_CREATED = 1_600_000_000, 1_700_000_000, 1_710_000_000
# The history each image adds, one entry per layer it adds.
PARENT_HISTORY = ["hostprocess base layer", "COPY tools"]
CHILD_HISTORY = ["COPY hpc"]
GRANDCHILD_HISTORY = ["COPY agent.exe"]
PARENT_RUNTIME = RuntimeConfig(
    entrypoint=["C:\\Windows\\System32\\cmd.exe", "/c"],
    cmd=["echo", "parent"],
    env={"Path": "C:\\Windows\\system32;C:\\Windows", "PARENT_ONLY": "p", "Shared": "from-parent"},
    working_dir="C:\\parent",
    user="ContainerUser",
    labels={"org.example.owner": "platform", "org.example.tier": "base"},
)
CHILD_RUNTIME = RuntimeConfig(
    cmd=["echo", "child"],
    env={"PATH": "C:\\hpc;C:\\Windows\\system32", "CHILD_ONLY": "c", "shared": "from-child"},
    labels={"org.example.tier": "app", "org.example.app": "agent"},
)
GRANDCHILD_RUNTIME = RuntimeConfig(
    entrypoint=["C:\\hpc\\agent.exe", "--serve"], user="NT AUTHORITY\\SYSTEM"
)


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def _rfc3339(epoch: int) -> str:
    return datetime.datetime.fromtimestamp(epoch, tz=datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )


# --- real layers ---------------------------------------------------------------------


@dataclass(frozen=True)
class Chain:
    blobs: Path  # every layer blob, by digest, under blobs/sha256/
    base: Layer
    parent_layer: Layer
    child_layer: Layer
    grandchild_layer: Layer
    zstd_layer: Layer
    parent: Image
    child: Image
    grandchild: Image


def _write(
    blobs: Path, files: Sequence[LayerFile], *, base: bool, compression: Compression
) -> Layer:
    """A layer blob, checked against the digest and size that the writer reported."""
    layer = write_layer_blob(blobs, files, base=base, compression=compression)
    data = (blobs / blob_path(layer.digest)).read_bytes()
    assert sha256_of(data) == layer.digest and len(data) == layer.size
    return layer


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory, cc0_path: Path) -> Chain:
    blobs = tmp_path_factory.mktemp("stacking-blobs")
    base = _write(
        blobs, base_layer_files(cc0_path.read_bytes()), base=True, compression=Compression.GZIP
    )
    parent_layer = _write(blobs, [LayerFile("tools/parent.cmd", b"@echo parent\r\n")], base=False,
                          compression=Compression.GZIP)  # fmt: skip
    child_layer = _write(blobs, [LayerFile("hpc/config.json", b'{"child": true}\r\n'),
                                 LayerFile("hpc/README.txt", b"child layer\r\n")],
                         base=False, compression=Compression.GZIP)  # fmt: skip
    # oci-image-tool predates zstd layers, so the chain that it validates has none; this one
    # checks zstd descriptors in both families.
    zstd_layer = _write(
        blobs, [LayerFile("hpc/extra.txt", b"zstd\r\n")], base=False, compression=Compression.ZSTD
    )
    grandchild_layer = _write(blobs, [LayerFile("hpc/agent.exe", b"MZ not really an exe")], base=False,
                              compression=Compression.NONE)  # fmt: skip
    parent = build_image(PARENT_RUNTIME, [base, parent_layer], architecture="amd64", created=PARENT_CREATED,
                         history=PARENT_HISTORY)  # fmt: skip
    child = build_image(CHILD_RUNTIME, [child_layer], architecture="amd64", created=CHILD_CREATED, parent=parent,
                        history=CHILD_HISTORY)  # fmt: skip
    grandchild = build_image(GRANDCHILD_RUNTIME, [grandchild_layer], architecture="amd64", created=GRANDCHILD_CREATED,
                             parent=child, history=GRANDCHILD_HISTORY)  # fmt: skip
    return Chain(
        blobs,
        base,
        parent_layer,
        child_layer,
        grandchild_layer,
        zstd_layer,
        parent,
        child,
        grandchild,
    )


def _config(image: Image) -> Dict[str, Any]:
    return json.loads(image.config)


def _manifest(image: Image) -> Dict[str, Any]:
    return json.loads(image.manifest)


# --- layers and manifests -------------------------------------------------------------


def test_child_layers_are_the_parents_then_its_own(chain: Chain) -> None:
    assert list(chain.parent.layers) == [chain.base, chain.parent_layer]
    assert list(chain.child.layers) == [chain.base, chain.parent_layer, chain.child_layer]
    assert list(chain.grandchild.layers) == [
        chain.base,
        chain.parent_layer,
        chain.child_layer,
        chain.grandchild_layer,
    ]


def test_child_manifest_lists_parent_descriptors_first_unchanged(chain: Chain) -> None:
    parent_descriptors = _manifest(chain.parent)["layers"]
    child_descriptors = _manifest(chain.child)["layers"]
    grandchild_descriptors = _manifest(chain.grandchild)["layers"]
    assert child_descriptors[:2] == parent_descriptors
    assert grandchild_descriptors[:3] == child_descriptors
    assert grandchild_descriptors == [
        {"mediaType": OCI_GZIP, "digest": chain.base.digest, "size": chain.base.size},
        {
            "mediaType": OCI_GZIP,
            "digest": chain.parent_layer.digest,
            "size": chain.parent_layer.size,
        },
        {"mediaType": OCI_GZIP, "digest": chain.child_layer.digest, "size": chain.child_layer.size},
        {
            "mediaType": OCI_TAR,
            "digest": chain.grandchild_layer.digest,
            "size": chain.grandchild_layer.size,
        },
    ]
    for descriptor in grandchild_descriptors:  # every descriptor names a real blob of its size
        data = (chain.blobs / blob_path(descriptor["digest"])).read_bytes()
        assert (sha256_of(data), len(data)) == (descriptor["digest"], descriptor["size"])


def test_child_manifest_config_descriptor(chain: Chain) -> None:
    manifest = _manifest(chain.child)
    assert manifest["schemaVersion"] == 2 and manifest["mediaType"] == OCI_MANIFEST
    assert manifest["config"] == {"mediaType": OCI_CONFIG, "digest": sha256_of(chain.child.config),
                                  "size": len(chain.child.config)}  # fmt: skip
    assert chain.child.digest == sha256_of(chain.child.manifest)
    assert "platform" not in manifest and b"os.version" not in chain.child.manifest


def test_diff_ids_and_history_are_the_parents_then_new(chain: Chain) -> None:
    parent, child, grandchild = (
        _config(chain.parent),
        _config(chain.child),
        _config(chain.grandchild),
    )
    assert parent["rootfs"] == {
        "type": "layers",
        "diff_ids": [chain.base.diff_id, chain.parent_layer.diff_id],
    }
    assert child["rootfs"] == {
        "type": "layers",
        "diff_ids": [chain.base.diff_id, chain.parent_layer.diff_id, chain.child_layer.diff_id],
    }
    assert grandchild["rootfs"]["diff_ids"] == child["rootfs"]["diff_ids"] + [
        chain.grandchild_layer.diff_id
    ]
    parent_history = [
        {"created": _rfc3339(PARENT_CREATED), "created_by": "hostprocess base layer"},
        {"created": _rfc3339(PARENT_CREATED), "created_by": "COPY tools"},
    ]
    assert parent["history"] == parent_history
    child_history = parent_history + [{"created": "2023-11-14T22:13:20Z", "created_by": "COPY hpc"}]
    assert child["history"] == child_history
    assert grandchild["history"] == child_history + [{"created": _rfc3339(GRANDCHILD_CREATED),
                                                      "created_by": "COPY agent.exe"}]  # fmt: skip
    assert (child["created"], grandchild["created"]) == (
        "2023-11-14T22:13:20Z",
        _rfc3339(GRANDCHILD_CREATED),
    )


def test_diff_ids_match_the_real_layers(chain: Chain) -> None:
    """The recorded diff_id of each stacked layer is the digest of its uncompressed tar."""
    base_tar = gzip.decompress((chain.blobs / blob_path(chain.base.digest)).read_bytes())
    plain_tar = (chain.blobs / blob_path(chain.grandchild_layer.digest)).read_bytes()
    diff_ids = _config(chain.grandchild)["rootfs"]["diff_ids"]
    assert diff_ids[0] == sha256_of(base_tar)
    assert (
        diff_ids[3] == sha256_of(plain_tar) == chain.grandchild_layer.digest
    )  # uncompressed: blob is the tar


def test_env_merges_case_insensitively_in_first_seen_order(chain: Chain) -> None:
    assert _config(chain.parent)["config"]["Env"] == [
        "Path=C:\\Windows\\system32;C:\\Windows",
        "PARENT_ONLY=p",
        "Shared=from-parent",
    ]
    # PATH overrides Path in Path's place; shared overrides Shared; CHILD_ONLY is appended.
    expected = [
        "PATH=C:\\hpc;C:\\Windows\\system32",
        "PARENT_ONLY=p",
        "shared=from-child",
        "CHILD_ONLY=c",
    ]
    assert _config(chain.child)["config"]["Env"] == expected
    assert (
        _config(chain.grandchild)["config"]["Env"] == expected
    )  # no env of its own: inherited as is


def test_labels_merge_later_wins(chain: Chain) -> None:
    assert _config(chain.child)["config"]["Labels"] == {
        "org.example.owner": "platform",
        "org.example.tier": "app",
        "org.example.app": "agent",
    }
    assert _config(chain.grandchild)["config"]["Labels"] == _config(chain.child)["config"]["Labels"]


def test_cmd_replaces_and_the_rest_is_inherited(chain: Chain) -> None:
    child = _config(chain.child)["config"]
    assert child["Entrypoint"] == ["C:\\Windows\\System32\\cmd.exe", "/c"]
    assert child["Cmd"] == ["echo", "child"]
    assert child["WorkingDir"] == "C:\\parent"
    assert child["User"] == "ContainerUser"


def test_new_entrypoint_without_cmd_drops_the_inherited_cmd(chain: Chain) -> None:
    grandchild = _config(chain.grandchild)["config"]
    assert grandchild["Entrypoint"] == ["C:\\hpc\\agent.exe", "--serve"]
    assert (
        "Cmd" not in grandchild
    ), f"the parent's Cmd was meant for the old entrypoint: {grandchild}"
    assert grandchild["User"] == "NT AUTHORITY\\SYSTEM"
    assert grandchild["WorkingDir"] == "C:\\parent"


def test_new_entrypoint_with_cmd_sets_both(chain: Chain) -> None:
    runtime = RuntimeConfig(entrypoint=["new.exe"], cmd=["--flag"], working_dir="C:\\new")
    image = build_image(runtime, [], architecture="amd64", created=0, parent=chain.child)
    config = _config(image)["config"]
    assert (config["Entrypoint"], config["Cmd"], config["WorkingDir"]) == (
        ["new.exe"],
        ["--flag"],
        "C:\\new",
    )
    assert list(image.layers) == list(chain.child.layers)  # no new layers: the parent's only
    assert _config(image)["rootfs"] == _config(chain.child)["rootfs"]


def test_merge_runtime_directly() -> None:
    base = {
        "Entrypoint": ["old.exe"],
        "Cmd": ["--old"],
        "Env": ["A=1", "b=2"],
        "Labels": {"x": "1"},
        "StopSignal": "SIGTERM",
    }
    snapshot = json.loads(json.dumps(base))
    assert merge_runtime(base, RuntimeConfig()) == base
    merged = merge_runtime(base, RuntimeConfig(entrypoint=["new.exe"], env={"B": "3", "a": "4", "C": "5"},
                                               labels={"y": "2"}))  # fmt: skip
    assert merged == {
        "Entrypoint": ["new.exe"],
        "Env": ["a=4", "B=3", "C=5"],
        "Labels": {"x": "1", "y": "2"},
        "StopSignal": "SIGTERM",  # other keys of the config object are kept
    }
    assert base == snapshot, "merge_runtime must not modify the base's config"
    assert merge_runtime({}, RuntimeConfig(cmd=["x"])) == {"Cmd": ["x"]}


@pytest.mark.parametrize(
    "runtime",
    [
        RuntimeConfig(entrypoint=["C:\\Program Files\\agent\\agent.exe", "--serve"]),
        RuntimeConfig(cmd=["C:\\Program Files\\agent\\agent.exe", "--serve"]),
    ],
    ids=["entrypoint", "cmd"],
)
def test_new_command_clears_an_inherited_args_escaped(chain: Chain, runtime: RuntimeConfig) -> None:
    """Docker's non-OCI `ArgsEscaped` describes the command it sits beside, not the image.

    A parent built from a shell-form CMD on Windows carries `"ArgsEscaped": true`, meaning
    "Entrypoint/Cmd[0] is already a complete command line". Docker's builder sets it afresh
    on every ENTRYPOINT and CMD (false for the exec form, which is all RuntimeConfig has), and
    containerd's CRI (WithProcessCommandLineOrArgsForWindows) uses args[0] verbatim as the
    command line while it is true: inherited, `C:\\Program Files\\agent\\agent.exe --serve` would
    run unquoted and fail to start.
    """
    parent_config = {
        "os": "windows",
        "architecture": "amd64",
        "config": {"Cmd": ["powershell -Command Start-Service w3svc"], "ArgsEscaped": True},
        "rootfs": {"type": "layers", "diff_ids": [chain.base.diff_id]},
        "history": [{"created_by": "CMD powershell -Command Start-Service w3svc"}],
    }
    config = json.loads(
        build_config(runtime, [], architecture="amd64", created=0, parent_config=parent_config)
    )
    assert not config["config"].get("ArgsEscaped"), (
        'BUG: a new Entrypoint/Cmd keeps the parent\'s "ArgsEscaped": true, so containerd would run '
        f"Entrypoint/Cmd[0] as a raw, unescaped command line: {config['config']}"
    )
    # Without a command of its own, the child keeps the parent's command and its escaping.
    unchanged = json.loads(build_config(RuntimeConfig(env={"A": "1"}), [], architecture="amd64", created=0,
                                        parent_config=parent_config))  # fmt: skip
    assert unchanged["config"]["ArgsEscaped"] is True


def test_parent_config_is_not_modified(chain: Chain) -> None:
    assert _config(chain.parent)["config"] == PARENT_RUNTIME.to_json()
    assert _config(chain.parent)["rootfs"]["diff_ids"] == [
        chain.base.diff_id,
        chain.parent_layer.diff_id,
    ]


def test_building_without_a_parent_is_unchanged(chain: Chain) -> None:
    alone = build_config(PARENT_RUNTIME, [chain.base, chain.parent_layer], architecture="amd64",
                         created=PARENT_CREATED, history=PARENT_HISTORY)  # fmt: skip
    assert alone == chain.parent.config
    assert build_config(PARENT_RUNTIME, [chain.base], architecture="amd64", created=0, history=PARENT_HISTORY[:1],
                        parent_config={}) == \
        build_config(PARENT_RUNTIME, [chain.base], architecture="amd64", created=0, history=PARENT_HISTORY[:1])  # fmt: skip


# --- a hand-made Docker-family parent with platform details ---------------------------------


def _foreign_parent(
    chain: Chain, *, os_name: str = "windows", architecture: str = "amd64"
) -> Image:
    """A Docker schema 2 parent as a registry would serve it: os.version, os.features, variant."""
    config = {
        "architecture": architecture,
        "os": os_name,
        "os.version": "10.0.20348.2340",
        "os.features": ["win32k"],
        "variant": "v1",
        "author": "someone",
        "container": "abc123",
        "created": "2024-03-01T00:00:00Z",
        "config": {
            "Env": ["Path=C:\\Windows\\system32;C:\\Windows", "PARENT_ONLY=p"],
            "Cmd": ["c:\\windows\\system32\\cmd.exe"],
            "User": "ContainerUser",
        },
        "container_config": {"Cmd": ["should not be copied"]},
        "rootfs": {"type": "layers", "diff_ids": [chain.base.diff_id, chain.parent_layer.diff_id]},
        "history": [
            {"created": "2024-03-01T00:00:00Z", "created_by": "Apply image 10.0.20348.2340"},
            {"created": "2024-03-01T00:00:01Z", "created_by": "Install update 10.0.20348.2340"},
        ],
    }
    config_bytes = json.dumps(
        config, indent=3
    ).encode()  # not canonical: as some registry served it
    manifest = {
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": {
            "mediaType": DOCKER_CONFIG,
            "size": len(config_bytes),
            "digest": sha256_of(config_bytes),
        },
        "layers": [
            {"mediaType": DOCKER_GZIP, "size": chain.base.size, "digest": chain.base.digest},
            {
                "mediaType": DOCKER_GZIP,
                "size": chain.parent_layer.size,
                "digest": chain.parent_layer.digest,
            },
        ],
    }
    return image_from_manifest(json.dumps(manifest, indent=3).encode(), config_bytes)


def test_image_from_manifest_reads_a_docker_parent(chain: Chain) -> None:
    parent = _foreign_parent(chain)
    assert parent.media_types.manifest == DOCKER_MANIFEST
    assert [
        (layer.digest, layer.size, layer.diff_id, layer.compression) for layer in parent.layers
    ] == [
        (chain.base.digest, chain.base.size, chain.base.diff_id, Compression.GZIP),
        (
            chain.parent_layer.digest,
            chain.parent_layer.size,
            chain.parent_layer.diff_id,
            Compression.GZIP,
        ),
    ]
    assert parent.digest == sha256_of(parent.manifest)  # the bytes are kept as given


def test_oci_child_of_a_docker_parent(chain: Chain) -> None:
    parent = _foreign_parent(chain)
    child = build_image(CHILD_RUNTIME, [chain.child_layer], history=CHILD_HISTORY, architecture="amd64", created=CHILD_CREATED,
                        parent=parent)  # fmt: skip
    manifest = _manifest(child)
    assert manifest["mediaType"] == OCI_MANIFEST and manifest["config"]["mediaType"] == OCI_CONFIG
    assert manifest["layers"] == [  # the child's family; bytes and digests unchanged
        {"mediaType": OCI_GZIP, "digest": chain.base.digest, "size": chain.base.size},
        {
            "mediaType": OCI_GZIP,
            "digest": chain.parent_layer.digest,
            "size": chain.parent_layer.size,
        },
        {"mediaType": OCI_GZIP, "digest": chain.child_layer.digest, "size": chain.child_layer.size},
    ]
    config = _config(child)
    assert (
        set(config) == CONFIG_KEYS
    ), f"parent-only top-level keys were carried over: {set(config) - CONFIG_KEYS}"
    assert b"os.version" not in child.config and b"os.features" not in child.config
    assert b"variant" not in child.config and b"container_config" not in child.config
    assert config["config"] == {
        "Env": [
            "PATH=C:\\hpc;C:\\Windows\\system32",
            "PARENT_ONLY=p",
            "CHILD_ONLY=c",
            "shared=from-child",
        ],
        "Cmd": ["echo", "child"],
        "User": "ContainerUser",
        "Labels": {"org.example.tier": "app", "org.example.app": "agent"},
    }
    assert config["history"][:2] == json.loads(parent.config)["history"]
    assert config["history"][2] == {"created": "2023-11-14T22:13:20Z", "created_by": "COPY hpc"}
    assert config["rootfs"]["diff_ids"] == [
        chain.base.diff_id,
        chain.parent_layer.diff_id,
        chain.child_layer.diff_id,
    ]


def test_docker_child_of_an_oci_parent(chain: Chain) -> None:
    docker_child = build_image(CHILD_RUNTIME, [chain.child_layer], history=CHILD_HISTORY, architecture="amd64", created=CHILD_CREATED,
                               parent=chain.parent, media_family="docker")  # fmt: skip
    manifest = _manifest(docker_child)
    assert (
        manifest["mediaType"] == DOCKER_MANIFEST
        and manifest["config"]["mediaType"] == DOCKER_CONFIG
    )
    assert (
        docker_child.config == chain.child.config
    )  # the family changes descriptors, never the config
    # ... and a docker grandchild of the docker child, adding a zstd and an uncompressed layer.
    grandchild = build_image(RuntimeConfig(), [chain.zstd_layer, chain.grandchild_layer], architecture="amd64",
                             created=0, parent=docker_child, media_family="docker",
                             history=["COPY extra.txt", *GRANDCHILD_HISTORY])  # fmt: skip
    assert [(d["mediaType"], d["digest"], d["size"]) for d in _manifest(grandchild)["layers"]] == [
        (DOCKER_GZIP, chain.base.digest, chain.base.size),
        (DOCKER_GZIP, chain.parent_layer.digest, chain.parent_layer.size),
        (DOCKER_GZIP, chain.child_layer.digest, chain.child_layer.size),
        (DOCKER_ZSTD, chain.zstd_layer.digest, chain.zstd_layer.size),
        (DOCKER_TAR, chain.grandchild_layer.digest, chain.grandchild_layer.size),
    ]
    # Back to OCI on top of the Docker grandchild: every descriptor follows the new family.
    oci = build_image(RuntimeConfig(), [], architecture="amd64", created=0, parent=grandchild)
    assert [d["mediaType"] for d in _manifest(oci)["layers"]] == [
        OCI_GZIP,
        OCI_GZIP,
        OCI_GZIP,
        OCI_ZSTD,
        OCI_TAR,
    ]
    assert [d["digest"] for d in _manifest(oci)["layers"]] == [
        d["digest"] for d in _manifest(grandchild)["layers"]
    ]


def test_parent_must_be_windows(chain: Chain) -> None:
    with pytest.raises(BaseImageError, match="'linux', not Windows"):
        build_image(CHILD_RUNTIME, [chain.child_layer], history=CHILD_HISTORY, architecture="amd64", created=0,
                    parent=_foreign_parent(chain, os_name="linux"))  # fmt: skip


def test_parent_must_match_the_architecture(chain: Chain) -> None:
    with pytest.raises(BaseImageError, match="'amd64', but this image is for 'arm64'"):
        build_image(
            CHILD_RUNTIME,
            [chain.child_layer],
            history=CHILD_HISTORY,
            architecture="arm64",
            created=0,
            parent=chain.parent,
        )
    with pytest.raises(BaseImageError, match="'arm64', but this image is for 'amd64'"):
        build_image(CHILD_RUNTIME, [chain.child_layer], history=CHILD_HISTORY, architecture="amd64", created=0,
                    parent=_foreign_parent(chain, architecture="arm64"))  # fmt: skip


@pytest.mark.parametrize(
    "args, message",
    [
        (
            {"media_family": "docker", "annotations": {"k": "v"}},
            "manifest annotations need OCI media types",
        ),
        ({"architecture": "x86"}, "unknown architecture 'x86'"),
    ],
)
def test_other_problems_are_not_base_errors(
    chain: Chain, args: Dict[str, Any], message: str
) -> None:
    """Only a base the image cannot stand on is a BaseImageError, which the rules report on `base`."""
    kwargs: Dict[str, Any] = {"architecture": "amd64", "created": 0, **args}
    with pytest.raises(ValueError, match=message) as raised:
        build_image(CHILD_RUNTIME, [chain.child_layer], history=CHILD_HISTORY, **kwargs)
    assert not isinstance(raised.value, BaseImageError)


# --- the child's layout, read by independent tools ---------------------------------------------


def _write_layout(directory: Path, image: Image, blobs: Path, tags: Sequence[str]) -> Path:
    for rel, data in layout_files(image, tags).items():
        (directory / rel).parent.mkdir(parents=True, exist_ok=True)
        (directory / rel).write_bytes(data)
    for layer in image.layers:
        shutil.copyfile(blobs / blob_path(layer.digest), directory / blob_path(layer.digest))
    return directory


@pytest.mark.parametrize("which", ["child", "grandchild", "of-docker-parent"])
def test_child_layout_validates(tmp_path: Path, chain: Chain, which: str) -> None:
    if which == "of-docker-parent":
        image = build_image(CHILD_RUNTIME, [chain.child_layer], history=CHILD_HISTORY, architecture="amd64", created=CHILD_CREATED,
                            parent=_foreign_parent(chain))  # fmt: skip
    else:
        image = getattr(chain, which)
    layout = _write_layout(tmp_path / "layout", image, chain.blobs, ["v1"])
    run_tool("oci-image-tool", "validate", "--type", "image", "--ref", "name=v1", str(layout))
    raw_config = run_tool("skopeo", "inspect", "--config", "--raw", f"oci:{layout}:v1").stdout
    assert raw_config == image.config
    inspected = json.loads(run_tool("skopeo", "inspect", "--config", f"oci:{layout}:v1").stdout)
    assert (
        "os.version" not in inspected
        and "os.features" not in inspected
        and "variant" not in inspected
    )
    assert (inspected["os"], inspected["architecture"]) == ("windows", "amd64")
    assert inspected["rootfs"]["diff_ids"] == [layer.diff_id for layer in image.layers]
    assert inspected["config"] == _config(image)["config"]
    raw_manifest = run_tool("skopeo", "inspect", "--raw", f"oci:{layout}:v1").stdout
    assert raw_manifest == image.manifest


def test_oci_image_tool_notices_a_missing_parent_blob(tmp_path: Path, chain: Chain) -> None:
    """Control: the validation really reads the parent's layer blobs."""
    layout = _write_layout(tmp_path / "layout", chain.child, chain.blobs, ["v1"])
    (layout / blob_path(chain.parent_layer.digest)).unlink()
    result = subprocess.run(
        [system_tool("oci-image-tool"), "validate", "--type", "image", "--ref", "name=v1", str(layout)],
        capture_output=True, check=False, timeout=60,
    )  # fmt: skip
    assert result.returncode != 0


# --- compression_of and image_from_manifest ----------------------------------------------------


@pytest.mark.parametrize(
    "media_type, compression",
    [
        (OCI_GZIP, Compression.GZIP),
        (OCI_ZSTD, Compression.ZSTD),
        (OCI_TAR, Compression.NONE),
        (DOCKER_GZIP, Compression.GZIP),
        (DOCKER_ZSTD, Compression.ZSTD),
        (DOCKER_TAR, Compression.NONE),
    ],
)
def test_compression_of(media_type: str, compression: Compression) -> None:
    assert compression_of(media_type) is compression


@pytest.mark.parametrize(
    "media_type", [DOCKER_FOREIGN, OCI_NONDISTRIBUTABLE, "application/octet-stream", ""]
)
def test_compression_of_refuses_other_layers(media_type: str) -> None:
    with pytest.raises(BaseImageError, match="unsupported layer media type") as raised:
        compression_of(media_type)
    assert repr(media_type) in str(raised.value)


def test_image_from_manifest_round_trips_a_built_image(chain: Chain) -> None:
    again = image_from_manifest(chain.grandchild.manifest, chain.grandchild.config)
    assert (again.manifest, again.config, again.digest) == (
        chain.grandchild.manifest, chain.grandchild.config, chain.grandchild.digest)  # fmt: skip
    assert [(l.digest, l.size, l.diff_id, l.compression) for l in again.layers] == [
        (l.digest, l.size, l.diff_id, l.compression) for l in chain.grandchild.layers
    ]
    # Built on again, the result equals building on the original.
    runtime = RuntimeConfig(labels={"k": "v"})
    assert build_image(runtime, [], architecture="amd64", created=5, parent=again).manifest == \
        build_image(runtime, [], architecture="amd64", created=5, parent=chain.grandchild).manifest  # fmt: skip


def test_image_from_manifest_refuses_diff_id_count_mismatch(chain: Chain) -> None:
    config = _config(chain.child)
    config["rootfs"]["diff_ids"] = config["rootfs"]["diff_ids"][:2]
    with pytest.raises(BaseImageError, match="the config lists 2 diff_ids for 3 layers"):
        image_from_manifest(chain.child.manifest, _canonical(config))
    del config["rootfs"]
    with pytest.raises(BaseImageError, match="the config lists 0 diff_ids for 3 layers"):
        image_from_manifest(chain.child.manifest, _canonical(config))


@pytest.mark.parametrize("media_type", [OCI_INDEX, DOCKER_LIST])
def test_image_from_manifest_refuses_an_index(chain: Chain, media_type: str) -> None:
    index = _canonical({
        "schemaVersion": 2,
        "mediaType": media_type,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": chain.child.digest, "size": len(chain.child.manifest),
                       "platform": {"os": "windows", "architecture": "amd64"}}],
    })  # fmt: skip
    with pytest.raises(
        BaseImageError, match=re.escape(f"not a single image manifest (media type '{media_type}')")
    ):
        image_from_manifest(index, chain.child.config)


def test_image_from_manifest_refuses_a_foreign_layer(chain: Chain) -> None:
    manifest = _manifest(chain.child)
    manifest["layers"][0]["mediaType"] = DOCKER_FOREIGN
    with pytest.raises(BaseImageError, match="unsupported layer media type"):
        image_from_manifest(_canonical(manifest), chain.child.config)


def test_family_of_descriptors_in_a_mixed_manifest_follows_the_child(chain: Chain) -> None:
    """A parent whose layers mix families (OCI manifest) still yields one family in the child."""
    manifest = _manifest(chain.child)
    manifest["layers"][1]["mediaType"] = DOCKER_GZIP
    parent = image_from_manifest(_canonical(manifest), chain.child.config)
    child = build_image(RuntimeConfig(), [chain.grandchild_layer], architecture="amd64", created=0, parent=parent,
                        media_family="docker", history=GRANDCHILD_HISTORY)  # fmt: skip
    types: List[str] = [d["mediaType"] for d in _manifest(child)["layers"]]
    assert types == [DOCKER_GZIP, DOCKER_GZIP, DOCKER_GZIP, DOCKER_TAR]
