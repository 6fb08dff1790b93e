"""Running checks by name over what is known of an image.

At package time only the config and the destinations of the image's files are known (and
not even those under an external base); the image test runner reads everything back from the
image's archive. A check that needs what is not known is not run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Collection, Mapping

from hostprocess.compat import command_line, image, runtime
from hostprocess.compat.catalog import CHECKS, Finding
from hostprocess.compat.image_files import ImageFiles


@dataclass(frozen=True)
class ImageFacts:
    config: Mapping[str, Any]
    files: ImageFiles | None  # None: not known
    index: Mapping[str, Any] = field(default_factory=dict)
    manifest: Mapping[str, Any] | None = None  # None: not known (package time)
    layer_names: tuple[tuple[str, ...], ...] | None = None  # each layer's tar entry names


def _with_files(
    check: Callable[[Mapping[str, Any], ImageFiles], list[Finding]]
) -> Callable[[ImageFacts], list[Finding] | None]:
    return lambda facts: None if facts.files is None else check(facts.config, facts.files)


def _program(config: Mapping[str, Any], files: ImageFiles) -> list[Finding]:
    found = command_line.missing_program(command_line.CommandLine.of(config), files)
    return [found] if found else []


def _scripts(config: Mapping[str, Any], files: ImageFiles) -> list[Finding]:
    return command_line.missing_scripts(command_line.CommandLine.of(config), files)


def _manifest(facts: ImageFacts) -> list[Finding] | None:
    if facts.manifest is None:
        return None
    return image.single_manifest_findings(facts.index, facts.manifest)


def _windows(facts: ImageFacts) -> list[Finding] | None:
    if facts.layer_names is None:
        return None
    return image.windows_image_findings(facts.config, facts.layer_names)


# Checks decided from facts; the layer and hive checks read layers (see the image test runner).
FACT_CHECKS: dict[str, Callable[[ImageFacts], list[Finding] | None]] = {
    "windows-image": _windows,
    "single-manifest": _manifest,
    "no-os-version": lambda facts: runtime.os_version_findings(facts.config),
    "entrypoint-program": _with_files(_program),
    "entrypoint-script": _with_files(_scripts),
    "path-keeps-system32": lambda facts: runtime.path_findings(facts.config),
    "working-dir": lambda facts: runtime.working_dir_findings(facts.config),
    "env-paths": _with_files(runtime.env_path_findings),
    "user": lambda facts: runtime.user_findings(facts.config),
}


def run_checks(facts: ImageFacts, names: Collection[str]) -> dict[str, list[Finding]]:
    """The findings of each named check that the facts can decide, in catalogue order."""
    results = {}
    for name in CHECKS:
        if name in names and name in FACT_CHECKS:
            found = FACT_CHECKS[name](facts)
            if found is not None:
                results[name] = found
    return results


def package_time_checks(skipped: Collection[str]) -> tuple[str, ...]:
    return tuple(
        name for name, check in CHECKS.items() if check.at_package_time and name not in skipped
    )
