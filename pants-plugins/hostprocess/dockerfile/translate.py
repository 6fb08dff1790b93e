"""A parsed Dockerfile -> what a `hostprocess_image` builds: base, copies, runtime config.

Input is the parser's JSON (`hostprocess.dockerfile.parse.parse_text`); instructions mean what
Docker's reference says they mean for Windows images. Instructions that need a Windows
machine (RUN) or another build (multi-stage, `--from`) are refused with the line and what
to do instead; instructions Kubernetes ignores for HostProcess pods are warned about.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from hostprocess.dockerfile.words import WordError, expand, lookup
from hostprocess.oci.reference import name_without_tag

HOSTPROCESS_BASE = "mcr.microsoft.com/oss/kubernetes/windows-host-process-containers-base-image"
DEFAULT_SHELL = ("cmd", "/S", "/C")  # Docker's default SHELL for Windows images
CHECKSUM_RE = re.compile(r"sha256:([0-9a-f]{64})")
URL_RE = re.compile(r"(?i)https?://")
GIT_RE = re.compile(r"(?i)(git@|git://|.*\.git(#.*)?$)")
DRIVE_RE = re.compile(r"([A-Za-z]):(.*)")
# ADD unpacks local archives of these kinds; we only copy files (see `_refuse_archive`).
ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz", ".tar.zst")

RUN_FIX = (
    "RUN executes a command inside the image, which needs a Windows machine; hostprocess "
    "builds on Linux and macOS without running anything. Produce the file with a Pants "
    "target instead (a `file(source=http_source(...))` download, an `archive`, a "
    "`pex_binary`, a generated file) and ADD or COPY it, or build on a base image (pinned "
    "by digest) that already contains the result"
)
IGNORED = {
    "EXPOSE": "HostProcess containers share the node's network, so there is nothing to expose",
    "VOLUME": "HostProcess containers see the node's file system; declare volumes in the pod",
    "HEALTHCHECK": "Kubernetes ignores image health checks; use the pod's probes",
    "STOPSIGNAL": "Windows containers get CTRL_SHUTDOWN_EVENT whatever the image says",
    "MAINTAINER": "it is deprecated; use `LABEL org.opencontainers.image.authors=...`",
}
REFUSED = {
    "RUN": RUN_FIX,
    "ONBUILD": (
        "ONBUILD instructions run in a later Docker build of an image built on this one, "
        "which never happens with hostprocess; put the instructions in that image's Dockerfile"
    ),
}


class DockerfileError(ValueError):
    """The Dockerfile cannot be built; `str()` names the line and the fix."""

    def __init__(self, line: int, message: str) -> None:
        self.line = line
        super().__init__(f"line {line}: {message}")


@dataclass(frozen=True)
class Copy:
    """ADD/COPY of context files: `sources` relative to the context, `destination` to C:\\."""

    line: int
    text: str
    sources: tuple[str, ...]
    destination: str  # posix, relative to C:\ ("" is C:\ itself)
    into_directory: bool  # the destination is a directory (trailing separator, `.`)


@dataclass(frozen=True)
class Download:
    """ADD of a URL pinned by `--checksum=sha256:...`."""

    line: int
    text: str
    url: str
    sha256: str
    destination: str
    into_directory: bool

    @property
    def path(self) -> str:
        """Where the file lands: Docker takes the URL's last path segment for a directory."""
        if not self.into_directory:
            return self.destination
        name = self.url.split("?", 1)[0].split("#", 1)[0].rstrip("/").rsplit("/", 1)[-1]
        return posixpath.join(self.destination, name) if self.destination else name


@dataclass(frozen=True)
class Base:
    """`builtin` (Microsoft's HostProcess base), or `reference` (an image by name)."""

    kind: str
    reference: str = ""
    line: int = 0

    @property
    def pinned(self) -> bool:
        return "@sha256:" in self.reference


@dataclass(frozen=True)
class Plan:
    base: Base
    steps: tuple[Copy | Download, ...]
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()  # pairs rather than dicts: hashable, ordered
    working_dir: str = ""
    user: str = ""
    labels: tuple[tuple[str, str], ...] = ()
    warnings: tuple[str, ...] = ()


@dataclass
class _State:
    escape: str
    build_args: Mapping[str, str]
    meta_args: dict[str, str | None] = field(default_factory=dict)
    args: dict[str, str | None] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    workdir: str = ""  # posix, relative to C:\
    workdir_set: bool = False
    user: str = ""
    shell: tuple[str, ...] = DEFAULT_SHELL
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    base: Base | None = None
    steps: list[Copy | Download] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    used_args: set[str] = field(default_factory=set)

    def scope(self) -> dict[str, str]:
        """Variables visible to a stage instruction: declared ARGs, then ENV over them."""
        visible = {k: v for k, v in self.args.items() if v is not None}
        for key in list(visible):
            if lookup(self.env, key) is not None:
                del visible[key]
        return {**visible, **self.env}


