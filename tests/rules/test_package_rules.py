"""RuleRunner tests that run the real package rule: tool PEX, layer processes, layout.

They cover the options the end-to-end example does not: Docker media types, zstd layers,
labels/annotations, output paths. The tool comes from its real lockfile inside
the plugin, and Pants' pex tool from the file ./pants built (see
`rules.rule_runners`).
"""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import logging
import tarfile
from pathlib import Path
from textwrap import dedent
from typing import Sequence

import pytest
import zstandard
from pants.backend.python.util_rules.pex_requirements import Resolve
from pants.core.goals.package import BuiltPackage
from pants.core.target_types import RelocatedFiles
from pants.engine.addresses import Address
from pants.engine.fs import EMPTY_DIGEST, Digest, DigestContents
from pants.engine.internals.scheduler import ExecutionError
from pants.engine.target import AllTargets
from pants.testutil.rule_runner import QueryRule, RuleRunner
from pants.util.resources import read_resource

from hostprocess.oci.types import Compression
from hostprocess.oci.windows.layer import LayerFile, write_layer
from hostprocess.subsystems.image_tool import ImageToolSubsystem
from hostprocess.util_rules import image as image_rules
from hostprocess.util_rules import sandbox_inputs
from hostprocess.util_rules.errors import ImageBuildError
from hostprocess.util_rules.image import HostProcessImageFieldSet
from rules.rule_runners import tool_rule_runner, wrapped_error


def make_rule_runner(*options: str, query_rules: Sequence[QueryRule] = ()) -> RuleRunner:
    """A RuleRunner with the real tool resolve; `options` are extra `--hostprocess-*` flags."""
    return tool_rule_runner(
        target_types=[RelocatedFiles],
        query_rules=[
            QueryRule(BuiltPackage, [HostProcessImageFieldSet]),
            QueryRule(DigestContents, [Digest]),
            QueryRule(AllTargets, []),
            *query_rules,
        ],
        options=options,
    )


def package(rule_runner: RuleRunner, address: Address) -> dict[str, bytes]:
    target = rule_runner.get_target(address)
    built = rule_runner.request(BuiltPackage, [HostProcessImageFieldSet.create(target)])
    contents = rule_runner.request(DigestContents, [built.digest])
    return {fc.path: fc.content for fc in contents}


def blob(files: dict[str, bytes], layout: str, digest: str) -> bytes:
    return files[f"{layout}/blobs/sha256/{digest.split(':')[1]}"]


