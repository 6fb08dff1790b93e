"""The versions this repository pins, read from pants.toml, their one home.

`./pants` runs this file to learn which Pants to bootstrap and which pex tool to build, its
sha256 and where to put it; the tests import `read_pinned_versions` to configure the same
tool.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

BUILD_ROOT = Path(__file__).resolve().parent.parent
FILE_URL = "file://"


@dataclass(frozen=True)
class PinnedVersions:
    """`[GLOBAL].pants_version` and the `[pex-cli]` tool: version, sha256, url_template."""

    pants: str
    pex: str  # without `[pex-cli].version`'s "v", as PyPI spells it
    pex_sha256: str
    pex_url_template: str

    @property
    def pex_cli_version(self) -> str:
        """The pex version as `[pex-cli].version` and its known_versions spell it."""
        return f"v{self.pex}"

    def pex_tool(self, build_root: Path) -> Path:
        """The file `[pex-cli].url_template` names in `build_root`, where ./pants puts the tool."""
        url = self.pex_url_template.replace("%(buildroot)s", str(build_root))
        url = url.format(version=self.pex_cli_version)
        if not url.startswith(FILE_URL):
            raise ValueError(f"[pex-cli].url_template must be a {FILE_URL} URL, got {url}")
        return Path(url[len(FILE_URL) :])


def read_pinned_versions(pants_toml: Path = BUILD_ROOT / "pants.toml") -> PinnedVersions:
    """The pins of `pants_toml`; the pex PEX is pure Python, so any platform's entry will do."""
    config = tomllib.loads(pants_toml.read_text())
    pex_cli = config["pex-cli"]
    version = pex_cli["version"]
    for entry in pex_cli["known_versions"]:
        entry_version, _platform, sha256, _size = entry.split("|")
        if entry_version == version:
            return PinnedVersions(
                pants=config["GLOBAL"]["pants_version"],
                pex=version.removeprefix("v"),
                pex_sha256=sha256,
                pex_url_template=pex_cli["url_template"],
            )
    raise ValueError(f"{pants_toml}: [pex-cli].known_versions has no entry for {version}")


def main() -> None:
    """Print `<pants version> <pex version> <pex sha256> <pex tool path>` for ./pants."""
    pins = read_pinned_versions()
    print(pins.pants, pins.pex, pins.pex_sha256, pins.pex_tool(BUILD_ROOT))


if __name__ == "__main__":
    main()
