"""The Windows layer format: paths Windows accepts, the layer tar hcsshim imports, the
registry hives and the built-in base layer."""
