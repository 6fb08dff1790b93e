"""The compatibility checks `package` runs on every image it builds (the cheap ones).

Run in the rule, on the config and the files' destinations already in memory: no process, no
extra reading. Errors fail the build naming the target, the field that set the value and the
way out; warnings are logged. The image test runner runs every check on the finished image.
"""

from __future__ import annotations

import json
import logging
from typing import Sequence

from hostprocess.compat.catalog import CHECKS, Finding, Severity
from hostprocess.compat.image_files import ImageFiles
from hostprocess.compat.suite import ImageFacts, package_time_checks, run_checks
from hostprocess.oci.image import Image
from hostprocess.util_rules.errors import ImageBuildError

logger = logging.getLogger(__name__)

# Which fields (or Dockerfile instructions) set what each check reads.
FIELDS = {
    "entrypoint-program": ("`entrypoint`, `cmd` or `dependencies`", "ENTRYPOINT or CMD"),
    "entrypoint-script": ("`entrypoint`, `cmd` or `dependencies`", "ENTRYPOINT, CMD or COPY"),
    "path-keeps-system32": ("`env`", "ENV"),
    "working-dir": ("`working_dir`", "WORKDIR"),
    "env-paths": ("`env`", "ENV"),
    "user": ("`user`", "USER"),
}


def check_image(
    address: str,
    image: Image,
    files: Sequence[str] | None,
    skipped: Sequence[str],
    from_dockerfile: bool,
) -> None:
    """Log the warnings, raise the errors, of the package-time checks not in `skipped`."""
    facts = ImageFacts(json.loads(image.config), None if files is None else ImageFiles.of(files))
    results = run_checks(facts, package_time_checks(skipped))
    errors = [f for name, found in results.items() for f in found if _is_error(name)]
    warnings = [f for name, found in results.items() for f in found if not _is_error(name)]
    for finding in warnings:
        logger.warning(_message(address, [finding], from_dockerfile, "may not run as expected"))
    if errors:
        raise ImageBuildError(_message(address, errors, from_dockerfile, "would not run"))


def _is_error(name: str) -> bool:
    return CHECKS[name].severity is Severity.ERROR


def _message(address: str, findings: Sequence[Finding], from_dockerfile: bool, verdict: str) -> str:
    lines = [f"The `hostprocess_image` target {address} {verdict} on a Windows node:"]
    for finding in findings:
        fields, instructions = FIELDS[finding.check]
        source = f"the Dockerfile's {instructions}" if from_dockerfile else f"the {fields} field"
        lines.append(f"  [{finding.check}] {finding.message}")
        lines.extend(f"      {note}" for note in finding.notes)
        lines.append(f"      set by {source} (or inherited from the base image)")
    names = sorted({f.check for f in findings})
    lines.append(
        f"Fix the value, or add {', '.join(repr(n) for n in names)} to the target's "
        "`skip_checks` if the node is set up for it (the README's compatibility-check table "
        "says what each check prevents)."
    )
    return "\n".join(lines)
