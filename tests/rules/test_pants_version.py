"""Loading the plugin into a Pants version it does not support fails with one clear message."""
from __future__ import annotations

import sys

import pants.version
import pytest
from pants.base.exceptions import BackendConfigurationError
from pants.build_graph.build_configuration import BuildConfiguration
from pants.init.extension_loader import load_backend

from hostprocess.pants_version import UnsupportedPantsVersion, check_pants_version

MESSAGE = "The hostprocess plugin 0.1.0 supports Pants >=2.17.0,<2.18, but this is Pants {}."


@pytest.mark.parametrize("version", ["2.17.0", "2.17.1", "2.17.2rc0"])
def test_supported_versions_load(version: str) -> None:
    check_pants_version(version)


@pytest.mark.parametrize("version", ["2.16.1", "2.18.0", "2.18.0.dev1", "3.0.0"])
def test_unsupported_versions_name_the_supported_range(version: str) -> None:
    with pytest.raises(UnsupportedPantsVersion) as info:
        check_pants_version(version)
    assert str(info.value).startswith(MESSAGE.format(version)), info.value


def test_pants_refuses_to_load_the_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    """As Pants loads `backend_packages` at start-up, with a stand-in version string."""
    monkeypatch.setattr(pants.version, "VERSION", "2.18.0")
    monkeypatch.delitem(sys.modules, "hostprocess.register", raising=False)
    with pytest.raises(BackendConfigurationError) as info:
        load_backend(BuildConfiguration.Builder(), "hostprocess")
    assert MESSAGE.format("2.18.0") in str(info.value), info.value
