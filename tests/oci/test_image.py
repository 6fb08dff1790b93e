"""Tests for the image config and manifest writer.

Expected media types, timestamps and digests are written out literally (from the OCI image
spec, Docker's schema 2 and containerd's constants) or computed with `hashlib`, never with
the module's own tables; `oci-image-tool` validates the OCI-family JSON against the spec's
schemas. A missing tool fails the test, never skips it.
"""
from __future__ import annotations

import json
import re
import subprocess
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import pytest
from digests import sha256_of

from hostprocess.oci.image import Image, Layer, RuntimeConfig, build_config, build_image
from hostprocess.oci.types import Compression
from system_tools import system_tool

FORBIDDEN_KEYS = ("platform", "os.version", "os.features")

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
LAYER_MEDIA_TYPES = [
    ("oci", Compression.GZIP, "application/vnd.oci.image.layer.v1.tar+gzip"),
    ("oci", Compression.ZSTD, "application/vnd.oci.image.layer.v1.tar+zstd"),
    ("oci", Compression.NONE, "application/vnd.oci.image.layer.v1.tar"),
    ("docker", Compression.GZIP, "application/vnd.docker.image.rootfs.diff.tar.gzip"),
    ("docker", Compression.ZSTD, "application/vnd.docker.image.rootfs.diff.tar.zstd"),
    ("docker", Compression.NONE, "application/vnd.docker.image.rootfs.diff.tar"),
]

FULL_RUNTIME = RuntimeConfig(
    entrypoint=["C:\\hpc\\agent.exe", "--serve"],
    cmd=["--port", "8080"],
    env={"PATH": "C:\\Windows\\system32;C:\\Windows", "EQ": "a=b"},
    working_dir="C:\\hpc",
    user="NT AUTHORITY\\SYSTEM",
    labels={"org.example.b": "2", "org.example.a": "1", "org.example.ü": "ünïcode"},
)


CREATED_BY: Dict[str, str] = {}  # layer digest -> the history text `_image` gives it


def _layer(name: str, compression: Compression = Compression.GZIP) -> Layer:
    """A layer record with distinct, well-formed fake digests (and history text)."""
    layer = Layer(
        digest=sha256_of(b"blob:" + name.encode()),
        size=len(name) * 1000 + 7,
        diff_id=sha256_of(b"diff:" + name.encode()),
        compression=compression,
    )
    CREATED_BY[layer.digest] = f"hostprocess layer {name}"
    return layer


LAYERS = [_layer("base"), _layer("middle", Compression.ZSTD), _layer("top", Compression.NONE)]
HISTORY = [CREATED_BY[layer.digest] for layer in LAYERS]


def _image(**kwargs: Any) -> Image:
    args: dict[str, Any] = {"architecture": "amd64", "created": 0}
    args.update(kwargs)
    runtime = args.pop("runtime", FULL_RUNTIME)
    layers = args.pop("layers", LAYERS)
    args.setdefault("history", [CREATED_BY[layer.digest] for layer in layers])
    return build_image(runtime, layers, **args)


