"""The `hostprocess_image` target and its fields.

Field values are validated here, when BUILD files are parsed, so a mistake is reported
with the target's address before anything is built.
"""

from __future__ import annotations

import re
from typing import Any, Callable, ClassVar, Optional

from pants.core.goals.package import OutputPathField
from pants.engine.addresses import Address
from pants.engine.target import (
    COMMON_TARGET_FIELDS,
    AsyncFieldMixin,
    BoolField,
    Dependencies,
    DictStringToStringField,
    OptionalSingleSourceField,
    SpecialCasedDependencies,
    StringField,
    StringSequenceField,
    Target,
    TriBoolField,
)
from pants.util.strutil import help_text

from hostprocess.compat.suite import package_time_checks
from hostprocess.oci.image import ARCHITECTURES
from hostprocess.oci.reference import (
    is_registry_component,
    name_without_tag,
    validate_repository,
    validate_tag,
)
from hostprocess.oci.types import MEDIA_TYPES
from hostprocess.registries import ALL_DEFAULT_REGISTRIES
from hostprocess.target_types.fields import SkipChecksField, invalid_field

ENV_KEY_RE = re.compile(r"[^=\x00]+")
# An absolute Windows path (`C:\...`) or one under the container's mount point variable.
WORKING_DIR_RE = re.compile(r"(?:[A-Za-z]:\\|%CONTAINER_SANDBOX_MOUNT_POINT%(?:\\|$)).*")
ALIAS = "hostprocess_image"
OUTPUT_FORMATS = ("oci-layout", "oci-archive", "docker-archive")


class HostProcessImageDependenciesField(Dependencies):
    help = help_text(
        """
        What goes into the image: `files`, `resources`, `relocated_files` and
        `file(source=http_source(...))` targets (and their own dependencies), and packageable
        targets (`archive`, `pex_binary`, ...), whose outputs are built and placed in it.

        Each file lands at `C:\\` plus its path relative to this target's directory:
        `examples/hello-world.ps1` packaged by `examples:hello` becomes `C:\\hello-world.ps1`.
        Files outside this target's directory are an error: move them under it with
        `relocated_files`. A package's outputs land at `C:\\` plus their output path without
        the package target's default output directory (`C:\\dashboards.zip` for
        `archive(name="dashboards")`).
        """
    )


class BaseImageField(StringField, AsyncFieldMixin):
    alias = "base"
    help = help_text(
        """
        What the image is built on. Unset: the built-in base layer (licence texts and empty
        registry hives, like Microsoft's HostProcess base image). The address of another
        `hostprocess_image` (e.g. `//images/org-base`): its layers come first, unchanged, and
        its config is inherited (`env` and `labels` merge; `entrypoint`, `cmd`, `working_dir`
        and `user` replace). Or an external image pinned by digest,
        `registry/repository@sha256:<digest>` (e.g. Microsoft's published base image): pulled
        once, verified blob by blob, and cached by digest.
        """
    )

    @classmethod
    def compute_value(cls, raw_value: Optional[str], address: Address) -> Optional[str]:
        value = super().compute_value(raw_value, address)
        if value and is_external_reference(value) and "@sha256:" not in value:
            fix = pin_by_digest(value, "an external base", "every build uses the same bytes")
            raise invalid_field(ALIAS, address, cls.alias, value, fix)
        return value


def pin_by_digest(value: str, subject: str, why: str) -> str:
    """The fix for a registry reference without a digest: its pinned form, and how to find it."""
    return (
        f"{subject} must be pinned by digest, so that {why}: "
        f"`{name_without_tag(value)}@sha256:<digest>`. Find the digest with "
        f"`skopeo inspect --format '{{{{.Digest}}}}' docker://{value}`."
    )


def is_external_reference(value: str) -> bool:
    """`registry/repo[:tag][@digest]` rather than a Pants address: it starts with a registry host."""
    if "@" in value:
        return True
    first, slash, _ = value.partition("/")
    return bool(slash) and is_registry_component(first)


