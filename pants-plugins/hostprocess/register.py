"""Entry point of the hostprocess Pants backend (`backend_packages = ["hostprocess"]`)."""

from __future__ import annotations

from hostprocess.deploy_target_types import HostProcessDaemonSetTarget
from hostprocess.goals import package, package_daemonset, publish, publish_daemonset
from hostprocess.subsystem import HostProcessSubsystem
from hostprocess.target_types import HostProcessImageTarget
from hostprocess.util_rules import inputs, layers, pull, tool


def target_types() -> list:
    return [HostProcessImageTarget, HostProcessDaemonSetTarget]


def rules() -> list:
    return [
        *HostProcessSubsystem.rules(),
        *tool.rules(),
        *inputs.rules(),
        *layers.rules(),
        *pull.rules(),
        *package.rules(),
        *publish.rules(),
        *package_daemonset.rules(),
        *publish_daemonset.rules(),
    ]
