"""Running checks by name over what is known of an image.

At package time only the config and the destinations of the image's files are known (and
not even those under an external base); the image test runner reads everything back from the
image's archive. A check that needs what is not known is not run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Collection, Mapping

from hostprocess.compat import command_line, image, layers, runtime
from hostprocess.compat.catalog import CHECKS, Finding
from hostprocess.compat.image_files import ImageFiles
from hostprocess.compat.layers import LayerListing


@dataclass(frozen=True)
class ImageFacts:
    config: Mapping[str, Any]
    files: ImageFiles | None  # None: not known
    index: Mapping[str, Any] = field(default_factory=dict)
    manifest: Mapping[str, Any] | None = None  # None: not known (package time)
    layers: tuple[LayerListing, ...] | None = None  # None: not read (package time)


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
    if facts.layers is None:
        return None
    names = [[entry.name for entry in layer.entries] for layer in facts.layers]
    return image.windows_image_findings(facts.config, names)


def _hives(facts: ImageFacts) -> list[Finding] | None:
    if not facts.layers:
        return None
    return layers.hive_findings(facts.layers[0])


def caveats(facts: ImageFacts, names: Collection[str]) -> dict[str, list[str]]:
    """What a passing check could not decide, by check (shown beside its verdict)."""
    if "base-hives" not in names or not facts.layers:
        return {}
    found = layers.hive_caveats(facts.layers[0])
    return {"base-hives": found} if found else {}


# Checks decided one by one; the layer rules are decided together, layer by layer.
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
    "base-hives": _hives,
}


def run_checks(facts: ImageFacts, names: Collection[str]) -> dict[str, list[Finding]]:
    """The findings of each named check that the facts can decide, in catalogue order."""
    results = {}
    for name in CHECKS:
        if name in names and name in FACT_CHECKS:
            found = FACT_CHECKS[name](facts)
            if found is not None:
                results[name] = found
    if facts.layers is not None and any(name in names for name in layers.LAYER_CHECKS):
        by_rule = layers.layer_findings(facts.layers)
        results.update((name, by_rule[name]) for name in layers.LAYER_CHECKS if name in names)
    return {name: results[name] for name in CHECKS if name in results}


def package_time_checks(skipped: Collection[str]) -> tuple[str, ...]:
    return tuple(
        name for name, check in CHECKS.items() if check.at_package_time and name not in skipped
    )
