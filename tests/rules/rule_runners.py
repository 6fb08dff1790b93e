"""The one RuleRunner factory for tests that run the image tool (and its sibling PEXes).

Each runner gets the plugin's rules and targets, whose tools install from the lockfiles
inside the plugin package (as for a user of the wheel), and the pex tool that ./pants built,
at the path and version pants.toml pins.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

from pants.build_graph.build_file_aliases import BuildFileAliases
from pants.core.target_types import FilesGeneratorTarget
from pants.core.target_types import rules as core_target_type_rules
from pants.core.util_rules import source_files
from pants.engine.internals.scheduler import ExecutionError
from pants.engine.target import Target
from pants.testutil.rule_runner import RuleRunner

from hostprocess import register
from pinned_versions import read_pinned_versions


def pex_cli_settings() -> dict[str, Any]:
    """`[pex-cli]` settings naming ./pants' pex tool (HOSTPROCESS_BUILD_ROOT: pants.toml)."""
    pins = read_pinned_versions()
    pex_tool = pins.pex_tool(Path(os.environ["HOSTPROCESS_BUILD_ROOT"]))
    assert pex_tool.is_file(), f"{pex_tool} is missing: run ./pants once to build it"
    sha256 = hashlib.sha256(pex_tool.read_bytes()).hexdigest()
    known_version = f"{pins.pex_cli_version}|linux_x86_64|{sha256}|{pex_tool.stat().st_size}"
    return {
        "version": pins.pex_cli_version,
        "known_versions": [known_version],
        "url_template": f"file://{pex_tool}",
    }


def pex_tool_options() -> list[str]:
    """The same settings as `--pex-cli-*` flags."""
    settings = pex_cli_settings()
    return [
        f"--pex-cli-version={settings['version']}",
        f"--pex-cli-known-versions={settings['known_versions']}",
        f"--pex-cli-url-template={settings['url_template']}",
    ]


def download_options() -> list[str]:
    """What ./pants sets for pex's downloads of the tools' lockfiles: no machine pip.conf, and
    the machine's CA bundle (SSL_CERT_FILE, when a TLS-inspecting proxy needs one)."""
    options = ["--subprocess-environment-env-vars=['PIP_CONFIG_FILE=/dev/null']"]
    if os.environ.get("SSL_CERT_FILE"):
        options.append(f"--ca-certs-path={os.environ['SSL_CERT_FILE']}")
    return options


def tool_rule_runner(
    target_types: Sequence[type[Target]] = (),
    query_rules: Sequence[Any] = (),
    options: Sequence[str] = (),
    objects: Mapping[str, Any] = {},
) -> RuleRunner:
    """A RuleRunner that builds images, parses Dockerfiles and runs image tests.

    `target_types` and `query_rules` (and any other rules) come beside the plugin's and the
    `files` target;
    `options` are extra flags such as `--hostprocess-compression=zstd`; `objects` are BUILD
    file symbols such as `http_source`.
    """
    runner = RuleRunner(
        target_types=[*register.target_types(), FilesGeneratorTarget, *target_types],
        rules=[
            *register.rules(),
            *core_target_type_rules(),
            *source_files.rules(),
            *query_rules,
        ],
        aliases=[BuildFileAliases(objects=dict(objects))],
    )
    runner.set_options(
        [*pex_tool_options(), *download_options(), *options],
        env_inherit={"PATH", "PYENV_ROOT", "HOME", "PIP_CONFIG_FILE", "SSL_CERT_FILE"},
    )
    return runner


def wrapped_error(error: ExecutionError) -> Exception:
    """The one exception a failed rule raised (Pants wraps it; 2.17 leaves the tuple untyped)."""
    wrapped: Sequence[Exception] = error.wrapped_exceptions
    assert len(wrapped) == 1, f"expected one wrapped exception, got {wrapped!r}"
    return wrapped[0]