def _is_valid(validate: Callable[[str], None], value: str) -> bool:
    """Whether the core's `validate` accepts `value` (its reason is replaced by the field's fix)."""
    try:
        validate(value)
    except ValueError:
        return False
    return True


class LayersField(SpecialCasedDependencies):
    alias = "layers"
    help = help_text(
        """
        Targets that each become a layer of their own, in this order, before a last layer of
        the remaining `dependencies`. Put large, rarely-changing content (binaries) first and
        small, often-changing files (scripts) last: a change then rebuilds and re-pushes only
        its layer. To put several targets in one layer, group them with
        `target(name=..., dependencies=[...])`. A path in a later layer replaces the same path
        in an earlier one.
        """
    )


class DockerfileField(OptionalSingleSourceField):
    alias = "dockerfile"
    uses_source_roots = False
    help = help_text(
        """
        A Dockerfile to build, e.g. `Dockerfile.windows` (relative to this BUILD file), as
        `docker buildx build` would with the Dockerfile's directory as the build context. Its
        `FROM`, `ADD`/`COPY`, `ENV`, `LABEL`, `ENTRYPOINT`, `CMD`, `WORKDIR`, `USER`, `SHELL`
        and `ARG` replace the `base`, `entrypoint`, `cmd`, `env`, `working_dir`, `user`,
        `labels` and `layers` fields, which must then be unset (`base` may only name the
        `hostprocess_image` that a `FROM` without a digest means). The files that `ADD`/`COPY`
        name come from `files`/`resources` targets, found by dependency inference. `RUN` and
        multi-stage builds are refused: see the README's "Building a Dockerfile" section.
        """
    )


class BuildArgsField(DictStringToStringField):
    alias = "build_args"
    help = help_text(
        """
        Values for the Dockerfile's `ARG`s, overriding their defaults (like
        `docker build --build-arg NAME=value`), e.g. `{"VERSION": "1.2.3"}`. Only with
        `dockerfile`.
        """
    )


class DockerfileLayersField(StringField):
    alias = "dockerfile_layers"
    default = "per-instruction"
    valid_choices = ("per-instruction", "one")
    help = help_text(
        """
        With `dockerfile`: `per-instruction` makes each `ADD`/`COPY` its own layer, as Docker
        does; `one` puts all the Dockerfile's files in one layer.
        """
    )


class EntrypointField(StringSequenceField):
    alias = "entrypoint"
    help = help_text(
        """
        The command the container runs, as a list (Docker's exec form), e.g.
        `["powershell.exe", "./hello-world.ps1"]`. `%CONTAINER_SANDBOX_MOUNT_POINT%` is replaced
        by the image's mount point on the node.
        """
    )


class CmdField(StringSequenceField):
    alias = "cmd"
    help = "Default arguments appended to `entrypoint` (Docker's `CMD`), as a list of strings."


class EnvField(DictStringToStringField):
    alias = "env"
    help = help_text(
        """
        Environment variables, e.g. `{"PATH": "C:\\\\Windows\\\\system32;C:\\\\Windows"}`. If you set
        `PATH`, keep `C:\\Windows\\system32;C:\\Windows` in it: the node's own PATH is replaced.
        """
    )

    @classmethod
    def compute_value(cls, raw_value: Optional[dict[str, str]], address: Address) -> Any:
        value = super().compute_value(raw_value, address)
        for key in value or {}:
            if not ENV_KEY_RE.fullmatch(key):
                raise invalid_field(
                    ALIAS,
                    address,
                    cls.alias,
                    key,
                    "environment variable names must be non-empty and must not contain `=`.",
                )
        return value


class WorkingDirField(StringField):
    alias = "working_dir"
    help = help_text(
        """
        The process's working directory. Leave it unset to start in the image's mount point
        (recommended), or name a directory of the image as `%CONTAINER_SANDBOX_MOUNT_POINT%\\app`.
        An absolute `C:\\` path fails the `working-dir` check: containerd 1.7 and later resolve
        it on the host, not in the image.
        """
    )

    @classmethod
    def compute_value(cls, raw_value: Optional[str], address: Address) -> Optional[str]:
        value = super().compute_value(raw_value, address)
        if value and not WORKING_DIR_RE.fullmatch(value):
            raise invalid_field(
                ALIAS,
                address,
                cls.alias,
                value,
                "use an absolute Windows path like `C:\\\\app`, or `%CONTAINER_SANDBOX_MOUNT_POINT%\\\\app`.",
            )
        return value