def _walk_keys(value: Any, path: str = "$") -> Iterator[Tuple[str, str]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield path, key
            yield from _walk_keys(item, f"{path}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _walk_keys(item, f"{path}[{i}]")


def _oci_validate(tmp_path: Path, kind: str, data: bytes) -> subprocess.CompletedProcess:
    path = tmp_path / f"{kind}.json"
    path.write_bytes(data)
    return subprocess.run(
        [system_tool("oci-image-tool"), "validate", "--type", kind, str(path)],
        capture_output=True,
        text=True,
        check=False,
    )


# --- config -----------------------------------------------------------------------


@pytest.mark.parametrize("architecture", ["amd64", "arm64"])
def test_config_is_windows_with_architecture(architecture: str) -> None:
    config = json.loads(_image(architecture=architecture).config)
    assert config["os"] == "windows"
    assert config["architecture"] == architecture


@pytest.mark.parametrize("family", ["oci", "docker"])
@pytest.mark.parametrize("architecture", ["amd64", "arm64"])
def test_no_platform_keys_anywhere(family: str, architecture: str) -> None:
    annotations = {"org.opencontainers.image.title": "x"} if family == "oci" else None
    image = _image(architecture=architecture, media_family=family, annotations=annotations)
    for what, data in (("config", image.config), ("manifest", image.manifest)):
        for where, key in _walk_keys(json.loads(data)):
            assert key not in FORBIDDEN_KEYS, f"{what} has forbidden key {key!r} at {where}"
        # Also as raw text, in case a key hides somewhere the walk does not reach.
        for key in FORBIDDEN_KEYS:
            assert f'"{key}"'.encode() not in data, f"{what} mentions {key!r}: {data!r}"


def test_rootfs_diff_ids_in_layer_order_base_first() -> None:
    config = json.loads(_image().config)
    assert config["rootfs"] == {
        "type": "layers",
        "diff_ids": [
            sha256_of(b"diff:base"),
            sha256_of(b"diff:middle"),
            sha256_of(b"diff:top"),
        ],
    }


def test_one_history_entry_per_layer_in_order() -> None:
    config = json.loads(_image(created=1700000000).config)
    assert config["history"] == [
        {"created": "2023-11-14T22:13:20Z", "created_by": "hostprocess layer base"},
        {"created": "2023-11-14T22:13:20Z", "created_by": "hostprocess layer middle"},
        {"created": "2023-11-14T22:13:20Z", "created_by": "hostprocess layer top"},
    ]


def test_no_layers_gives_empty_rootfs_and_history() -> None:
    config = json.loads(_image(layers=[]).config)
    assert config["rootfs"] == {"type": "layers", "diff_ids": []}
    assert config["history"] == []
    assert json.loads(_image(layers=[]).manifest)["layers"] == []


@pytest.mark.parametrize(
    "epoch, expected",
    [
        (0, "1970-01-01T00:00:00Z"),
        (1, "1970-01-01T00:00:01Z"),
        (951782400, "2000-02-29T00:00:00Z"),
        (1700000000, "2023-11-14T22:13:20Z"),
        (2147483648, "2038-01-19T03:14:08Z"),
    ],
)
def test_created_is_rfc3339_utc_from_epoch(epoch: int, expected: str) -> None:
    created = json.loads(_image(created=epoch).config)["created"]
    assert created == expected
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", created)
    parsed = datetime.strptime(created, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    assert parsed.timestamp() == epoch


def test_created_does_not_depend_on_local_timezone(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    expected = _image(created=1700000000).config
    monkeypatch.setenv("TZ", "Pacific/Kiritimati")  # UTC+14
    time.tzset()
    try:
        assert _image(created=1700000000).config == expected
    finally:
        monkeypatch.undo()
        time.tzset()


def test_unset_runtime_config_writes_no_runtime_keys() -> None:
    config = json.loads(_image(runtime=RuntimeConfig()).config)
    assert config.get("config", {}) == {}


@pytest.mark.parametrize(
    "runtime, key, value",
    [
        (RuntimeConfig(entrypoint=["a.exe", "b"]), "Entrypoint", ["a.exe", "b"]),
        (RuntimeConfig(cmd=["/c", "dir"]), "Cmd", ["/c", "dir"]),
        (
            RuntimeConfig(env={"K": "V", "EQ": "x=y", "EMPTY": ""}),
            "Env",
            ["K=V", "EQ=x=y", "EMPTY="],
        ),
        (RuntimeConfig(working_dir="C:\\work"), "WorkingDir", "C:\\work"),
        (RuntimeConfig(user="ContainerUser"), "User", "ContainerUser"),
        (RuntimeConfig(labels={"b": "2", "a": "1"}), "Labels", {"a": "1", "b": "2"}),
    ],
)
def test_each_runtime_field_present_only_when_set(
    runtime: RuntimeConfig, key: str, value: Any
) -> None:
    config = json.loads(_image(runtime=runtime).config)
    assert config["config"] == {key: value}


def test_full_runtime_config() -> None:
    config = json.loads(_image().config)
    assert config["config"] == {
        "Entrypoint": ["C:\\hpc\\agent.exe", "--serve"],
        "Cmd": ["--port", "8080"],
        "Env": ["PATH=C:\\Windows\\system32;C:\\Windows", "EQ=a=b"],
        "WorkingDir": "C:\\hpc",
        "User": "NT AUTHORITY\\SYSTEM",
        "Labels": {"org.example.a": "1", "org.example.b": "2", "org.example.ü": "ünïcode"},
    }


def test_config_top_level_keys() -> None:
    config = json.loads(_image().config)
    assert set(config) == {"created", "architecture", "os", "config", "rootfs", "history"}


@pytest.mark.parametrize("architecture", ["x86_64", "AMD64", "arm", "386", "", "windows/amd64"])
def test_unknown_architecture_raises(architecture: str) -> None:
    with pytest.raises(ValueError, match="architecture"):
        build_config(RuntimeConfig(), LAYERS, architecture=architecture, created=0, history=HISTORY)
    with pytest.raises(ValueError, match="architecture"):
        build_image(RuntimeConfig(), LAYERS, architecture=architecture, created=0, history=HISTORY)


@pytest.mark.parametrize("history", [[], ["one"], ["one", "two", "three", "four"]])
def test_history_must_pair_with_layers(history: List[str]) -> None:
    with pytest.raises(ValueError, match=f"{len(history)} history entries for 3 layers"):
        build_config(RuntimeConfig(), LAYERS, architecture="amd64", created=0, history=history)
    with pytest.raises(ValueError, match=f"{len(history)} history entries for 3 layers"):
        _image(history=history)


def test_history_is_not_a_layer_property() -> None:
    """The same layers with other history: same rootfs and layers, other config."""
    other = _image(history=["a", "b", "c"])
    assert json.loads(other.config)["rootfs"] == json.loads(_image().config)["rootfs"]
    assert json.loads(other.manifest)["layers"] == json.loads(_image().manifest)["layers"]
    assert [h["created_by"] for h in json.loads(other.config)["history"]] == ["a", "b", "c"]
    assert other.digest != _image().digest


# --- manifest ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "family, manifest_type, config_type",
    [("oci", OCI_MANIFEST, OCI_CONFIG), ("docker", DOCKER_MANIFEST, DOCKER_CONFIG)],
)
def test_manifest_structure(family: str, manifest_type: str, config_type: str) -> None:
    image = _image(media_family=family)
    manifest = json.loads(image.manifest)
    assert set(manifest) == {"schemaVersion", "mediaType", "config", "layers"}
    assert manifest["schemaVersion"] == 2
    assert manifest["mediaType"] == manifest_type
    assert manifest["config"] == {
        "mediaType": config_type,
        "digest": sha256_of(image.config),
        "size": len(image.config),
    }
    assert [layer["digest"] for layer in manifest["layers"]] == [l.digest for l in LAYERS]
    assert [layer["size"] for layer in manifest["layers"]] == [l.size for l in LAYERS]
    for layer in manifest["layers"]:
        assert set(layer) == {"mediaType", "digest", "size"}, layer


@pytest.mark.parametrize("family, compression, media_type", LAYER_MEDIA_TYPES)
def test_layer_media_type_per_compression(
    family: str, compression: Compression, media_type: str
) -> None:
    layer = _layer("only", compression)
    manifest = json.loads(_image(layers=[layer], media_family=family).manifest)
    assert manifest["layers"] == [
        {"mediaType": media_type, "digest": layer.digest, "size": layer.size}
    ]


def test_manifest_never_mixes_families() -> None:
    for family, prefix in (("oci", "application/vnd.oci."), ("docker", "application/vnd.docker.")):
        text = json.loads(_image(media_family=family).manifest)
        types = [text["mediaType"], text["config"]["mediaType"]]
        types += [layer["mediaType"] for layer in text["layers"]]
        assert all(t.startswith(prefix) for t in types), (family, types)


def test_image_digests() -> None:
    image = _image()
    assert image.digest == sha256_of(image.manifest)
    manifest = image.manifest_descriptor
    assert (manifest.media_type, manifest.digest, manifest.size) == (
        OCI_MANIFEST,
        image.digest,
        len(image.manifest),
    )
    config = image.config_descriptor
    assert (config.media_type, config.digest, config.size) == (
        OCI_CONFIG,
        sha256_of(image.config),
        len(image.config),
    )
    assert list(image.layers) == LAYERS


def test_annotations_written_with_oci() -> None:
    annotations = {"org.opencontainers.image.source": "https://example.com", "a": "ü"}
    manifest = json.loads(_image(annotations=annotations).manifest)
    assert manifest["annotations"] == annotations


def test_annotations_refused_with_docker() -> None:
    with pytest.raises(ValueError, match="annotations"):
        _image(media_family="docker", annotations={"a": "b"})


@pytest.mark.parametrize("family", ["oci", "docker"])
def test_empty_annotations_write_no_key(family: str) -> None:
    empties: tuple[dict[str, str] | None, ...] = (None, {})
    for empty in empties:
        manifest = json.loads(_image(media_family=family, annotations=empty).manifest)
        assert "annotations" not in manifest


def test_layer_json_round_trip() -> None:
    for layer in LAYERS:
        data = json.loads(json.dumps(layer.to_json()))
        assert data["compression"] == layer.compression.value
        assert Layer.from_json(data) == layer


# --- canonical JSON ---------------------------------------------------------------


def _assert_canonical(data: bytes) -> None:
    def check_sorted(pairs: List[Tuple[str, Any]]) -> dict:
        keys = [key for key, _ in pairs]
        assert keys == sorted(keys), f"keys not sorted: {keys}"
        assert len(set(keys)) == len(keys), f"duplicate keys: {keys}"
        return dict(pairs)

    text = data.decode("utf-8")  # must be UTF-8
    json.loads(text, object_pairs_hook=check_sorted)
    outside_strings = re.sub(r'"(?:[^"\\]|\\.)*"', '""', text)
    assert not re.search(r"\s", outside_strings), f"whitespace outside strings: {text}"


@pytest.mark.parametrize("family", ["oci", "docker"])
def test_canonical_json_sorted_and_compact(family: str) -> None:
    annotations = {"z": "1", "a": "2"} if family == "oci" else None
    image = _image(media_family=family, annotations=annotations)
    _assert_canonical(image.config)
    _assert_canonical(image.manifest)


def test_non_ascii_is_utf8_not_escaped() -> None:
    image = _image()
    assert "ünïcode".encode("utf-8") in image.config
    assert b"\\u00fc" not in image.config


def test_same_input_gives_same_bytes() -> None:
    first, second = _image(), _image()
    assert first.config == second.config
    assert first.manifest == second.manifest
    assert first.digest == second.digest


def test_label_and_annotation_insertion_order_does_not_matter() -> None:
    labels = {"b": "2", "a": "1", "c": "3"}
    reordered = RuntimeConfig(labels=dict(reversed(list(labels.items()))))
    assert _image(runtime=RuntimeConfig(labels=labels)).config == _image(runtime=reordered).config
    annotations = {"y": "1", "x": "2"}
    assert (
        _image(annotations=annotations).manifest
        == _image(annotations=dict(reversed(list(annotations.items())))).manifest
    )


def test_any_change_changes_the_digest() -> None:
    reference = _image().digest
    variants = [
        _image(architecture="arm64"),
        _image(created=1),
        _image(runtime=RuntimeConfig()),
        _image(layers=LAYERS[:2]),
        _image(layers=list(reversed(LAYERS))),
        _image(media_family="docker"),
        _image(annotations={"a": "b"}),
    ]
    digests = [variant.digest for variant in variants]
    assert reference not in digests
    assert len(set(digests)) == len(digests)


# --- independent schema check -----------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"runtime": RuntimeConfig()},
        {"architecture": "arm64", "created": 2147483648},
        {"annotations": {"org.opencontainers.image.title": "hello"}},
        {
            "layers": [
                _layer("g", Compression.GZIP),
                _layer("z", Compression.ZSTD),
                _layer("n", Compression.NONE),
            ]
        },
    ],
    ids=["full", "bare", "arm64", "annotations", "all-compressions"],
)
def test_oci_image_tool_validates(tmp_path: Path, kwargs: dict) -> None:
    image = _image(**kwargs)
    for kind, data in (("manifest", image.manifest), ("config", image.config)):
        result = _oci_validate(tmp_path, kind, data)
        assert (
            result.returncode == 0
        ), f"oci-image-tool rejected the {kind}:\n{result.stderr}\n{data!r}"


def test_oci_image_tool_rejects_broken_json(tmp_path: Path) -> None:
    """Control: the validator does catch schema errors, so the test above means something."""
    image = _image()
    config = json.loads(image.config)
    del config["rootfs"]
    assert _oci_validate(tmp_path, "config", json.dumps(config).encode()).returncode != 0
    manifest = json.loads(image.manifest)
    manifest["schemaVersion"] = 1
    assert _oci_validate(tmp_path, "manifest", json.dumps(manifest).encode()).returncode != 0
