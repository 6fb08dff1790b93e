"""The `apps/agent` project that the publish and daemonset rule tests build.

Both publish the same small image (a start script and a `hostprocess_image` running it);
each test module adds only the fields and targets it is about.
"""
from __future__ import annotations

START_SCRIPT = "Write-Output 'agent started'\r\n"


def agent_build(image_fields: str) -> str:
    """`apps/agent/BUILD`: the script's `files` and the image `agent`, ending in `image_fields`
    (such as `image_tags=["v1"],`)."""
    return f"""
files(name="scripts", sources=["start.ps1"])
hostprocess_image(
    name="agent",
    dependencies=[":scripts"],
    entrypoint=["powershell.exe", "-File", "start.ps1"],
    repository="windows/agent",
    {image_fields}
)
"""
