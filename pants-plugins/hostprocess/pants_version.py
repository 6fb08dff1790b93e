"""The Pants versions the plugin supports, checked as Pants loads it (register.py).

The wheel does not depend on `pantsbuild.pants` (resolving that would install a second copy
of Pants into the plugin environment), so this check is what stops a wrong Pants version.
"""

from __future__ import annotations

import pants.version

import hostprocess

# Pants' plugin API changes between minor releases: one minor series at a time.
SUPPORTED_SERIES = (2, 17)
SUPPORTED_RANGE = ">=2.17.0,<2.18"


class UnsupportedPantsVersion(ImportError):
    """An ImportError, so Pants reports it as this backend failing to load, message first."""


def check_pants_version(version: str | None = None) -> None:
    """Raise unless `version` (default: the running Pants') is in the supported range."""
    version = version or pants.version.VERSION
    major, minor, *_ = version.split(".")
    if (int(major), int(minor)) != SUPPORTED_SERIES:
        raise UnsupportedPantsVersion(
            f"The hostprocess plugin {hostprocess.__version__} supports Pants {SUPPORTED_RANGE}, "
            f"but this is Pants {version}. Set `pants_version` in pants.toml to a supported "
            f"version, or pin `[GLOBAL].plugins` to a release of pants-backend-hostprocess that "
            f"supports Pants {version}."
        )
