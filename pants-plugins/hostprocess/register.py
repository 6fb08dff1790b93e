"""Entry point of the hostprocess Pants backend (`backend_packages = ["hostprocess"]`)."""

from __future__ import annotations

from hostprocess.goals import image_test, package, publish
from hostprocess.subsystem import HostProcessSubsystem
from hostprocess.image_test_target import HostProcessImageTestTarget
from hostprocess.target_types import HostProcessImageTarget
from hostprocess.util_rules import inputs, layers, pull, tool


def target_types() -> list:
    return [HostProcessImageTarget, HostProcessImageTestTarget]


def rules() -> list:
    return [
        *HostProcessSubsystem.rules(),
        *tool.rules(),
        *inputs.rules(),
        *layers.rules(),
        *pull.rules(),
        *package.rules(),
        *publish.rules(),
        *image_test.rules(),
    ]