class UserField(StringField):
    alias = "user"
    help = help_text(
        """
        The account the process runs as, e.g. `NT AUTHORITY\\SYSTEM` or
        `NT AUTHORITY\\Local service`. Leave unset (as Microsoft's base image does) to let the pod's
        `runAsUserName` decide. A named or domain user fails the `user` check: HostProcess
        containers run as a service account or a local group.
        """
    )


class LabelsField(DictStringToStringField):
    alias = "labels"
    help = "Labels recorded in the image config (`config.Labels`)."


class AnnotationsField(DictStringToStringField):
    alias = "annotations"
    help = "Annotations recorded in the image manifest (OCI media types only)."


class ArchitectureField(StringField):
    alias = "architecture"
    value: str
    default = "amd64"
    valid_choices = ARCHITECTURES
    help = "The CPU architecture recorded in the image config."


class MediaTypesField(StringField):
    alias = "media_types"
    value: str
    default = "oci"
    valid_choices = tuple(MEDIA_TYPES)
    help = help_text(
        """
        `oci` for OCI media types, or `docker` for Docker schema 2 (for registries or tools that
        predate OCI). Either way the image is one manifest with no platform.
        """
    )


class ImageTagsField(StringSequenceField):
    alias = "image_tags"
    default = ("latest",)
    help = help_text(
        """
        Tags of the image. In the OCI layout each becomes an index entry annotated
        `org.opencontainers.image.ref.name`; `publish` pushes each of them.
        """
    )

    @classmethod
    def compute_value(cls, raw_value: Optional[Any], address: Address) -> Any:
        value = super().compute_value(raw_value, address)
        for tag in value or ():
            if not _is_valid(validate_tag, tag):
                raise invalid_field(
                    ALIAS,
                    address,
                    cls.alias,
                    tag,
                    "tags are 1-128 characters of letters, digits, `_`, `.` and `-`, not starting with `.` or `-`.",
                )
        return value


class RepositoryField(StringField, AsyncFieldMixin):
    alias = "repository"
    help = help_text(
        """
        The repository name, e.g. `windows/node-agent`. Defaults to
        `[hostprocess].default_repository` (`{directory}/{name}`: `examples/hello` for
        `examples:hello`), with the same placeholders.
        """
    )

    @classmethod
    def compute_value(cls, raw_value: Optional[str], address: Address) -> Optional[str]:
        value = super().compute_value(raw_value, address)
        if value is not None and "{" not in value and not _is_valid(validate_repository, value):
            raise invalid_field(
                ALIAS,
                address,
                cls.alias,
                value,
                "repository names are lowercase path components of letters and digits separated by `/`, with `.`, `_`, `__` or `-` inside components.",
            )
        return value

    def value_or_default(self, default_template: str) -> str:
        """The repository, with `{name}`, `{directory}` and `{parent_directory}` filled in."""
        template = self.value or default_template
        directory = self.address.spec_path
        try:
            value = template.format(
                name=self.address.target_name,
                directory=directory,
                parent_directory=directory.rsplit("/", 1)[-1],
            )
        except (KeyError, IndexError, ValueError) as e:
            raise invalid_field(
                ALIAS,
                self.address,
                self.alias,
                template,
                f"unknown placeholder {e}: use {{name}}, {{directory}} or {{parent_directory}}.",
            ) from None
        value = "/".join(part for part in value.split("/") if part)
        if not _is_valid(validate_repository, value):
            raise invalid_field(
                ALIAS,
                self.address,
                self.alias,
                value,
                "repository names are lowercase path components of letters and digits separated by `/`, with `.`, `_`, `__` or `-` inside components (set `repository` explicitly).",
            )
        return value


