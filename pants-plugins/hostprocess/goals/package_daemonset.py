"""`pants package` for `hostprocess_daemonset`: its manifests, written under dist/.

The manifests themselves are made by `hostprocess.util_rules.daemonset`.
"""

from __future__ import annotations

from pants.core.goals.package import BuiltPackage, BuiltPackageArtifact, PackageFieldSet
from pants.engine.rules import Get, Rule, collect_rules, rule
from pants.engine.unions import UnionRule
from pants.util.logging import LogLevel

from hostprocess.util_rules.daemonset import DaemonSetManifests, HostProcessDaemonSetFieldSet


@rule(desc="Package a HostProcess DaemonSet", level=LogLevel.DEBUG)
async def package_hostprocess_daemonset(field_set: HostProcessDaemonSetFieldSet) -> BuiltPackage:
    result = await Get(DaemonSetManifests, HostProcessDaemonSetFieldSet, field_set)
    artifacts = tuple(
        BuiltPackageArtifact(m.path, (f"Pins {m.reference}",)) for m in result.manifests
    )
    return BuiltPackage(result.files, artifacts)


def rules() -> tuple[Rule | UnionRule, ...]:
    return (*collect_rules(), UnionRule(PackageFieldSet, HostProcessDaemonSetFieldSet))
