"""The image test runner's command as a typed value (see `commandline/schema.py`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from hostprocess.commandline import schema


@dataclass(frozen=True)
class ImageTestCommand(schema.Command):
    name: ClassVar[str] = "test"
    help: ClassVar[str] = "run an image test, print its report and write a JUnit file"

    spec: str = schema.value("the test's spec, JSON")
    archive: str = schema.value("the image's docker archive")
    junit: str = schema.value("where to write the JUnit report")

    def output_files(self) -> tuple[str, ...]:
        return (self.junit,)


PROGRAM = schema.Program(
    "hostprocess-image-test", "Runs hostprocess_image_test targets.", (ImageTestCommand,)
)
