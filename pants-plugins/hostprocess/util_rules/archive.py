"""An image's OCI or docker archive, written by the image tool from its layout."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from pants.engine.addresses import Address
from pants.engine.fs import AddPrefix, Digest
from pants.engine.process import ProcessResult
from pants.engine.rules import Get, Rule, collect_rules, rule
from pants.util.logging import LogLevel

from hostprocess.oci.commands import TOOL_LAYOUT, ArchiveCommand
from hostprocess.util_rules.image import BuiltImage
from hostprocess.util_rules.tool import ToolRequest


@dataclass(frozen=True)
class ArchiveRequest:
    built: BuiltImage
    fmt: str
    repo_tags: tuple[str, ...]
    out: str  # file name of the archive
    address: Address


@rule(desc="Write an image archive", level=LogLevel.DEBUG)
async def write_image_archive(request: ArchiveRequest) -> Digest:
    command = ArchiveCommand(
        layout=TOOL_LAYOUT, format=request.fmt, out=request.out, repo_tag=request.repo_tags
    )
    layout = await Get(Digest, AddPrefix(request.built.layout, TOOL_LAYOUT))
    result = await Get(
        ProcessResult,
        ToolRequest(command, layout, f"Writing the {request.fmt} of {request.address}"),
    )
    return result.output_digest


def rules() -> Iterable[Rule]:
    return collect_rules()
