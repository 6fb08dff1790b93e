"""Entry point of the hostprocess Pants backend (`backend_packages = ["hostprocess"]`)."""

from __future__ import annotations

# First, so a Pants version the plugin does not support fails with one clear message.
from hostprocess.pants_version import check_pants_version

check_pants_version()

# isort: split
from pants.engine.rules import Rule
from pants.engine.target import Target
from pants.engine.unions import UnionRule

from hostprocess.goals import (
    image_test,
    package,
    package_daemonset,
    publish,
    publish_daemonset,
    tailor,
)
from hostprocess.subsystem import HostProcessSubsystem
from hostprocess.target_types.daemonset import HostProcessDaemonSetTarget
from hostprocess.target_types.files import HostProcessFilesTarget
from hostprocess.target_types.image import HostProcessImageTarget
from hostprocess.target_types.image_test import HostProcessImageTestTarget
from hostprocess.util_rules import (
    archive,
    daemonset,
    dockerfile,
    documents,
    external_base,
    image,
    inputs,
    layers,
    tool,
)


def target_types() -> list[type[Target]]:
    return [
        HostProcessImageTarget,
        HostProcessFilesTarget,
        HostProcessDaemonSetTarget,
        HostProcessImageTestTarget,
    ]


def rules() -> list[Rule | UnionRule]:
    return [
        *HostProcessSubsystem.rules(),
        *tool.rules(),
        *dockerfile.rules(),
        *inputs.rules(),
        *layers.rules(),
        *external_base.rules(),
        *image.rules(),
        *documents.rules(),
        *archive.rules(),
        *daemonset.rules(),
        *package.rules(),
        *publish.rules(),
        *package_daemonset.rules(),
        *publish_daemonset.rules(),
        *image_test.rules(),
        *tailor.rules(),
    ]
