"""hostprocess: a Pants plugin that builds Windows HostProcess container images."""

# The plugin's version, its one home: the wheel's metadata reads it (pants-plugins/pyproject.toml).
__version__ = "0.1.0"
