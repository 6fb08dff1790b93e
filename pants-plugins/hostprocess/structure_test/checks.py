"""Structure tests of a built image, written in Windows terms.

A test spec (JSON, written by the `hostprocess_image_test` rule) lists assertions on `C:\\`
paths and config fields. Those that GoogleContainerTools' container-structure-test can
decide become one-test configs for its `tar` driver, with `C:\\` paths translated to the
layer's `Files/` paths (in the letter case the image holds, since Windows names compare
case-insensitively and the driver's extraction does not). The rest (file kind, size, exact
content, annotations, the platform fields, HostProcess rules) are checked here, against
`archive_reader`'s view of the image. Every outcome carries what was expected and what the
image holds, so a failure can be fixed without unpacking the image.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from hostprocess.compat.catalog import CHECKS
from hostprocess.compat.runtime import env
from hostprocess.compat.suite import ImageFacts, caveats, run_checks
from hostprocess.oci.windows.paths import windows_path
from hostprocess.structure_test.archive_reader import ArchivedImage, ImageFile, sha256_file

CST = "container-structure-test"
OURS = "hostprocess"
CST_SCHEMA = "2.0.0"


@dataclass(frozen=True)
class Outcome:
    """The verdict on one assertion."""

    name: str  # what was asserted, e.g. `C:\\hello-world.ps1 exists`
    passed: bool
    expected: str
    actual: str
    by: str  # who decided: container-structure-test or hostprocess
    notes: tuple[str, ...] = ()  # e.g. the nearest existing paths, the tool's own errors


@dataclass(frozen=True)
class CstCheck:
    """An assertion container-structure-test decides: its one-test config and our explanation."""

    name: str
    config: dict[str, Any]
    expected: str
    actual: str
    notes: tuple[str, ...] = ()

    def outcome(self, passed: bool, errors: Sequence[str]) -> Outcome:
        tool_notes = () if passed else tuple(f"{CST}: {e}" for e in errors)
        return Outcome(self.name, passed, self.expected, self.actual, CST, self.notes + tool_notes)


@dataclass
class Plan:
    """The assertions in the order the test lists them; the tool decides the `CstCheck`s."""

    items: list[CstCheck | Outcome] = field(default_factory=list)

    @property
    def cst(self) -> list[CstCheck]:
        return [item for item in self.items if isinstance(item, CstCheck)]

    def outcomes(self, results: Sequence[Mapping[str, Any]]) -> list[Outcome]:
        """Pair the tool's results (one per generated config, in order) with its checks."""
        checks = self.cst
        if len(results) != len(checks):
            raise ValueError(f"{CST} reported {len(results)} results for {len(checks)} tests")
        decided = iter(
            c.outcome(bool(r.get("Pass")), r.get("Errors") or ()) for c, r in zip(checks, results)
        )
        return [next(decided) if isinstance(item, CstCheck) else item for item in self.items]


def relative_path(path: str) -> str:
    """`C:\\a\\b.txt` -> `a/b.txt` (the spec's paths were validated as `C:\\` paths)."""
    return "/".join(part for part in path[3:].replace("/", "\\").split("\\") if part)


def _describe(found: ImageFile | None) -> str:
    if found is None:
        return "no such path"
    if found.is_dir:
        return f"a directory at {windows_path(found.path)}"
    return f"a file of {found.size} bytes at {windows_path(found.path)}"


def _cst_path(image: ArchivedImage, relative: str) -> str:
    found = image.find(relative)
    return "/Files/" + (found.path if found else relative)


def _cst(
    name: str, body: dict[str, Any], expected: str, actual: str, notes: tuple[str, ...] = ()
) -> CstCheck:
    return CstCheck(name, {"schemaVersion": CST_SCHEMA, **body}, expected, actual, notes)


def _own(
    name: str, passed: bool, expected: str, actual: str, notes: tuple[str, ...] = ()
) -> Outcome:
    return Outcome(name, passed, expected, actual, OURS, notes)