def translate(
    document: Mapping[str, Any],
    build_args: Mapping[str, str] | None = None,
    predefined: Mapping[str, str] | None = None,
) -> Plan:
    """The plan for one parsed Dockerfile; raises DockerfileError for what cannot be built.

    `predefined` are BuildKit's automatic platform ARGs (TARGETOS, TARGETARCH, ...), visible
    in FROM and, once declared with `ARG NAME`, in the stage.
    """
    build_args = build_args or {}
    state = _State(escape=document.get("escape", "\\"), build_args=build_args)
    state.meta_args.update(predefined or {})
    for instruction in document["instructions"]:
        _dispatch(state, instruction)
    if state.base is None:
        raise DockerfileError(1, "the Dockerfile has no FROM instruction.")
    unused = sorted(set(build_args) - state.used_args)
    if unused:
        state.warnings.append(
            f"`build_args` {', '.join(unused)} are not declared by any ARG in the Dockerfile, "
            "so they have no effect."
        )
    return Plan(
        base=state.base,
        steps=tuple(state.steps),
        entrypoint=state.entrypoint,
        cmd=state.cmd,
        env=tuple(state.env.items()),
        working_dir=_windows(state.workdir) if state.workdir_set else "",
        user=state.user,
        labels=tuple(state.labels.items()),
        warnings=tuple(state.warnings),
    )


def _dispatch(state: _State, ins: Mapping[str, Any]) -> None:
    cmd, line = ins["cmd"], ins["line"]
    if cmd == "ARG":
        _arg(state, ins)
        return
    if cmd == "FROM":
        _from(state, ins)
        return
    if state.base is None:
        raise DockerfileError(line, f"{cmd} before the first FROM: only ARG may come before it.")
    if cmd in REFUSED:
        raise DockerfileError(line, f"`{ins['original']}` is not supported. {REFUSED[cmd]}.")
    if cmd in IGNORED:
        state.warnings.append(f"line {line}: `{ins['original']}` is ignored: {IGNORED[cmd]}.")
        return
    handler = _HANDLERS.get(cmd)
    if handler is None:
        raise DockerfileError(line, f"unknown instruction {cmd}.")
    handler(state, ins)


def _word(state: _State, word: str, line: int, env: Mapping[str, str] | None = None) -> str:
    try:
        return expand(word, state.scope() if env is None else env, state.escape)
    except WordError as e:
        raise DockerfileError(line, str(e)) from None


def _arg(state: _State, ins: Mapping[str, Any]) -> None:
    in_stage = state.base is not None
    for raw in ins["value"]:
        name, eq, default = raw.partition("=")
        if state.build_args.get(name) is not None:
            state.used_args.add(name)
            value: str | None = state.build_args[name]
        elif eq:
            env = state.scope() if in_stage else _defined(state.meta_args)
            value = _word(state, default, ins["line"], env)
        elif in_stage:
            value = state.meta_args.get(name)  # `ARG NAME` after FROM takes the global value
        else:
            value = None
        (state.args if in_stage else state.meta_args)[name] = value


def _defined(values: Mapping[str, str | None]) -> dict[str, str]:
    return {k: v for k, v in values.items() if v is not None}


def _from(state: _State, ins: Mapping[str, Any]) -> None:
    line = ins["line"]
    if state.base is not None:
        raise DockerfileError(
            line,
            "multi-stage builds are not supported: earlier stages exist to RUN build steps, "
            "which need Windows. Build those files with Pants targets and ADD or COPY them in "
            "a single-stage Dockerfile.",
        )
    for flag in ins["flags"]:
        if flag.startswith("--platform"):
            state.warnings.append(
                f"line {line}: `{flag}` is ignored: the target's `architecture` field decides."
            )
    if not ins["value"]:
        raise DockerfileError(line, "FROM needs an image.")
    reference = _word(state, ins["value"][0], line, _defined(state.meta_args))
    if is_hostprocess_base(reference):
        state.base = Base("builtin", reference, line)
    elif reference.lower() == "scratch":
        raise DockerfileError(
            line,
            "Windows images cannot start FROM scratch: use "
            f"`FROM {HOSTPROCESS_BASE}:v1.0.0` (the built-in base).",
        )
    else:
        state.base = Base("reference", reference, line)


def base_reference(document: Mapping[str, Any]) -> str | None:
    """The first FROM's image, with ARGs before it at their defaults (for `tailor`)."""
    state = _State(escape=document.get("escape", "\\"), build_args={})
    for instruction in document["instructions"]:
        if instruction["cmd"] == "FROM":
            line, words = instruction["line"], instruction["value"]
            return _word(state, words[0], line, _defined(state.meta_args)) if words else None
        if instruction["cmd"] == "ARG":
            _arg(state, instruction)
    return None


