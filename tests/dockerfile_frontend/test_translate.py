"""Every supported and refused instruction, table-driven, through BuildKit's real parser.

Each case is Dockerfile text as a user writes it: parsed by the `dockerfile` package (the
same parser the sandboxed process runs), then translated by the pure core.
"""
from __future__ import annotations

from textwrap import dedent
from typing import Any, Mapping

import pytest

from hostprocess.dockerfile.parse import ParseError, parse_text
from hostprocess.dockerfile.translate import (
    Base,
    Copy,
    DockerfileError,
    Download,
    Plan,
    base_reference,
    is_hostprocess_base,
    translate,
)

BASE = "mcr.microsoft.com/oss/kubernetes/windows-host-process-containers-base-image"
PREDEFINED = {"TARGETOS": "windows", "TARGETARCH": "amd64", "TARGETPLATFORM": "windows/amd64"}
SHA = "a" * 64
DIGEST_REF = f"registry.example.com/org/base@sha256:{SHA}"


def plan(text: str, build_args: Mapping[str, str] | None = None) -> Plan:
    return translate(parse_text(dedent(text).lstrip()), build_args or {}, PREDEFINED)


# (id, Dockerfile, build args, expected Plan attributes)
VALID: list[tuple[str, str, dict[str, str], dict[str, Any]]] = [
    (
        "readme-example",
        f"""
        FROM {BASE}:v1.0.0
        ADD hello-world.ps1 .
        ENV PATH="C:\\Windows\\system32;C:\\Windows;C:\\WINDOWS\\System32\\WindowsPowerShell\\v1.0\\;"
        ENTRYPOINT ["powershell.exe", "./hello-world.ps1"]
        """,
        {},
        {
            "base": Base("builtin", f"{BASE}:v1.0.0", 1),
            "steps": (Copy(2, "ADD hello-world.ps1 .", ("hello-world.ps1",), "", True),),
            "env": (
                (
                    "PATH",
                    "C:\\Windows\\system32;C:\\Windows;C:\\WINDOWS\\System32\\WindowsPowerShell\\v1.0\\;",
                ),
            ),
            "entrypoint": ("powershell.exe", "./hello-world.ps1"),
            "cmd": (),
            "working_dir": "",
            "warnings": (),
        },
    ),
    (
        "base-by-digest",
        f"FROM {BASE}@sha256:{SHA}\n",
        {},
        {"base": Base("builtin", f"{BASE}@sha256:{SHA}", 1)},
    ),
    ("base-uppercase", f"FROM {BASE.upper()}\n", {}, {"base": Base("builtin", BASE.upper(), 1)}),
    ("external-pinned", f"FROM {DIGEST_REF}\n", {}, {"base": Base("reference", DIGEST_REF, 1)}),
    (
        "external-unpinned-is-a-reference",
        "FROM windows/org-base:1.0\n",
        {},
        {"base": Base("reference", "windows/org-base:1.0", 1)},
    ),
    (
        "from-as-name",
        f"FROM {BASE}:v1.0.0 AS final\n",
        {},
        {"base": Base("builtin", f"{BASE}:v1.0.0", 1)},
    ),
    (
        "arg-before-from",
        f"ARG TAG=v1.0.0\nFROM {BASE}:${{TAG}}\n",
        {},
        {"base": Base("builtin", f"{BASE}:v1.0.0", 2)},
    ),
    (
        "arg-before-from-overridden",
        "ARG REF=nothing\nFROM ${REF}\n",
        {"REF": DIGEST_REF},
        {"base": Base("reference", DIGEST_REF, 2), "warnings": ()},
    ),
    (
        "global-arg-redeclared-in-stage",
        f"ARG VERSION=1.2\nFROM {BASE}\nARG VERSION\nLABEL version=$VERSION\n",
        {},
        {"labels": (("version", "1.2"),)},
    ),
    (
        "global-arg-not-visible-without-redeclaring",
        f"ARG VERSION=1.2\nFROM {BASE}\nLABEL version=x$VERSION\n",
        {},
        {"labels": (("version", "x"),)},
    ),
    (
        "arg-default-and-override",
        f"FROM {BASE}\nARG DIR=tools\nARG NAME\nCOPY $DIR/${{NAME:-agent}}.exe C:/bin/\n",
        {"NAME": "probe"},
        {
            "steps": (
                Copy(4, "COPY $DIR/${NAME:-agent}.exe C:/bin/", ("tools/probe.exe",), "bin", True),
            )
        },
    ),
    (
        "predefined-platform-args",
        f"FROM {BASE}\nARG TARGETARCH\nCOPY bin/$TARGETARCH/ C:/bin/\n",
        {},
        {"steps": (Copy(3, "COPY bin/$TARGETARCH/ C:/bin/", ("bin/amd64",), "bin", True),)},
    ),
    (
        "env-overrides-arg",
        f"FROM {BASE}\nARG MODE=arg\nENV MODE=env\nLABEL mode=$MODE\n",
        {},
        {"labels": (("mode", "env"),), "env": (("MODE", "env"),)},
    ),
    (
        "env-forms-and-same-line-scoping",
        f"FROM {BASE}\nENV A=1\nENV A=2 B=$A\nENV LEGACY value with spaces\n",
        {},
        {"env": (("A", "2"), ("B", "1"), ("LEGACY", "value with spaces"))},
    ),
    (
        "env-names-case-insensitive",
        f"FROM {BASE}\nENV Path=C:/one\nENV PATH=C:/two\n",
        {},
        {"env": (("PATH", "C:/two"),)},
    ),
    (
        "env-substitution-in-quotes",
        f'FROM {BASE}\nENV ROOT="C:\\hpc"\nENV BIN="$ROOT\\bin"\n',
        {},
        {"env": (("ROOT", "C:\\hpc"), ("BIN", "C:\\hpc\\bin"))},
    ),
    (
        "label-quoted-key",
        f'FROM {BASE}\nLABEL "org.example.team"="node team" tier=1\n',
        {},
        {"labels": (("org.example.team", "node team"), ("tier", "1"))},
    ),
    (
        "entrypoint-shell-form-default-shell",
        f"FROM {BASE}\nENTRYPOINT powershell -File start.ps1\n",
        {},
        {"entrypoint": ("cmd", "/S", "/C", "powershell -File start.ps1")},
    ),
    (
        "cmd-shell-form-uses-shell",
        f'FROM {BASE}\nSHELL ["powershell", "-NoLogo", "-Command"]\nCMD Write-Host $env:NAME\n',
        {},
        {"cmd": ("powershell", "-NoLogo", "-Command", "Write-Host $env:NAME")},
    ),
    (
        "cmd-exec-form-not-expanded",
        f'FROM {BASE}\nENV X=1\nCMD ["echo", "$X"]\n',
        {},
        {"cmd": ("echo", "$X")},
    ),
    (
        "cmd-before-entrypoint-kept",
        f'FROM {BASE}\nCMD ["-Verbose"]\nENTRYPOINT ["powershell.exe", "./run.ps1"]\n',
        {},
        {"cmd": ("-Verbose",), "entrypoint": ("powershell.exe", "./run.ps1")},
    ),
    (
        "backtick-escape-directive",
        f"""
        # escape=`
        FROM {BASE}
        WORKDIR C:\\hpc\\app
        COPY tools\\ .\\tools\\
        ENTRYPOINT powershell -Command `
            Start-Agent
        """,
        {},
        {
            "working_dir": "C:\\hpc\\app",
            "steps": (Copy(4, "COPY tools\\ .\\tools\\", ("tools",), "hpc/app/tools", True),),
            "entrypoint": ("cmd", "/S", "/C", "powershell -Command     Start-Agent"),
            "warnings": (),
        },
    ),
    (
        "workdir-relative-and-absolute",
        f"FROM {BASE}\nWORKDIR /hpc\nWORKDIR app\nCOPY a.txt .\nWORKDIR C:/other\nCOPY b.txt sub/\n",
        {},
        {
            "working_dir": "C:\\other",
            "steps": (
                Copy(4, "COPY a.txt .", ("a.txt",), "hpc/app", True),
                Copy(6, "COPY b.txt sub/", ("b.txt",), "other/sub", True),
            ),
        },
    ),
    (
        "user",
        f'FROM {BASE}\nARG ACCOUNT="NT AUTHORITY\\\\Local service"\nUSER $ACCOUNT\n',
        {},
        {"user": "NT AUTHORITY\\Local service"},
    ),
    (
        "copy-json-form-with-spaces",
        f'FROM {BASE}\nCOPY ["my file.txt", "C:/dest dir/"]\n',
        {},
        {
            "steps": (
                Copy(2, 'COPY ["my file.txt", "C:/dest dir/"]', ("my file.txt",), "dest dir", True),
            )
        },
    ),
    (
        "copy-to-file-name",
        f"FROM {BASE}\nCOPY config/prod.yaml C:\\\\etc\\\\agent.yaml\n",
        {},
        {
            "steps": (
                Copy(
                    2,
                    "COPY config/prod.yaml C:\\\\etc\\\\agent.yaml",
                    ("config/prod.yaml",),
                    "etc/agent.yaml",
                    False,
                ),
            )
        },
    ),
    (
        "copy-glob-and-several-sources",
        f"FROM {BASE}\nCOPY *.ps1 lib/ /scripts/\n",
        {},
        {"steps": (Copy(2, "COPY *.ps1 lib/ /scripts/", ("*.ps1", "lib"), "scripts", True),)},
    ),
    (
        "copy-dot-normalised",
        f"FROM {BASE}\nCOPY ./bin/../bin/tool.exe /a/./b/../c/\n",
        {},
        {
            "steps": (
                Copy(2, "COPY ./bin/../bin/tool.exe /a/./b/../c/", ("bin/tool.exe",), "a/c", True),
            )
        },
    ),
    (
        "chown-and-chmod-ignored-with-warning",
        f"FROM {BASE}\nCOPY --chown=1000:1000 --chmod=755 --link a.txt /\n",
        {},
        {
            "steps": (
                Copy(2, "COPY --chown=1000:1000 --chmod=755 --link a.txt /", ("a.txt",), "", True),
            ),
            "warnings": (
                "line 2: `--chown=1000:1000` is ignored: Windows layers carry no Unix owners or modes (Docker ignores it for Windows images too).",
                "line 2: `--chmod=755` is ignored: Windows layers carry no Unix owners or modes (Docker ignores it for Windows images too).",
            ),
        },
    ),
    (
        "add-url-with-checksum",
        f"FROM {BASE}\nADD --checksum=sha256:{SHA} https://example.com/dl/tool.zip?x=1 C:/tools/\n",
        {},
        {
            "steps": (
                Download(
                    2,
                    f"ADD --checksum=sha256:{SHA} https://example.com/dl/tool.zip?x=1 C:/tools/",
                    "https://example.com/dl/tool.zip?x=1",
                    SHA,
                    "tools",
                    True,
                ),
            )
        },
    ),
    (
        "ignored-instructions-warn",
        f"FROM {BASE}\nEXPOSE 8080\nVOLUME C:/data\nHEALTHCHECK CMD ping\nSTOPSIGNAL SIGTERM\nMAINTAINER me\n",
        {},
        {
            "warnings_match": [
                "line 2: `EXPOSE 8080` is ignored",
                "line 3: `VOLUME",
                "line 4: `HEALTHCHECK",
                "line 5: `STOPSIGNAL",
                "line 6: `MAINTAINER",
            ]
        },
    ),
    (
        "platform-flag-warns",
        f"FROM --platform=windows/amd64 {BASE}\n",
        {},
        {"warnings_match": ["`--platform=windows/amd64` is ignored"]},
    ),
    (
        "unused-build-arg-warns",
        f"FROM {BASE}\n",
        {"NOPE": "1"},
        {"warnings_match": ["`build_args` NOPE are not declared"]},
    ),
    (
        "continuation-and-comments",
        f"FROM {BASE}\n# a comment\nLABEL a=1 \\\n      b=2\n",
        {},
        {"labels": (("a", "1"), ("b", "2"))},
    ),
]


