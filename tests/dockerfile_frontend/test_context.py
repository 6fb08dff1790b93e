"""Where ADD/COPY puts context files: files, directories, globs, renames, table-driven."""
from __future__ import annotations

import pytest

from hostprocess.dockerfile.context import named_files, place, relative_to
from hostprocess.dockerfile.translate import Base, Copy, DockerfileError, Plan

CONTEXT = [
    "Dockerfile.windows",
    "hello-world.ps1",
    "run.ps1",
    "README.md",
    "tools/a.exe",
    "tools/lib/b.dll",
    "config/prod.yaml",
    "config/dev.yaml",
    "bin/amd64/agent.exe",
    "bin/arm64/agent.exe",
]


def copy(sources: tuple[str, ...], destination: str, into_directory: bool) -> Copy:
    return Copy(7, "COPY ...", sources, destination, into_directory)


@pytest.mark.parametrize(
    "sources, destination, into_directory, expected",
    [
        (("hello-world.ps1",), "", True, [("hello-world.ps1", "hello-world.ps1")]),
        (("hello-world.ps1",), "scripts", True, [("hello-world.ps1", "scripts/hello-world.ps1")]),
        (("config/prod.yaml",), "etc/agent.yaml", False, [("config/prod.yaml", "etc/agent.yaml")]),
        # a directory's contents land inside the destination, not the directory itself
        (
            ("tools",),
            "opt",
            True,
            [("tools/a.exe", "opt/a.exe"), ("tools/lib/b.dll", "opt/lib/b.dll")],
        ),
        (
            ("tools",),
            "opt",
            False,
            [("tools/a.exe", "opt/a.exe"), ("tools/lib/b.dll", "opt/lib/b.dll")],
        ),
        # globs match one segment at a time, files and directories alike
        (
            ("*.ps1",),
            "s",
            True,
            [("hello-world.ps1", "s/hello-world.ps1"), ("run.ps1", "s/run.ps1")],
        ),
        (
            ("config/*.yaml",),
            "c",
            True,
            [("config/dev.yaml", "c/dev.yaml"), ("config/prod.yaml", "c/prod.yaml")],
        ),
        # both directories' agent.exe land at bin/agent.exe: the later one wins, as in Docker
        (("bin/*",), "bin", True, [("bin/arm64/agent.exe", "bin/agent.exe")]),
        (("r?n.ps1",), "x.ps1", False, [("run.ps1", "x.ps1")]),
        (
            ("[hr]*.ps1",),
            "",
            True,
            [("hello-world.ps1", "hello-world.ps1"), ("run.ps1", "run.ps1")],
        ),
        (
            ("run.ps1", "hello-world.ps1"),
            "d",
            True,
            [("hello-world.ps1", "d/hello-world.ps1"), ("run.ps1", "d/run.ps1")],
        ),
        # the whole context (`COPY . dest/`)
        (("",), "all", True, sorted((f, f"all/{f}") for f in CONTEXT)),
    ],
)
def test_place(
    sources: tuple[str, ...],
    destination: str,
    into_directory: bool,
    expected: list[tuple[str, str]],
) -> None:
    assert place(copy(sources, destination, into_directory), CONTEXT) == sorted(
        expected, key=lambda p: p[1]
    )


@pytest.mark.parametrize(
    "sources, destination, into_directory, fragment",
    [
        (("missing.ps1",), "", True, "the source `missing.ps1` matches no file"),
        (("*.exe",), "", True, "the source `*.exe` matches no file"),
        (("run.ps1", "hello-world.ps1"), "d", False, "its destination must be a directory"),
        (("*.ps1",), "one.ps1", False, "its destination must be a directory"),
    ],
)
def test_place_refused(
    sources: tuple[str, ...], destination: str, into_directory: bool, fragment: str
) -> None:
    with pytest.raises(DockerfileError, match="^line 7: ") as info:
        place(copy(sources, destination, into_directory), CONTEXT)
    assert fragment in str(info.value)


def test_named_files_for_inference_and_tailor() -> None:
    on_disk = ["svc/" + f for f in CONTEXT] + ["elsewhere/x.ps1", "svc-other/y.ps1"]
    context_files = relative_to("svc", on_disk)
    assert context_files == CONTEXT
    steps = (
        copy(("*.ps1",), "", True),
        copy(("tools",), "opt", True),
        copy(("missing.txt",), "", True),  # skipped: the build reports it
    )
    plan = Plan(base=Base("builtin"), steps=steps)
    assert named_files(plan, context_files) == [
        "hello-world.ps1",
        "run.ps1",
        "tools/a.exe",
        "tools/lib/b.dll",
    ]
    assert relative_to("", ["a", "b/c"]) == ["a", "b/c"]
