"""The one RuleRunner factory for tests that run the image tool (and its sibling PEXes).

Each runner gets the plugin's rules and targets, the real lockfiles of the resolves it needs
(paths and interpreter constraints as pants.toml declares them), and the pex tool that
./pants built, at the path and version pants.toml pins.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Iterable, Sequence

import tomli
from pants.core.target_types import FilesGeneratorTarget
from pants.core.target_types import rules as core_target_type_rules
from pants.core.util_rules import source_files
from pants.engine.internals.scheduler import ExecutionError
from pants.engine.target import Target
from pants.testutil.rule_runner import QueryRule, RuleRunner

from hostprocess import register
from pinned_versions import read_pinned_versions

IMAGE_TOOL_RESOLVE = "hostprocess-tool"
BASE_LICENSE = "cc0-legalcode.txt"  # the built-in base layer's license text


def pex_tool_options() -> list[str]:
    """`[pex-cli]` options naming ./pants' pex tool (HOSTPROCESS_BUILD_ROOT: pants.toml)."""
    pins = read_pinned_versions()
    pex_tool = pins.pex_tool(Path(os.environ["HOSTPROCESS_BUILD_ROOT"]))
    assert pex_tool.is_file(), f"{pex_tool} is missing: run ./pants once to build it"
    sha256 = hashlib.sha256(pex_tool.read_bytes()).hexdigest()
    known_version = f"{pins.pex_cli_version}|linux_x86_64|{sha256}|{pex_tool.stat().st_size}"
    return [
        f"--pex-cli-version={pins.pex_cli_version}",
        f"--pex-cli-known-versions=['{known_version}']",
        f"--pex-cli-url-template=file://{pex_tool}",
    ]


def resolve_options(resolves: Iterable[str]) -> tuple[list[str], list[str]]:
    """The lockfiles of `resolves` and the `--python-*` options declaring them, from pants.toml."""
    python = tomli.loads(Path("pants.toml").read_text())["python"]
    lockfiles = {name: python["resolves"][name] for name in resolves}
    constraints = {name: python["resolves_to_interpreter_constraints"][name] for name in resolves}
    # The tests' own resolve is never built here: a placeholder lockfile path will do.
    all_lockfiles = {"python-default": "default.lock", **lockfiles}
    options = [
        "--python-enable-resolves",
        f"--python-resolves={all_lockfiles}",
        f"--python-resolves-to-interpreter-constraints={constraints}",
    ]
    return list(lockfiles.values()), options


def tool_rule_runner(
    *resolves: str,
    target_types: Sequence[type[Target]] = (),
    query_rules: Sequence[QueryRule] = (),
    options: Sequence[str] = (),
) -> RuleRunner:
    """A RuleRunner that builds images: the image tool's resolve, plus `resolves`.

    `target_types` and `query_rules` come beside the plugin's and the `files` target;
    `options` are extra flags such as `--hostprocess-compression=zstd`.
    """
    runner = RuleRunner(
        target_types=[*register.target_types(), FilesGeneratorTarget, *target_types],
        rules=[
            *register.rules(),
            *core_target_type_rules(),
            *source_files.rules(),
            *query_rules,
        ],
    )
    lockfiles, python_options = resolve_options([IMAGE_TOOL_RESOLVE, *resolves])
    runner.write_files({path: Path(path).read_bytes() for path in [BASE_LICENSE, *lockfiles]})
    runner.set_options(
        [*python_options, *pex_tool_options(), *options],
        env_inherit={"PATH", "PYENV_ROOT", "HOME", "PIP_CONFIG_FILE", "SSL_CERT_FILE"},
    )
    return runner


def wrapped_error(error: ExecutionError) -> Exception:
    """The one exception a failed rule raised (Pants wraps it; 2.17 leaves the tuple untyped)."""
    wrapped: Sequence[Exception] = error.wrapped_exceptions
    assert len(wrapped) == 1, f"expected one wrapped exception, got {wrapped!r}"
    return wrapped[0]