@pytest.mark.parametrize(
    "text, build_args, expected", [c[1:] for c in VALID], ids=[c[0] for c in VALID]
)
def test_valid(text: str, build_args: dict[str, str], expected: dict[str, Any]) -> None:
    result = plan(text, build_args)
    for attribute, value in expected.items():
        if attribute == "warnings_match":
            for fragment in value:
                assert any(fragment in w for w in result.warnings), (fragment, result.warnings)
        else:
            assert getattr(result, attribute) == value, attribute


def test_default_escape_eats_backslash_and_warns() -> None:
    result = plan(f"FROM {BASE}\nWORKDIR C:\\app\n")
    # Docker reads `C:\app` as `C:app` (a drive-relative path): WORKDIR C:\ + app.
    assert result.working_dir == "C:\\app"
    assert result.warnings == (
        "line 2: in `C:\\app` the backslash is Docker's escape character, so the path is "
        "`C:app`. Write `# escape=`` as the file's first line, or use `/`.",
    )


# (id, Dockerfile, build args, line, fragment of the message)
REFUSED: list[tuple[str, str, dict[str, str], int, str]] = [
    (
        "run",
        f"FROM {BASE}\nRUN powershell -Command Install-Thing\n",
        {},
        2,
        "RUN executes a command inside the image, which needs a Windows machine",
    ),
    (
        "run-heredoc",
        f"FROM {BASE}\nRUN <<EOF\necho hi\nEOF\n",
        {},
        2,
        "Produce the file with a Pants target",
    ),
    (
        "multi-stage",
        f"FROM {DIGEST_REF} AS build\nFROM {BASE}\n",
        {},
        2,
        "multi-stage builds are not supported",
    ),
    (
        "onbuild",
        f"FROM {BASE}\nONBUILD COPY a b\n",
        {},
        2,
        "ONBUILD instructions run in a later Docker build",
    ),
    ("no-from", "ARG A=1\n", {}, 1, "no FROM instruction"),
    ("instruction-before-from", "ENV A=1\nFROM x\n", {}, 1, "only ARG may come before it"),
    ("scratch", "FROM scratch\n", {}, 1, "cannot start FROM scratch"),
    (
        "copy-from",
        f"FROM {BASE}\nCOPY --from=build /out/app.exe C:/app/\n",
        {},
        2,
        "copies from another stage or image",
    ),
    (
        "add-url-without-checksum",
        f"FROM {BASE}\nADD https://example.com/tool.exe C:/tools/\n",
        {},
        2,
        "must pin its content with `--checksum=sha256:<hex>`",
    ),
    (
        "add-url-bad-checksum",
        f"FROM {BASE}\nADD --checksum=md5:abc https://example.com/t C:/t\n",
        {},
        2,
        "64 lowercase hex digits",
    ),
    (
        "copy-url",
        f"FROM {BASE}\nCOPY https://example.com/tool.exe C:/tools/\n",
        {},
        2,
        "COPY cannot fetch",
    ),
    (
        "add-git",
        f"FROM {BASE}\nADD https://github.com/org/repo.git C:/src/\n",
        {},
        2,
        "Git repository",
    ),
    (
        "add-local-archive",
        f"FROM {BASE}\nADD tools.tar.gz C:/tools/\n",
        {},
        2,
        "would unpack the local archive",
    ),
    (
        "checksum-on-local-file",
        f"FROM {BASE}\nADD --checksum=sha256:{SHA} a.txt C:/\n",
        {},
        2,
        "applies to ADD of a URL only",
    ),
    (
        "source-outside-context",
        f"FROM {BASE}\nCOPY ../secret.txt C:/\n",
        {},
        2,
        "outside the build context",
    ),
    ("other-drive", f"FROM {BASE}\nCOPY a.txt D:/data/\n", {}, 2, "not on the system drive"),
    (
        "copy-heredoc",
        f"FROM {BASE}\nCOPY <<EOF C:/x.txt\nhello\nEOF\n",
        {},
        2,
        "heredoc is not supported",
    ),
    (
        "copy-exclude",
        f"FROM {BASE}\nCOPY --exclude=*.md . C:/app/\n",
        {},
        2,
        "`COPY --exclude=*.md` is not supported",
    ),
    (
        "shell-not-json",
        f"FROM {BASE}\nSHELL powershell -Command\n",
        {},
        2,
        "SHELL takes the JSON form",
    ),
    ("copy-one-word", f"FROM {BASE}\nCOPY a.txt\n", {}, 2, "at least one source and a destination"),
    ("from-without-image", "FROM\n", {}, 1, "FROM needs an image"),
    ("env-without-value", f"FROM {BASE}\nENV\n", {}, 2, "ENV needs at least one"),
    ("unknown-instruction", f"FROM {BASE}\nBOGUS y\n", {}, 2, "unknown instruction BOGUS"),
    ("unterminated-quote", f'FROM {BASE}\nENV A="open\n', {}, 2, "unterminated double quote"),
]


