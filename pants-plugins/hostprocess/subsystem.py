"""The `[hostprocess]` options: settings shared by every image in the repository."""

from __future__ import annotations

from typing import Any

from pants.option.option_types import (
    BoolOption,
    DictOption,
    EnumOption,
    FloatOption,
    IntOption,
    StrListOption,
    StrOption,
)
from pants.option.subsystem import Subsystem
from pants.util.strutil import softwrap

from hostprocess.oci.commands import DeadlineOptions
from hostprocess.oci.registry.deadline import DEFAULT_MIN_THROUGHPUT, DEFAULT_REQUEST_SECONDS
from hostprocess.oci.types import Compression
from hostprocess.registries import Registries
from hostprocess.target_types.image import SBOM_FORMATS

LEVEL_RANGES = {
    Compression.GZIP: range(0, 4),
    Compression.ZSTD: range(1, 23),
    Compression.NONE: range(0, 1),
}


class HostProcessSubsystem(Subsystem):
    options_scope = "hostprocess"
    help = "Options for building Windows HostProcess container images."

    compression = EnumOption(
        default=Compression.GZIP,
        help=softwrap(
            """
            How layers are compressed. `gzip` is what every containerd and registry accepts;
            `zstd` (containerd 1.5+) is smaller and faster to unpack; `none` writes plain tar.
            """
        ),
    )
    _compression_level = IntOption(
        "--compression-level",
        default=None,
        help=softwrap(
            """
            Compression level. gzip uses ISA-L's levels 0-3 (default 1: about zlib level 6's
            ratio at many times its speed); zstd uses 1-22 (default 3). The output is standard
            either way, and the same level always gives the same bytes.
            """
        ),
    )

    _registries = DictOption[Any](
        "--registries",
        help=softwrap(
            """
            Registries to publish to, by alias: `{"company": {"address": "registry.example.com",
            "default": true}}`. Keys: `address` (host[:port], required), `default` (targets
            whose `registries` field is unset push here), `insecure` (allow plain HTTP and
            unverified TLS; loopback registries need no flag), `ca_cert` (a PEM bundle to trust),
            `username_env`/`password_env` (names of environment variables holding credentials;
            otherwise Docker's config.json and credential helpers are used),
            `signing_key`/`signing_key_password_env` (override the options of those names for
            images pushed there), `skip_push`.
            """
        ),
    )
    default_repository = StrOption(
        default="{directory}/{name}",
        help=softwrap(
            """
            The repository of images whose `repository` field is unset. Placeholders:
            `{name}` (the target name), `{directory}` (its BUILD file's directory) and
            `{parent_directory}` (that directory's last component).
            """
        ),
    )

    registry_timeout = FloatOption(
        default=DEFAULT_REQUEST_SECONDS,
        help=softwrap(
            """
            Seconds one request to a registry may take from connecting to the last byte of its
            answer (a blob's transfer gets more, see `registry_min_throughput`). A request past
            its deadline is cut off and retried like a dropped connection, so a server that
            trickles bytes cannot hold a pull or a publish.
            """
        ),
    )
    registry_min_throughput = IntOption(
        default=DEFAULT_MIN_THROUGHPUT >> 10,
        help=softwrap(
            """
            The slowest a blob may stream to or from a registry, in KiB/s: a blob of N KiB gets
            N / this many seconds on top of `registry_timeout`.
            """
        ),
    )

    sbom_formats = StrListOption(
        default=["spdx"],
        help=softwrap(
            """
            The SBOMs written for images whose `sbom_formats` field is unset: `spdx` (SPDX 2.3
            JSON, which every scanner reads) and `cyclonedx` (CycloneDX 1.6 JSON). `[]` turns
            SBOMs off.
            """
        ),
    )
    provenance = BoolOption(
        default=True,
        help=softwrap(
            """
            Whether images whose `provenance` field is unset get a SLSA v1 build provenance.
            """
        ),
    )
    signing_key = StrOption(
        default="",
        help=softwrap(
            """
            The private key `publish` signs images and their attachments with: a PEM PKCS#8
            ECDSA P-256 key, or a `cosign.key` (cosign's encrypted format). A path relative to
            the build root, or absolute. Registries can override it (their `signing_key`). It
            is read only by the uncached push process, never put in a cache key or `dist/`.
            """
        ),
    )
    signing_key_password_env = StrOption(
        default="",
        help=softwrap(
            """
            The environment variable holding the signing key's password (e.g.
            `COSIGN_PASSWORD`), for an encrypted key. Registries can override it.
            """
        ),
    )

    def registry_deadlines(self) -> DeadlineOptions:
        if self.registry_timeout <= 0 or self.registry_min_throughput <= 0:
            raise ValueError(
                "[hostprocess].registry_timeout and registry_min_throughput must be positive, "
                f"not {self.registry_timeout} and {self.registry_min_throughput}."
            )
        return DeadlineOptions(self.registry_timeout, self.registry_min_throughput << 10)

    def sbom_formats_for(self, field: tuple[str, ...] | None) -> tuple[str, ...]:
        """The target's `sbom_formats`, or the repository's."""
        formats = self.sbom_formats if field is None else field
        unknown = sorted(set(formats) - set(SBOM_FORMATS))
        if unknown:
            raise ValueError(
                f"[hostprocess].sbom_formats has unknown formats {unknown}: use {list(SBOM_FORMATS)}."
            )
        return tuple(f for f in SBOM_FORMATS if f in formats)

    def registries(self) -> Registries:
        return Registries.from_dict(self._registries)

    @property
    def compression_level(self) -> int:
        level = self._compression_level
        if level is None:
            return self.compression.default_level
        allowed = LEVEL_RANGES[self.compression]
        if level not in allowed:
            raise ValueError(
                f"[hostprocess].compression_level = {level} is out of range for "
                f"{self.compression.value}: use {allowed.start}-{allowed.stop - 1}."
            )
        return level
