"""The `hostprocess_files` target: a large tree of files as one target.

Pants' `files` generates a target per file, which is what pantsd holds in memory and parses
on every change; a `node_modules`-sized tree of 100,000 files makes that many targets. This
target owns its files itself, so the tree costs one target however many files it has.
"""

from __future__ import annotations

from pants.engine.target import COMMON_TARGET_FIELDS, MultipleSourcesField, Target
from pants.util.strutil import help_text


class HostProcessFilesSourcesField(MultipleSourcesField):
    required = True
    help = help_text(
        """
        The files, as globs relative to this BUILD file's directory (`["node/**/*"]`); `!`
        excludes. In an image they land where `files` would put them.
        """
    )


class HostProcessFilesTarget(Target):
    alias = "hostprocess_files"
    core_fields = (*COMMON_TARGET_FIELDS, HostProcessFilesSourcesField)
    help = help_text(
        """
        Files for a `hostprocess_image`, as one target however many they are: for trees of
        thousands of files (a runtime, `node_modules`), where `files` would make a target per
        file. Use it in an image's `dependencies` or `layers` like a `files` target.
        """
    )