@pytest.mark.parametrize(
    "text, build_args, line, fragment", [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED]
)
def test_refused(text: str, build_args: dict[str, str], line: int, fragment: str) -> None:
    with pytest.raises(DockerfileError) as info:
        plan(text, build_args)
    assert info.value.line == line
    assert str(info.value).startswith(f"line {line}: ")
    assert fragment in str(info.value)


def test_parser_errors_are_reported() -> None:
    with pytest.raises(ParseError, match="Must be of the form: name=value"):
        parse_text(f"FROM {BASE}\nENV a=b c\n")
    with pytest.raises(ParseError, match="unterminated heredoc"):
        parse_text(f"FROM {BASE}\nCOPY <<EOF C:/x\nabc\n")


def test_escape_directive_only_at_the_top() -> None:
    document = parse_text(f"FROM {BASE}\n# escape=`\nWORKDIR C:\\hpc\n")
    assert document["escape"] == "\\"
    assert parse_text(f"# escape=`\n# syntax=docker/dockerfile:1\nFROM {BASE}\n")["escape"] == "`"


@pytest.mark.parametrize(
    "text, expected",
    [
        (f"ARG T=v1.0.0\nFROM {BASE}:$T\nRUN not translated\n", f"{BASE}:v1.0.0"),
        ("FROM ubuntu:22.04\n", "ubuntu:22.04"),
        ("ARG ONLY=1\n", None),
    ],
)
def test_base_reference_for_tailor(text: str, expected: str | None) -> None:
    assert base_reference(parse_text(text)) == expected


@pytest.mark.parametrize(
    "reference, expected",
    [
        (f"{BASE}", True),
        (f"{BASE}:v1.0.0", True),
        (f"{BASE}@sha256:{SHA}", True),
        (f"{BASE}:v1.0.0@sha256:{SHA}", True),
        (f"{BASE}-fork:v1", False),
        ("mcr.microsoft.com/windows/nanoserver:ltsc2022", False),
        ("localhost:5000/windows-host-process-containers-base-image", False),
    ],
)
def test_is_hostprocess_base(reference: str, expected: bool) -> None:
    assert is_hostprocess_base(reference) is expected
