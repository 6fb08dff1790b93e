"""The error every image-building rule raises for a target that cannot be built as declared."""


class ImageBuildError(Exception):
    """A `hostprocess_image` cannot be built as declared; the message says how to fix it."""