def is_hostprocess_base(reference: str) -> bool:
    """Microsoft's HostProcess base image, by any tag or digest."""
    return name_without_tag(reference).lower() == HOSTPROCESS_BASE


def _kvps(state: _State, ins: Mapping[str, Any]) -> list[tuple[str, str]]:
    """ENV/LABEL pairs, each word expanded with the variables from before this line."""
    values, line = ins["value"], ins["line"]
    if not values:
        raise DockerfileError(line, f"{ins['cmd']} needs at least one `name=value`.")
    env = state.scope()
    pairs = [(values[i], values[i + 1]) for i in range(0, len(values) - 1, 2)]
    out = [(_word(state, k, line, env), _word(state, v, line, env)) for k, v in pairs]
    for key, _ in out:
        if not key:
            raise DockerfileError(line, f"`{ins['original']}` has an empty name.")
    return out


def _env(state: _State, ins: Mapping[str, Any]) -> None:
    for key, value in _kvps(state, ins):
        for existing in [k for k in state.env if k.upper() == key.upper()]:
            del state.env[existing]  # Windows names are case-insensitive
        state.env[key] = value


def _label(state: _State, ins: Mapping[str, Any]) -> None:
    state.labels.update(_kvps(state, ins))


def _command(state: _State, ins: Mapping[str, Any]) -> tuple[str, ...]:
    """Exec form as written; shell form wrapped in the current SHELL, as Docker does."""
    if ins["json"]:
        return tuple(ins["value"])
    if not ins["value"]:
        return ()
    return (*state.shell, ins["value"][0])


def _entrypoint(state: _State, ins: Mapping[str, Any]) -> None:
    # A CMD earlier in this Dockerfile stays (as in BuildKit); an inherited one is dropped
    # when the config is merged with the base's (`hostprocess.oci.image.merge_runtime`).
    state.entrypoint = _command(state, ins)


def _cmd(state: _State, ins: Mapping[str, Any]) -> None:
    state.cmd = _command(state, ins)


def _shell(state: _State, ins: Mapping[str, Any]) -> None:
    if not ins["json"] or not ins["value"]:
        raise DockerfileError(
            ins["line"], 'SHELL takes the JSON form, e.g. `SHELL ["powershell", "-Command"]`.'
        )
    state.shell = tuple(ins["value"])


def _user(state: _State, ins: Mapping[str, Any]) -> None:
    state.user = _word(state, " ".join(ins["value"]), ins["line"])


def _workdir(state: _State, ins: Mapping[str, Any]) -> None:
    raw = " ".join(ins["value"])
    path = _word(state, raw, ins["line"])
    _warn_eaten_backslash(state, ins["line"], raw, path)
    state.workdir = _image_path(path, state.workdir, ins["line"]).rstrip("/")
    state.workdir_set = True


def _warn_eaten_backslash(state: _State, line: int, raw: str, expanded: str) -> None:
    if state.escape == "\\" and raw.count("\\") > expanded.count("\\"):
        state.warnings.append(
            f"line {line}: in `{raw}` the backslash is Docker's escape character, so the path is "
            f"`{expanded}`. Write `# escape=`` as the file's first line, or use `/`."
        )


def _image_path(path: str, workdir: str, line: int) -> str:
    """A destination relative to C:\\ (posix), from `C:\\x`, `/x` or a WORKDIR-relative path.

    A trailing separator is kept: it says the destination is a directory.
    """
    path = path.replace("\\", "/")
    drive = DRIVE_RE.fullmatch(path)
    if drive:
        if drive.group(1).upper() != "C":
            raise DockerfileError(
                line, f"`{path}` is not on the system drive: images only have C:\\."
            )
        path = drive.group(2) or "/"
        if not path.startswith("/"):
            path = "/" + path
    directory = path.endswith("/") or path in (".", "") or path.endswith("/.")
    joined = path if path.startswith("/") else posixpath.join("/", workdir, path)
    normal = posixpath.normpath(joined).lstrip("/")
    if normal == ".":
        normal = ""
    return normal + "/" if directory and normal else normal


def _windows(path: str) -> str:
    return "C:\\" + path.replace("/", "\\")


