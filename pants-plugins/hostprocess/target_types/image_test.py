"""The `hostprocess_image_test` target: assertions on a built `hostprocess_image`, or on an
image in a registry pinned by digest.

Values are validated here, when BUILD files are parsed: a path that is not a `C:\\` path,
a regex that container-structure-test (Go's RE2) could not compile, or an unknown key is
reported with the target, the field and the value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping, Optional

from pants.engine.addresses import Address
from pants.engine.target import (
    COMMON_TARGET_FIELDS,
    AsyncFieldMixin,
    BoolField,
    Dependencies,
    DictStringToStringField,
    Field,
    IntField,
    MultipleSourcesField,
    StringField,
    StringSequenceField,
    Target,
)
from pants.util.strutil import help_text

from hostprocess.compat.catalog import CHECK_NAMES
from hostprocess.oci.image import ARCHITECTURES
from hostprocess.oci.reference import Reference
from hostprocess.target_types.fields import SkipChecksField, invalid_field
from hostprocess.target_types.image import is_external_reference, pin_by_digest

ALIAS = "hostprocess_image_test"
FILE_KEYS = ("exists", "type", "matches", "equals", "size")
FILE_TYPES = ("file", "directory")
WINDOWS_PATH_RE = re.compile(
    r"[Cc]:\\(?:[^\\/:*?\"<>|\x00-\x1f]+(?:\\[^\\/:*?\"<>|\x00-\x1f]+)*\\?)?"
)
# Perl syntax that Python's `re` accepts and Go's RE2 (container-structure-test) refuses.
RE2_UNSUPPORTED = re.compile(r"\(\?[=!]|\(\?<[=!]|\(\?P=|\\[1-9]|\(\?>|[*+?}][+]")


class ImageField(StringField, AsyncFieldMixin):
    alias = "image"
    required = True
    value: str
    help = help_text(
        """
        The image to test. The address of a `hostprocess_image`, e.g. `":hello"` or
        `"//examples/node-agent"`: its docker archive (built as `package` would, and cached)
        is what the assertions read. Or an image in a registry pinned by digest,
        `registry/repository@sha256:<digest>` (e.g. an image someone else built): pulled as an
        external `base` is (the same `[hostprocess].registries` options and credentials,
        verified blob by blob, cached by digest) but whatever its platform, so that a Linux
        image is reported by the `windows-image` check rather than refused. A manifest list
        fails, listing its manifests: test one of them by its digest.
        """
    )

    @classmethod
    def compute_value(cls, raw_value: Optional[str], address: Address) -> Optional[str]:
        value = super().compute_value(raw_value, address)
        if value and is_external_reference(value):
            check_pinned_reference(address, cls.alias, value)
        return value


def check_pinned_reference(address: Address, alias: str, value: str) -> Reference:
    """A registry reference pinned by digest, or the error naming the target, field and fix."""
    try:
        reference = Reference.parse(value)
    except ValueError as e:
        raise invalid_field(
            ALIAS,
            address,
            alias,
            value,
            f"{e}. Name a `hostprocess_image` target, or an image in a registry pinned by "
            "digest, `registry/repository@sha256:<digest>`.",
        ) from None
    if reference.registry is None:
        raise invalid_field(
            ALIAS,
            address,
            alias,
            value,
            "an image in a registry is named with its registry host, "
            f"`registry/{reference.repository}@sha256:<digest>` (e.g. `127.0.0.1:5000/...`).",
        )
    if reference.digest is None:
        why = "the test always reads the same bytes (and its result can be cached)"
        fix = pin_by_digest(value, "an image from a registry", why)
        raise invalid_field(ALIAS, address, alias, value, fix)
    return reference


class ImageTestDependenciesField(Dependencies):
    help = help_text(
        """
        Other targets this test depends on. The `image`, when it names a `hostprocess_image`,
        is added automatically.
        """
    )


@dataclass(frozen=True)
class FileAssertion:
    path: str  # as written, `C:\...`
    exists: bool = True
    type: Optional[str] = None
    matches: tuple[str, ...] = ()
    equals: Optional[str] = None  # a checked-in file, relative to the BUILD file's directory
    size: Optional[int] = None

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "exists": self.exists,
            "type": self.type,
            "matches": list(self.matches),
            "size": self.size,
        }


def check_regex(address: Address, alias: str, pattern: Any) -> str:
    if not isinstance(pattern, str):
        raise invalid_field(
            ALIAS, address, alias, pattern, "a regular expression must be a string."
        )
    try:
        re.compile(pattern)
    except re.error as e:
        raise invalid_field(
            ALIAS, address, alias, pattern, f"the regular expression does not compile: {e}."
        ) from None
    if RE2_UNSUPPORTED.search(pattern):
        raise invalid_field(
            ALIAS,
            address,
            alias,
            pattern,
            "container-structure-test uses Go's RE2 syntax, which has no lookaround, "
            "backreferences, atomic groups or possessive quantifiers.",
        )
    return pattern


def _file_assertion(address: Address, alias: str, path: Any, spec: Any) -> FileAssertion:
    if not isinstance(path, str) or not WINDOWS_PATH_RE.fullmatch(path):
        raise invalid_field(
            ALIAS,
            address,
            alias,
            path,
            'keys are absolute Windows paths on drive C:, e.g. "C:\\\\hello-world.ps1" '
            "(in a BUILD file, write each backslash twice).",
        )
    if not isinstance(spec, Mapping):
        raise invalid_field(
            ALIAS,
            address,
            alias,
            {path: spec},
            f"each path maps to a dict with keys among {', '.join(FILE_KEYS)}.",
        )
    unknown = sorted(set(spec) - set(FILE_KEYS))
    if unknown:
        raise invalid_field(
            ALIAS,
            address,
            alias,
            {path: dict(spec)},
            f"unknown keys {unknown}: use {', '.join(FILE_KEYS)}.",
        )
    exists = spec.get("exists", True)
    if not isinstance(exists, bool):
        raise invalid_field(ALIAS, address, alias, {path: dict(spec)}, "`exists` is True or False.")
    if not exists and len(spec) > 1:
        raise invalid_field(
            ALIAS,
            address,
            alias,
            {path: dict(spec)},
            "a path that must not exist takes no other keys.",
        )
    kind = spec.get("type")
    if kind is not None and kind not in FILE_TYPES:
        raise invalid_field(
            ALIAS, address, alias, {path: dict(spec)}, f"`type` is one of {', '.join(FILE_TYPES)}."
        )
    matches = spec.get("matches", ())
    matches = (matches,) if isinstance(matches, str) else tuple(matches)
    for pattern in matches:
        check_regex(address, alias, pattern)
    equals = spec.get("equals")
    if equals is not None and (
        not isinstance(equals, str)
        or not equals
        or equals.startswith("/")
        or ".." in equals.split("/")
    ):
        raise invalid_field(
            ALIAS,
            address,
            alias,
            {path: dict(spec)},
            "`equals` names a checked-in file, relative to this BUILD file's directory.",
        )
    size = spec.get("size")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
        raise invalid_field(
            ALIAS, address, alias, {path: dict(spec)}, "`size` is a number of bytes (an int >= 0)."
        )
    if kind == "directory" and (matches or equals or size is not None):
        raise invalid_field(
            ALIAS,
            address,
            alias,
            {path: dict(spec)},
            "a directory has no content: drop `matches`, `equals` and `size`.",
        )
    return FileAssertion(path, exists, kind, matches, equals, size)


class FilesAssertionsField(Field):
    alias = "files"
    value: Optional[tuple[FileAssertion, ...]]
    default = None
    help = help_text(
        """
        Assertions on paths of the image, as a dict from a `C:\\` path to what must hold there:
        `exists` (default True; False: nothing at this path, compared case-insensitively),
        `type` (`file` or `directory`), `matches` (a regular expression, or a list of them,
        each of which must match somewhere in the content; Go RE2 syntax), `equals` (a checked-in
        file, relative to this BUILD file, whose bytes the file must have), `size` (bytes).
        Example: `{"C:\\\\hello-world.ps1": {"type": "file", "matches": "Hello"}, "C:\\\\debug.log": {"exists": False}}`.
        """
    )

    @classmethod
    def compute_value(
        cls, raw_value: Optional[Any], address: Address
    ) -> Optional[tuple[FileAssertion, ...]]:
        value = super().compute_value(raw_value, address)
        if value is None:
            return None
        if not isinstance(value, Mapping):
            raise invalid_field(
                ALIAS, address, cls.alias, value, "a dict from `C:\\` paths to assertions."
            )
        return tuple(
            _file_assertion(address, cls.alias, path, spec) for path, spec in value.items()
        )


class ExpectedEntrypointField(StringSequenceField):
    alias = "entrypoint"
    help = "The exact `Entrypoint` the image must have (`[]`: none)."


class ExpectedCmdField(StringSequenceField):
    alias = "cmd"
    help = "The exact `Cmd` the image must have (`[]`: none)."


class ExpectedEnvField(DictStringToStringField):
    alias = "env"
    help = help_text(
        """
        Environment variables the image must set, with these exact values (names compare
        case-insensitively, as on Windows). Others may be set too, unless `env_exact=True`.
        """
    )


class EnvExactField(BoolField):
    alias = "env_exact"
    default = False
    help = "If true, the image must set no environment variables besides those in `env`."


class ExpectedWorkingDirField(StringField):
    alias = "working_dir"
    help = 'The `WorkingDir` the image must have (`""`: unset, which starts in the mount point).'


class ExpectedUserField(StringField):
    alias = "user"
    help = 'The `User` the image must have, e.g. `NT AUTHORITY\\SYSTEM` (`""`: unset).'


class ExpectedLabelsField(DictStringToStringField):
    alias = "labels"
    help = "Labels (`config.Labels`) the image must have, with these exact values."


class ExpectedAnnotationsField(DictStringToStringField):
    alias = "annotations"
    help = "Manifest annotations the image must have, with these exact values."


class ExpectedArchitectureField(StringField):
    alias = "architecture"
    valid_choices = ARCHITECTURES
    help = "The architecture the image's config must record."


class ExpectedOsField(StringField):
    alias = "os"
    help = "The `os` the image's config must record (HostProcess images say `windows`)."


class LayerCountField(IntField):
    alias = "layer_count"
    help = "How many layers the image must have (base layers included)."

    @classmethod
    def compute_value(cls, raw_value: Optional[int], address: Address) -> Optional[int]:
        value = super().compute_value(raw_value, address)
        if value is not None and value < 1:
            raise invalid_field(
                ALIAS, address, cls.alias, value, "an image has at least one layer."
            )
        return value


class TestSkipChecksField(SkipChecksField):
    help = help_text(
        f"""
        Compatibility checks this test leaves out, by name; all run by default:
        {", ".join(f"`{name}`" for name in CHECK_NAMES)}. The README's table says what each
        checks and the node-side error it prevents.
        """
    )


class StructureTestConfigsField(MultipleSourcesField):
    alias = "config"
    expected_file_extensions = (".yaml", ".yml", ".json")
    help = help_text(
        """
        Checked-in container-structure-test configs (`schemaVersion: 2.0.0`) run as they are
        against the image's docker archive with the `tar` driver: file paths there are Linux
        paths of the layer, `/Files/...` for `C:\\...`; command tests need a container runtime and fail.
        """
    )


class HostProcessImageTestTarget(Target):
    alias = ALIAS
    core_fields = (
        *COMMON_TARGET_FIELDS,
        ImageField,
        ImageTestDependenciesField,
        FilesAssertionsField,
        ExpectedEntrypointField,
        ExpectedCmdField,
        ExpectedEnvField,
        EnvExactField,
        ExpectedWorkingDirField,
        ExpectedUserField,
        ExpectedLabelsField,
        ExpectedAnnotationsField,
        ExpectedArchitectureField,
        ExpectedOsField,
        LayerCountField,
        TestSkipChecksField,
        StructureTestConfigsField,
    )
    help = help_text(
        """
        Structure tests of a built `hostprocess_image`, or of an image in a registry pinned by
        digest, run by `pants test`: files at `C:\\` paths, config and manifest fields, and
        HostProcess rules, checked with
        container-structure-test's `tar` driver (no daemon) and the plugin's own reader.
        Each test is one cached process keyed by the image's bytes and the test's definition.
        """
    )