def plan_file(image: ArchivedImage, spec: Mapping[str, Any], plan: Plan) -> None:
    """Assertions on one `C:\\` path."""
    path = spec["path"]
    relative = relative_path(path)
    found = image.find(relative) if relative else ImageFile("", True, 0)
    actual = _describe(found)
    nearest = (
        ()
        if found
        else (
            f"nearest existing paths: {', '.join(image.paths.nearest(relative, directories=True)) or '(none)'}",
        )
    )
    cst_path = _cst_path(image, relative)
    exists = spec.get("exists", True)
    if not exists:
        plan.items.append(
            _cst(
                f"{path} does not exist",
                {"fileExistenceTests": [{"name": path, "path": cst_path, "shouldExist": False}]},
                "no file or directory at this path (names compare case-insensitively)",
                actual,
            )
        )
        return
    plan.items.append(
        _cst(
            f"{path} exists",
            {"fileExistenceTests": [{"name": path, "path": cst_path, "shouldExist": True}]},
            "a file or directory at this path",
            actual,
            nearest,
        )
    )
    kind = spec.get("type")
    if kind:
        is_dir = kind == "directory"
        passed = found is not None and found.is_dir == is_dir
        plan.items.append(_own(f"{path} is a {kind}", passed, f"a {kind}", actual, nearest))
    for pattern in spec.get("matches") or ():
        content = {"name": path, "path": cst_path, "expectedContents": [pattern]}
        plan.items.append(
            _cst(
                f"{path} content matches {pattern!r}",
                {"fileContentTests": [content]},
                f"content matching the regular expression {pattern!r} (RE2 syntax)",
                actual,
                nearest,
            )
        )
    if spec.get("size") is not None:
        size = int(spec["size"])
        passed = found is not None and not found.is_dir and found.size == size
        plan.items.append(
            _own(f"{path} is {size} bytes", passed, f"a file of {size} bytes", actual, nearest)
        )
    if spec.get("equals"):
        source, checked_in = spec["equals_source"], Path(spec["equals"])
        want = sha256_file(checked_in)
        size = checked_in.stat().st_size
        passed = found is not None and found.sha256 == want
        held = actual if not found or found.sha256 is None else f"{actual}, sha256 {found.sha256}"
        plan.items.append(
            _own(
                f"{path} equals {source}",
                passed,
                f"the bytes of {source} ({size} bytes, sha256 {want})",
                held,
                nearest,
            )
        )


def _env(image: ArchivedImage) -> dict[str, tuple[str, str]]:
    """Lower-cased name -> (name, value): Windows environment names ignore case."""
    return {key.lower(): (key, value) for key, value in env(image.config)}


def _show(value: Any) -> str:
    return "(unset)" if value in (None, "", [], {}) else repr(value)


def plan_metadata(image: ArchivedImage, spec: Mapping[str, Any], plan: Plan) -> None:
    runtime = image.config.get("config") or {}
    for key, cst_key, config_key in (
        ("entrypoint", "entrypoint", "Entrypoint"),
        ("cmd", "cmd", "Cmd"),
        ("working_dir", "workdir", "WorkingDir"),
        ("user", "user", "User"),
    ):
        want = spec.get(key)
        if want is None:
            continue
        have = runtime.get(config_key) or ([] if isinstance(want, list) else "")
        name = f"{key} is {_show(want)}"
        if want in ("", []):  # "unset": the tool treats an empty expectation as no check
            plan.items.append(_own(name, have == want, _show(want), _show(have)))
        else:
            plan.items.append(
                _cst(name, {"metadataTest": {cst_key: want}}, _show(want), _show(have))
            )
    env = _env(image)
    for key, value in (spec.get("env") or {}).items():
        name_in_image, have = env.get(key.lower(), (key, None))
        plan.items.append(
            _cst(
                f"env {key} is {value!r}",
                {"metadataTest": {"envVars": [{"key": name_in_image, "value": value}]}},
                repr(value),
                _show(have),
            )
        )
    if spec.get("env_exact"):
        want_env = {k.lower(): v for k, v in (spec.get("env") or {}).items()}
        have_env = {k: v for k, (_, v) in env.items()}
        extra = sorted(env[k][0] for k in set(have_env) - set(want_env))
        plan.items.append(
            _own(
                "env has no other variables",
                not extra,
                f"only {', '.join(sorted(spec.get('env') or {})) or '(no variables)'}",
                f"also {', '.join(extra)}" if extra else "no others",
            )
        )
    labels = runtime.get("Labels") or {}
    for key, value in (spec.get("labels") or {}).items():
        plan.items.append(
            _cst(
                f"label {key} is {value!r}",
                {"metadataTest": {"labels": [{"key": key, "value": value}]}},
                repr(value),
                _show(labels.get(key)),
            )
        )
    annotations = image.manifest.get("annotations") or {}
    for key, value in (spec.get("annotations") or {}).items():
        have = annotations.get(key)
        plan.items.append(
            _own(f"annotation {key} is {value!r}", have == value, repr(value), _show(have))
        )
    for key in ("architecture", "os"):
        want = spec.get(key)
        if want is not None:
            have = image.config.get(key)
            plan.items.append(_own(f"{key} is {want!r}", have == want, repr(want), _show(have)))
    if spec.get("layer_count") is not None:
        want_count, have_count = int(spec["layer_count"]), len(image.manifest.get("layers") or ())
        plan.items.append(
            _own(
                f"layer count is {want_count}",
                have_count == want_count,
                str(want_count),
                str(have_count),
            )
        )