class RegistriesField(StringSequenceField):
    alias = "registries"
    default = (ALL_DEFAULT_REGISTRIES,)
    help = help_text(
        """
        Where `publish` pushes the image: `@alias` of an entry in `[hostprocess].registries`, or
        a `host[:port]`. Defaults to every registry configured with `"default": true`.
        """
    )


class SkipPushField(BoolField):
    alias = "skip_push"
    default = False
    help = "If true, `publish` leaves this image out (and does not build it)."


class OutputFormatsField(StringSequenceField):
    alias = "output_formats"
    default = ("oci-layout",)
    valid_choices: ClassVar[tuple[str, ...]] = OUTPUT_FORMATS
    help = help_text(
        f"""
        What `package` writes under `dist/`: any of {", ".join(f"`{f}`" for f in OUTPUT_FORMATS)}.
        `oci-layout` is a directory; `oci-archive` is that directory as a tar; `docker-archive`
        is a tar that `docker load` and `ctr import` accept (the format Microsoft's base image
        build emits). An `<name>.image.json` summary is always written.
        """
    )

    @classmethod
    def compute_value(cls, raw_value: Optional[Any], address: Address) -> Any:
        value = super().compute_value(raw_value, address)  # checks `valid_choices`
        if not value:
            raise invalid_field(ALIAS, address, cls.alias, [], "list at least one output format.")
        return value


SBOM_FORMATS = ("spdx", "cyclonedx")


class SbomFormatsField(StringSequenceField):
    alias = "sbom_formats"
    default = None
    valid_choices: ClassVar[tuple[str, ...]] = SBOM_FORMATS
    help = help_text(
        """
        The SBOMs `package` writes beside the image and `publish` attaches to it: `spdx`
        (SPDX 2.3 JSON) and `cyclonedx` (CycloneDX 1.6 JSON). Unset: `[hostprocess].sbom_formats`
        (by default `["spdx"]`); `[]`: none.
        """
    )


class ProvenanceField(TriBoolField):
    alias = "provenance"
    help = help_text(
        """
        Whether `package` writes a SLSA v1 build provenance for the image and `publish`
        attaches it. Unset: `[hostprocess].provenance` (by default true).
        """
    )


class SignField(TriBoolField):
    alias = "sign"
    help = help_text(
        """
        Whether `publish` signs the image and its SBOMs and provenance with the signing key
        configured for the registry (`[hostprocess].signing_key`, or the registry's own
        `signing_key`). Unset: sign wherever a key is configured; `False`: never;
        `True`: fail before pushing anything when a registry has no key.
        """
    )


class ImageSkipChecksField(SkipChecksField):
    help = help_text(
        f"""
        Compatibility checks `package` leaves out, by name (the README's table says what each
        prevents). `package` runs the cheap ones on every build:
        {", ".join(f"`{name}`" for name in package_time_checks(()))}; an error-level finding
        fails the build, a warning-level one is logged. `hostprocess_image_test` runs them all,
        with its own `skip_checks`.
        """
    )


class HostProcessImageTarget(Target):
    alias = ALIAS
    core_fields = (
        *COMMON_TARGET_FIELDS,
        HostProcessImageDependenciesField,
        DockerfileField,
        BuildArgsField,
        DockerfileLayersField,
        BaseImageField,
        LayersField,
        EntrypointField,
        CmdField,
        EnvField,
        WorkingDirField,
        UserField,
        LabelsField,
        AnnotationsField,
        ArchitectureField,
        SbomFormatsField,
        ProvenanceField,
        SignField,
        MediaTypesField,
        ImageTagsField,
        RepositoryField,
        RegistriesField,
        SkipPushField,
        OutputFormatsField,
        OutputPathField,
        ImageSkipChecksField,
    )
    help = help_text(
        """
        A Windows HostProcess container image: a base (by default the built-in base layer,
        with licence texts and empty registry hives like Microsoft's HostProcess base image)
        plus layers of this target's files and packages, as one platform-free manifest that
        containerd pulls on every Windows Server version.
        """
    )