def _copy(state: _State, ins: Mapping[str, Any]) -> None:
    cmd, line, text = ins["cmd"], ins["line"], ins["original"]
    checksum = _flags(state, ins)
    if ins["heredocs"]:
        raise DockerfileError(
            line,
            f"{cmd} with a heredoc is not supported: put the content in a file beside the "
            f"Dockerfile and {cmd} that file.",
        )
    words = [_word(state, w, line) for w in ins["value"]]
    if len(words) < 2:
        raise DockerfileError(line, f"{cmd} needs at least one source and a destination.")
    *sources, raw_destination = words
    _warn_eaten_backslash(state, line, ins["value"][-1], raw_destination)
    destination = _image_path(raw_destination, state.workdir, line)
    into_directory = destination.endswith("/") or destination == ""
    destination = destination.rstrip("/")
    urls = [s for s in sources if URL_RE.match(s)]
    for source in sources:
        if GIT_RE.match(source):
            raise DockerfileError(
                line,
                f"{cmd} of the Git repository `{source}` is not supported: a build needs pinned "
                "files. Add the files you need to the build context (or fetch them with a Pants "
                "`file(source=http_source(...))`) and COPY them.",
            )
    if urls:
        _download(state, ins, sources, urls, checksum, destination, into_directory)
        return
    if checksum:
        raise DockerfileError(line, "`--checksum` applies to ADD of a URL only.")
    if cmd == "ADD":
        _refuse_archive(line, sources)
    context_sources = tuple(_context_path(s, line) for s in sources)
    state.steps.append(Copy(line, text, context_sources, destination, into_directory))


def _download(
    state: _State,
    ins: Mapping[str, Any],
    sources: Sequence[str],
    urls: Sequence[str],
    checksum: str,
    destination: str,
    into_directory: bool,
) -> None:
    line = ins["line"]
    if ins["cmd"] == "COPY":
        raise DockerfileError(line, f"COPY cannot fetch `{urls[0]}`: use ADD --checksum=sha256:...")
    if len(sources) != 1:
        raise DockerfileError(line, "ADD of a URL takes exactly one source (one ADD per URL).")
    if not checksum:
        raise DockerfileError(
            line,
            f"ADD of `{urls[0]}` must pin its content with `--checksum=sha256:<hex>` (the "
            f"sha256 of the file), so every build uses the same bytes: "
            f"`ADD --checksum=sha256:... {urls[0]} {ins['value'][-1]}`.",
        )
    state.steps.append(
        Download(line, ins["original"], urls[0], checksum, destination, into_directory)
    )


def _flags(state: _State, ins: Mapping[str, Any]) -> str:
    """Check ADD/COPY flags; return the sha256 hex of `--checksum`, if any."""
    cmd, line = ins["cmd"], ins["line"]
    checksum = ""
    for flag in ins["flags"]:
        name, _, value = flag.partition("=")
        if name == "--from":
            raise DockerfileError(
                line,
                f"`{cmd} {flag}` copies from another stage or image, which is not supported: "
                "build the file with a Pants target and COPY it from the build context.",
            )
        if name in ("--chown", "--chmod"):
            state.warnings.append(
                f"line {line}: `{flag}` is ignored: Windows layers carry no Unix owners or "
                "modes (Docker ignores it for Windows images too)."
            )
        elif name == "--link":
            continue  # a BuildKit cache hint: every layer here is independent anyway
        elif name == "--checksum" and cmd == "ADD":
            match = CHECKSUM_RE.fullmatch(_word(state, value, line))
            if not match:
                raise DockerfileError(
                    line, f"`{flag}`: write the checksum as `sha256:` and 64 lowercase hex digits."
                )
            checksum = match.group(1)
        else:
            raise DockerfileError(line, f"`{cmd} {flag}` is not supported.")
    return checksum


def _refuse_archive(line: int, sources: Sequence[str]) -> None:
    for source in sources:
        if source.lower().endswith(ARCHIVE_SUFFIXES):
            raise DockerfileError(
                line,
                f"ADD would unpack the local archive `{source}`, which is not supported: use "
                f"COPY to put the archive itself in the image, or unpack it with a Pants target "
                f"(e.g. `relocated_files` of extracted files) and COPY the files.",
            )


def _context_path(source: str, line: int) -> str:
    """A source relative to the build context, refusing paths that leave it."""
    path = source.replace("\\", "/")
    if DRIVE_RE.fullmatch(path):
        raise DockerfileError(line, f"the source `{source}` is not in the build context.")
    normal = posixpath.normpath("/" + path).lstrip("/")
    if posixpath.normpath(path).startswith(".."):
        raise DockerfileError(
            line,
            f"the source `{source}` is outside the build context (the Dockerfile's directory), "
            "which Docker refuses too: move the file under that directory.",
        )
    return "" if normal == "." else normal


_HANDLERS = {
    "ENV": _env,
    "LABEL": _label,
    "ENTRYPOINT": _entrypoint,
    "CMD": _cmd,
    "SHELL": _shell,
    "USER": _user,
    "WORKDIR": _workdir,
    "ADD": _copy,
    "COPY": _copy,
}