def _facts(image: ArchivedImage) -> ImageFacts:
    return ImageFacts(
        image.config,
        image.paths,
        image.index,
        image.manifest,
        image.layers,
    )


def compat_outcomes(image: ArchivedImage, names: Sequence[str]) -> list[Outcome]:
    """One outcome per compatibility check: what must hold, and every finding against it."""
    facts = _facts(image)
    results, unchecked = run_checks(facts, names), caveats(facts, names)
    outcomes = []
    for name in names:
        check, found = CHECKS[name], results.get(name, [])
        notes = tuple(note for f in found for note in f.notes)
        if found:
            notes += (f"on a node: {check.prevents} (reported at {check.source})",)
        notes += tuple(f"not checked: {caveat}" for caveat in unchecked.get(name, ()))
        held = "\n".join(f.message for f in found).replace("\n", "\n        ")
        outcomes.append(_own(f"{name}: {check.summary}", not found, check.summary, held, notes))
    return outcomes


def plan(image: ArchivedImage, spec: Mapping[str, Any]) -> Plan:
    result = Plan()
    for file_spec in spec.get("files") or ():
        plan_file(image, file_spec, result)
    plan_metadata(image, spec, result)
    result.items.extend(compat_outcomes(image, spec.get("checks") or ()))
    return result


def hashed_paths(spec: Mapping[str, Any]) -> list[str]:
    """The image paths a spec compares byte for byte (only these are hashed)."""
    return [relative_path(f["path"]) for f in spec.get("files") or () if f.get("equals")]


def native_outcomes(config: str, results: Sequence[Mapping[str, Any]]) -> list[Outcome]:
    """Results of a checked-in container-structure-test config, reported as the tool gives them."""
    return [
        Outcome(
            f"{config}: {r.get('Name') or '(config)'}",
            bool(r.get("Pass")),
            "as the config says",
            "passed" if r.get("Pass") else "failed",
            CST,
            tuple(f"{CST}: {e}" for e in r.get("Errors") or ()),
        )
        for r in results
    ]


def render(target: str, image_name: str, outcomes: Sequence[Outcome]) -> str:
    """The text `pants test` shows: every assertion, failures with expected and actual."""
    failed = [o for o in outcomes if not o.passed]
    lines = [f"{target}: {len(outcomes)} assertions on the image {image_name}"]
    for outcome in outcomes:
        lines.append(f"  {'PASS' if outcome.passed else 'FAIL'}  {outcome.name}  [{outcome.by}]")
        if not outcome.passed:
            lines.append(f"        expected: {outcome.expected}")
            lines.append(f"        the image holds: {outcome.actual}")
        lines.extend(
            f"        {note}" for note in outcome.notes
        )  # a pass's: what it could not check
    lines.append(f"{len(outcomes) - len(failed)} passed, {len(failed)} failed")
    return "\n".join(lines) + "\n"


def failure_message(target: str, outcome: Outcome) -> str:
    return "\n".join(
        [
            f"{target}: {outcome.name}",
            f"expected: {outcome.expected}",
            f"the image holds: {outcome.actual}",
            *outcome.notes,
        ]
    )


def junit_xml(target: str, outcomes: Sequence[Outcome]) -> bytes:
    """A JUnit report (`--test-report`), one testcase per assertion."""
    failures = sum(not o.passed for o in outcomes)
    suites = ET.Element("testsuites", tests=str(len(outcomes)), failures=str(failures))
    suite = ET.SubElement(
        suites,
        "testsuite",
        name=target,
        tests=str(len(outcomes)),
        failures=str(failures),
        errors="0",
        skipped="0",
    )
    for outcome in outcomes:
        case = ET.SubElement(suite, "testcase", classname=target, name=outcome.name)
        if not outcome.passed:
            message = failure_message(target, outcome)
            failure = ET.SubElement(
                case, "failure", message=message.splitlines()[1], type=outcome.by
            )
            failure.text = message
    return ET.tostring(suites, encoding="utf-8", xml_declaration=True) + b"\n"
