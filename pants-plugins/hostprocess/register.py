"""Entry point of the hostprocess Pants backend (`backend_packages = ["hostprocess"]`)."""

from __future__ import annotations

from hostprocess.goals import package, publish, tailor
from hostprocess.subsystem import HostProcessSubsystem
from hostprocess.target_types import HostProcessImageTarget
from hostprocess.util_rules import dockerfile, inputs, layers, pull, tool


def target_types() -> list:
    return [HostProcessImageTarget]


def rules() -> list:
    return [
        *HostProcessSubsystem.rules(),
        *tool.rules(),
        *dockerfile.rules(),
        *inputs.rules(),
        *layers.rules(),
        *pull.rules(),
        *package.rules(),
        *publish.rules(),
        *tailor.rules(),
    ]