def test_docker_media_types_zstd_layers_and_labels() -> None:
    rule_runner = make_rule_runner("--hostprocess-compression=zstd")
    rule_runner.write_files(
        {
            "apps/agent/BUILD": dedent(
                """
                files(name="bin", sources=["bin/**/*"])
                hostprocess_image(
                    name="agent",
                    dependencies=[":bin"],
                    media_types="docker",
                    labels={"org.example.team": "nodes"},
                    image_tags=["1.0", "latest"],
                    repository="windows/agent",
                    output_formats=["oci-layout", "docker-archive"],
                    output_path="images/agent",
                )
                """
            ),
            "apps/agent/bin/agent.exe": b"MZ" + bytes(range(256)) * 64,
            "apps/agent/bin/conf/agent.yaml": "level: info\n",
        }
    )
    files = package(rule_runner, Address("apps/agent", target_name="agent"))
    assert set(files) >= {
        "images/agent.image.json",
        "images/agent.docker.tar",
        "images/agent/index.json",
    }

    summary = json.loads(files["images/agent.image.json"])
    manifest = json.loads(blob(files, "images/agent", summary["digest"]))
    assert manifest["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
    assert manifest["config"]["mediaType"] == "application/vnd.docker.container.image.v1+json"
    assert [l["mediaType"] for l in manifest["layers"]] == [
        "application/vnd.docker.image.rootfs.diff.tar.zstd"
    ] * 2
    assert "platform" not in json.dumps(manifest)

    index = json.loads(files["images/agent/index.json"])
    assert [m["annotations"]["org.opencontainers.image.ref.name"] for m in index["manifests"]] == [
        "1.0",
        "latest",
    ]
    assert {m["digest"] for m in index["manifests"]} == {summary["digest"]}

    config = json.loads(blob(files, "images/agent", manifest["config"]["digest"]))
    assert config["config"]["Labels"] == {"org.example.team": "nodes"}
    user_layer = (
        zstandard.ZstdDecompressor()
        .stream_reader(io.BytesIO(blob(files, "images/agent", manifest["layers"][1]["digest"])))
        .read()
    )
    assert "sha256:" + hashlib.sha256(user_layer).hexdigest() == config["rootfs"]["diff_ids"][1]
    with tarfile.open(fileobj=io.BytesIO(user_layer)) as tar:
        assert tar.getnames() == [
            "Hives",
            "Files",
            "Files/bin",
            "Files/bin/agent.exe",
            "Files/bin/conf",
            "Files/bin/conf/agent.yaml",
        ]

    with tarfile.open(fileobj=io.BytesIO(files["images/agent.docker.tar"])) as tar:
        [entry] = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
    assert entry["RepoTags"] == ["windows/agent:1.0", "windows/agent:latest"]


def test_relocated_files_and_gzip_level() -> None:
    rule_runner = make_rule_runner("--hostprocess-compression-level=3")
    rule_runner.write_files(
        {
            "shared/BUILD": "files(name='scripts', sources=['start.ps1'])",
            "shared/start.ps1": "Write-Output start\n",
            "apps/BUILD": dedent(
                """
                relocated_files(name="moved", files_targets=["shared:scripts"], src="shared", dest="apps/scripts")
                hostprocess_image(name="app", dependencies=[":moved"], annotations={"org.opencontainers.image.source": "repo"})
                """
            ),
        }
    )
    files = package(rule_runner, Address("apps", target_name="app"))
    summary = json.loads(files["apps/app.image.json"])
    manifest = json.loads(blob(files, "apps/app", summary["digest"]))
    assert manifest["annotations"] == {"org.opencontainers.image.source": "repo"}
    layer = gzip.decompress(blob(files, "apps/app", manifest["layers"][1]["digest"]))
    with tarfile.open(fileobj=io.BytesIO(layer)) as tar:
        assert tar.extractfile("Files/scripts/start.ps1").read() == b"Write-Output start\n"  # type: ignore[union-attr]
    documents = {"apps/app.spdx.json", "apps/app.provenance.json"}  # by default
    outputs = {"apps/app.image.json", "apps/app/oci-layout", "apps/app/index.json", *documents}
    assert set(files) == outputs | {
        f"apps/app/blobs/sha256/{d.split(':')[1]}"
        for d in [
            summary["digest"],
            summary["config"]["digest"],
            *(l["digest"] for l in summary["layers"]),
        ]
    }


def test_hostprocess_files_is_one_target_whose_files_land_as_files_would() -> None:
    """The same tree through `files` (a target per file) and `hostprocess_files` (one target),
    as a layer of its own and in `dependencies`: the same layers, byte for byte."""
    rule_runner = make_rule_runner()
    tree = {f"apps/node/lib/mod{i}.js": f"export const m{i} = {i};\n" for i in range(30)}
    rule_runner.write_files(
        {
            **tree,
            "apps/node/node.exe": "MZ",
            "apps/start.ps1": "Start-Agent",
            "apps/BUILD": dedent(
                """
                files(name="node-files", sources=["node/**/*"])
                files(name="script-files", sources=["start.ps1"])
                hostprocess_files(name="node", sources=["node/**/*", "!node/lib/mod29.js"])
                hostprocess_files(name="script", sources=["start.ps1"])
                hostprocess_image(name="by-files", layers=[":node-files"], dependencies=[":script-files"])
                hostprocess_image(name="by-tree", layers=[":node"], dependencies=[":script"])
                """
            ),
        }
    )
    targets = rule_runner.request(AllTargets, [])
    assert sum(t.alias == "hostprocess_files" for t in targets) == 2
    assert sum(t.alias == "file" for t in targets) == len(tree) + 2  # `files` made one per file
    by_files = package(rule_runner, Address("apps", target_name="by-files"))
    by_tree = package(rule_runner, Address("apps", target_name="by-tree"))
    files_layers = json.loads(by_files["apps/by-files.image.json"])["layers"]
    tree_layers = json.loads(by_tree["apps/by-tree.image.json"])["layers"]
    assert tree_layers[2] == files_layers[2]  # the script layer
    node = gzip.decompress(blob(by_tree, "apps/by-tree", tree_layers[1]["digest"]))
    with tarfile.open(fileobj=io.BytesIO(node)) as tar:
        names = set(tar.getnames())
    assert "Files/node/node.exe" in names and "Files/node/lib/mod28.js" in names
    assert "Files/node/lib/mod29.js" not in names  # excluded by `!`


@pytest.mark.parametrize("odd_name", ["", "scripts/dir1/report[1].txt"])
def test_a_large_tree_goes_in_as_subtrees_and_writes_the_layer_the_writer_writes(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, odd_name: str
) -> None:
    """Subtrees of at most 8 small files as immutable inputs; the rest, and a large file,
    loose (names with glob characters too): the layer is the one the writer makes from the
    same files on disk, outside any sandbox."""
    monkeypatch.setattr(sandbox_inputs, "MAX_FILES", 8)
    tree = {
        f"agent/scripts/dir{d}/f{i}.ps1": f"# {d}.{i}{odd_name}\n"
        for d in range(4)
        for i in range(6)
    }
    tree |= {
        "agent/scripts/loose.ps1": "loose",
        "agent/top.txt": "top",
        "agent/a/b/c/deep.txt": "deep",
    }
    if odd_name:
        tree[f"agent/{odd_name}"] = "odd"
    tree["agent/scripts/dir0/agent.exe"] = "MZ" + "x" * (1 << 20)  # large: stays loose
    rule_runner = make_rule_runner()
    rule_runner.write_files(
        {
            **tree,
            "BUILD": 'hostprocess_files(name="tree", sources=["agent/**/*"])\nhostprocess_image(name="img", dependencies=[":tree"])',
        }
    )
    files = package(rule_runner, Address("", target_name="img"))
    [_, built] = json.loads(files["img.image.json"])["layers"]
    root = Path(rule_runner.build_root)
    layer_files = [LayerFile(path, root / path) for path in sorted(tree)]
    with open(tmp_path / "layer", "wb") as out:
        expected = write_layer(
            layer_files, out, base=False, compression=Compression.GZIP, level=1, mtime=0
        )
    assert built["digest"] == expected.digest


def write_app(rule_runner: RuleRunner, fields: str) -> Address:
    rule_runner.write_files(
        {
            "apps/BUILD": dedent(
                f"""
                files(name="bin", sources=["bin/*", "*.ps1"])
                hostprocess_image(name="app", dependencies=[":bin"], {fields})
                """
            ),
            "apps/bin/agent.exe": "MZ",
            "apps/start.ps1": "Start-Agent",
        }
    )
    return Address("apps", target_name="app")


def test_a_missing_entrypoint_program_fails_the_build() -> None:
    rule_runner = make_rule_runner()
    error = package_error(rule_runner, write_app(rule_runner, 'entrypoint=["agent.exe", "--run"]'))
    assert isinstance(error, ImageBuildError)
    message = str(error)
    assert message.startswith(
        "The `hostprocess_image` target apps:app would not run on a Windows node:\n"
        "  [entrypoint-program] The command line `agent.exe --run` starts `agent.exe`"
    )
    assert "C:\\bin\\agent.exe" in message  # what the image does hold
    assert "set by the `entrypoint`, `cmd` or `dependencies` field" in message


def test_the_seed_pattern_with_a_script_the_image_lacks_fails_the_build() -> None:
    rule_runner = make_rule_runner()
    address = write_app(rule_runner, 'entrypoint=["powershell.exe", "./other.ps1"]')
    message = str(package_error(rule_runner, address))
    assert (
        "  [entrypoint-script] The command line `powershell.exe ./other.ps1` has PowerShell run "
        "`./other.ps1`, but the image holds no C:\\other.ps1"
    ) in message
    assert "nearest files the image holds: C:\\start.ps1" in message
    assert "add 'entrypoint-script' to the target's `skip_checks`" in message


def test_skip_checks_builds_anyway_and_warnings_are_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rule_runner = make_rule_runner()
    fields = (
        'entrypoint=["powershell.exe", "./other.ps1"], skip_checks=["entrypoint-script"], '
        'env={"AGENT_HOME": "C:\\\\bin"}'
    )
    with caplog.at_level(logging.WARNING):
        package(rule_runner, write_app(rule_runner, fields))
    [warning] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warning.startswith(
        "The `hostprocess_image` target apps:app may not run as expected on a Windows node:\n"
        "  [env-paths] `Env` sets AGENT_HOME=C:\\bin"
    )
    assert "write it as %CONTAINER_SANDBOX_MOUNT_POINT%\\bin" in warning


def test_an_unknown_check_name_is_refused() -> None:
    rule_runner = make_rule_runner()
    with pytest.raises(ExecutionError) as exc:
        package(rule_runner, write_app(rule_runner, 'skip_checks=["entrypoint-scripts"]'))
    assert "skip_checks" in str(exc.value) and "entrypoint-script" in str(exc.value)


def package_error(rule_runner: RuleRunner, address: Address) -> Exception:
    with pytest.raises(ExecutionError) as exc:
        package(rule_runner, address)
    wrapped = wrapped_error(exc.value)
    return wrapped


def test_a_base_the_image_cannot_stand_on_is_reported_on_the_base_field() -> None:
    rule_runner = make_rule_runner()
    rule_runner.write_files(
        {
            "img/BUILD": "hostprocess_image(name='parent')\nhostprocess_image(name='child', base=':parent', architecture='arm64')"
        }
    )
    error = package_error(rule_runner, Address("img", target_name="child"))
    assert isinstance(error, ImageBuildError)
    assert str(error) == (
        "The `base` of the `hostprocess_image` target img:child cannot be used: the base image is for 'amd64', "
        "but this image is for 'arm64': set `architecture` to match, or use a base for 'arm64'."
    )


def test_other_build_errors_are_not_blamed_on_the_base(monkeypatch: pytest.MonkeyPatch) -> None:
    def build_image(*args: object, **kwargs: object) -> None:
        raise ValueError("a fault in the image assembly")

    monkeypatch.setattr(image_rules, "build_image", build_image)
    rule_runner = make_rule_runner()
    rule_runner.write_files({"img/BUILD": "hostprocess_image(name='img')"})
    error = package_error(rule_runner, Address("img", target_name="img"))
    assert type(error) is ValueError and str(error) == "a fault in the image assembly"


def test_image_tool_from_a_user_resolve_writes_the_same_image() -> None:
    """`[hostprocess-image-tool].install_from_resolve`, as for any Pants tool: a user's resolve
    that locks the same versions gives the same bytes as the lockfile inside the plugin."""
    resolve_options = (
        "--python-enable-resolves",
        "--python-resolves={'python-default': 'default.lock', 'tools': 'tools.lock'}",
        "--python-resolves-to-interpreter-constraints={'tools': ['CPython>=3.9,<3.13']}",
        "--hostprocess-image-tool-install-from-resolve=tools",
        "--hostprocess-image-tool-requirements=['isal', 'zstandard']",
    )
    digests, resolves = [], []
    for options in ((), resolve_options):
        rule_runner = make_rule_runner(*options, query_rules=[QueryRule(ImageToolSubsystem, [])])
        requirements = rule_runner.request(ImageToolSubsystem, []).pex_request(EMPTY_DIGEST)
        resolves.append(getattr(requirements.requirements, "from_superset", None))
        # The user's lockfile: the same pins as the plugin's (its header lists them).
        assert ImageToolSubsystem.default_lockfile_resource is not None
        lockfile = read_resource(*ImageToolSubsystem.default_lockfile_resource)
        rule_runner.write_files(
            {
                "tools.lock": lockfile,
                "app/BUILD": 'files(name="f", sources=["a.ps1"])\n'
                'hostprocess_image(name="app", dependencies=[":f"])\n',
                "app/a.ps1": "Write-Output 'same bytes'\r\n",
            }
        )
        files = package(rule_runner, Address("app", target_name="app"))
        digests.append(json.loads(files["app/app.image.json"])["digest"])
    assert resolves == [None, Resolve("tools", use_entire_lockfile=False)]
    assert digests[0] == digests[1]
