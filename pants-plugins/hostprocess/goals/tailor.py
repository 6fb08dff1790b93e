"""`pants tailor`: a `hostprocess_image` beside each HostProcess Dockerfile.

Every unowned `Dockerfile.windows` gets one, and so does every unowned `Dockerfile` whose
first FROM is Microsoft's HostProcess base image (other Dockerfiles are Linux images, for
Pants' docker backend). The files its ADD/COPY name that no target owns yet get a `files`
target, so that the new image builds as it is.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Sequence

from pants.core.goals.tailor import (
    AllOwnedSources,
    PutativeTarget,
    PutativeTargets,
    PutativeTargetsRequest,
)
from pants.core.target_types import FilesGeneratorTarget
from pants.engine.fs import Digest, PathGlobs, Paths
from pants.engine.rules import Get, MultiGet, Rule, collect_rules, rule
from pants.engine.unions import UnionRule
from pants.util.logging import LogLevel

from hostprocess.dockerfile.context import named_files, relative_to
from hostprocess.dockerfile.translate import (
    DockerfileError,
    base_reference,
    is_hostprocess_base,
    translate,
)
from hostprocess.target_types.image import HostProcessImageTarget
from hostprocess.util_rules.dockerfile import (
    ParsedDockerfile,
    ParseDockerfileRequest,
    context_globs,
    predefined_args,
)

WINDOWS_DOCKERFILE = "Dockerfile.windows"
DOCKERFILE = "Dockerfile"
CONTEXT_TARGET = "context"


@dataclass(frozen=True)
class PutativeHostProcessTargetsRequest(PutativeTargetsRequest):
    pass


def _is_candidate(parsed: ParsedDockerfile) -> bool:
    if os.path.basename(parsed.path) == WINDOWS_DOCKERFILE:
        return True
    if parsed.error:
        return False
    reference = base_reference(parsed.document)
    return reference is not None and is_hostprocess_base(reference)


def unowned_context_files(
    parsed: ParsedDockerfile, on_disk: Sequence[str], owned: set[str]
) -> list[str]:
    """Context files (relative to the Dockerfile's directory) that ADD/COPY name, unowned."""
    if parsed.error:
        return []
    try:
        plan = translate(parsed.document, {}, predefined_args("amd64"))
    except DockerfileError:
        return []  # `package` reports it, with the line and the fix
    named = named_files(plan, relative_to(parsed.context, on_disk))
    return [f for f in named if os.path.join(parsed.context, f) not in owned]


@rule(level=LogLevel.DEBUG, desc="Find HostProcess Dockerfiles without a hostprocess_image")
async def find_putative_hostprocess_targets(
    request: PutativeHostProcessTargetsRequest, all_owned_sources: AllOwnedSources
) -> PutativeTargets:
    found = await Get(Paths, PathGlobs, request.path_globs(WINDOWS_DOCKERFILE, DOCKERFILE))
    owned = set(all_owned_sources)
    unowned = sorted(set(found.files) - owned)
    digests = await MultiGet(Get(Digest, PathGlobs([path])) for path in unowned)
    parsed = await MultiGet(
        Get(ParsedDockerfile, ParseDockerfileRequest(path, digest))
        for path, digest in zip(unowned, digests)
    )
    candidates = [p for p in parsed if _is_candidate(p)]
    listings = await MultiGet(Get(Paths, PathGlobs, context_globs(p.context)) for p in candidates)
    contexts = [
        unowned_context_files(p, listing.files, owned) for p, listing in zip(candidates, listings)
    ]
    targets = []
    for dockerfile, context_files in zip(candidates, contexts):
        directory, filename = os.path.split(dockerfile.path)
        targets.append(
            PutativeTarget.for_target_type(
                HostProcessImageTarget,
                path=directory,
                name=os.path.basename(directory) or "image",
                triggering_sources=[filename],
                kwargs={"dockerfile": filename},
            )
        )
        if context_files:
            targets.append(
                PutativeTarget.for_target_type(
                    FilesGeneratorTarget,
                    path=directory,
                    name=CONTEXT_TARGET,
                    triggering_sources=context_files,
                    kwargs={"sources": tuple(context_files)},
                )
            )
    return PutativeTargets(targets)


def rules() -> list[Rule | UnionRule]:
    return [
        *collect_rules(),
        UnionRule(PutativeTargetsRequest, PutativeHostProcessTargetsRequest),
    ]
