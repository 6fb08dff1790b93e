"""The plugin installed as users install it: its wheel, named in `[GLOBAL].plugins`.

`./pants package pants-plugins:dist` builds the wheel in a copy of this repository. A sample
repository in a temporary directory outside the checkout holds only pants.toml, BUILD files
and the example sources; Pants resolves the plugin from a `find_links` directory with no
package index at all (the tools' lockfiles name their own artifact URLs), and there:
`package ::` builds examples:hello with the digest this repository builds, the Dockerfile
image and a DaemonSet; `test ::` runs a `hostprocess_image_test`; `publish ::` pushes to a
loopback `docker-registry`, checked with skopeo; `help` lists the targets and tool scopes.
"""
from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import pytest

import hostprocess
from e2e.checkout import Checkout, copy_repo
from rules.rule_runners import pex_cli_settings

pytest.register_assert_rewrite("oci.registry_servers")
from oci.registry_servers import RegistryServer, skopeo_output  # noqa: E402

pytest_plugins = ["oci.registry_servers"]

DISTRIBUTION = "pants-backend-hostprocess"
# examples:hello as this repository builds it (README, tests/e2e/test_publish.py).
HELLO_DIGEST = "sha256:7e3a3dacaa9b6ce7995ecb814f8c637f70ef7e47fd14cd220b22240604f8f1f7"
TOOL_SCOPES = (
    "hostprocess-image-tool",
    "hostprocess-dockerfile-parser",
    "hostprocess-image-test-runner",
)
# What a user's repository holds besides pants.toml: this repository's example sources.
EXAMPLE_FILES = (
    "examples/BUILD",
    "examples/hello-world.ps1",
    "examples/dockerfile/BUILD",
    "examples/dockerfile/Dockerfile.windows",
    "examples/dockerfile/hello-world.ps1",
)
DAEMONSET_BUILD = """\
hostprocess_daemonset(name="hello-daemonset", image="//examples:hello", namespace="kube-system")
"""
DAEMONSET = "examples.deploy/hello-daemonset.yaml"


def toml(value: object) -> str:
    return json.dumps(value)  # TOML basic strings and arrays of them are JSON's


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    checkout = copy_repo(tmp_path_factory.mktemp("wheel") / "repo")
    checkout.pants("package", "pants-plugins:dist")
    [built] = checkout.dist.glob("pants_backend_hostprocess-*.whl")
    wheels = tmp_path_factory.mktemp("find-links")
    return Path(shutil.copy2(built, wheels))


@pytest.fixture(scope="module")
def sample(
    tmp_path_factory: pytest.TempPathFactory, wheel: Path, anonymous_registry: RegistryServer
) -> Checkout:
    """A user's repository: three lines of [GLOBAL], find_links, and this machine's settings
    (the pex tool ./pants built, pip.conf ignored); run by a checkout's launcher."""
    launcher = copy_repo(tmp_path_factory.mktemp("launcher") / "repo").root / "pants"
    root = tmp_path_factory.mktemp("sample")
    for name in EXAMPLE_FILES:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(name, root / name)
    (root / "examples/deploy").mkdir()
    (root / "examples/deploy/BUILD").write_text(DAEMONSET_BUILD)
    pex_cli = pex_cli_settings()
    (root / "pants.toml").write_text(
        f"""\
[GLOBAL]
pants_version = "2.17.1"
plugins = [{toml(f"{DISTRIBUTION}=={hostprocess.__version__}")}]
backend_packages = ["pants.backend.python", "hostprocess"]

[python-repos]
find_links = [{toml(wheel.parent.as_uri())}]
indexes = []

[pex-cli]
version = {toml(pex_cli["version"])}
known_versions = {toml(pex_cli["known_versions"])}
url_template = {toml(pex_cli["url_template"])}

[subprocess-environment]
env_vars = ["PIP_CONFIG_FILE=/dev/null"]

[hostprocess.registries.loopback]
address = {toml(anonymous_registry.host)}
default = true
"""
    )
    return Checkout(root, launcher=str(launcher))


def test_wheel_holds_the_plugin_its_tools_lockfiles_and_the_legal_code(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        [metadata] = [n for n in names if n.endswith(".dist-info/METADATA")]
        requires = [
            line
            for line in archive.read(metadata).decode().splitlines()
            if line.startswith("Requires-Dist")
        ]
        legalcode = archive.read("hostprocess/oci/cc0-legalcode.txt")
    assert requires == [], "resolving the plugin must not install a second Pants"
    assert {
        "hostprocess/register.py",
        "hostprocess/oci/cli.py",
        "hostprocess/subsystems/image_tool.lock",
        "hostprocess/subsystems/dockerfile_parser.lock",
        "hostprocess/subsystems/image_test_runner.lock",
    } <= names
    assert legalcode == Path("cc0-legalcode.txt").read_bytes()


def test_help_lists_the_targets_and_tool_scopes(sample: Checkout) -> None:
    targets = sample.pants("help", "targets").stdout
    for alias in ("hostprocess_image", "hostprocess_image_test", "hostprocess_daemonset"):
        assert alias in targets, targets
    subsystems = sample.pants("help", "subsystems").stdout
    for scope in TOOL_SCOPES:
        assert scope in subsystems, subsystems
        assert f"Config section: [{scope}]" in sample.pants("help", scope).stdout


def test_package_test_and_publish(sample: Checkout, anonymous_registry: RegistryServer) -> None:
    packaged = sample.pants("package", "::").stdout
    assert f"Wrote dist/examples/hello\nImage digest: {HELLO_DIGEST}\n" in packaged, packaged
    assert "Wrote dist/examples.dockerfile/dockerfile\nImage digest: sha256:" in packaged
    reference = f"{anonymous_registry.host}/examples/hello@{HELLO_DIGEST}"
    assert f"Pins {reference}" in packaged
    assert reference in (sample.dist / DAEMONSET).read_text()

    tested = sample.pants("test", "::").stdout
    assert "✓ examples:hello-test succeeded" in tested, tested

    published = sample.pants("publish", "::").stdout
    host = anonymous_registry.host
    assert f"✓ {host}/examples/hello:latest published to {host} as {HELLO_DIGEST}." in published
    assert f"✓ dist/{DAEMONSET} published to dist/ as a manifest pinning {reference}." in published
    assert json.loads(skopeo_output(f"{host}/examples/hello:latest"))["Digest"] == HELLO_DIGEST
    dockerfile = json.loads(
        (sample.dist / "examples.dockerfile/dockerfile.image.json").read_bytes()
    )
    pushed = json.loads(skopeo_output(f"{host}/examples/dockerfile/dockerfile:latest"))
    assert pushed["Digest"] == dockerfile["digest"]
