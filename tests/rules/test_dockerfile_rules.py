"""RuleRunner tests of `hostprocess_image(dockerfile=...)`: the real parser PEX (from the
lockfile inside the plugin), dependency inference, layers, errors and `tailor`.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from textwrap import dedent
from typing import Iterator

import pytest
from pants.core.goals.tailor import AllOwnedSources, PutativeTarget, PutativeTargets
from pants.core.target_types import FilesGeneratorTarget
from pants.engine.addresses import Address, Addresses
from pants.engine.fs import Digest, DigestContents, DigestSubset, PathGlobs
from pants.engine.internals.scheduler import ExecutionError
from pants.engine.target import DependenciesRequest
from pants.testutil.rule_runner import QueryRule, RuleRunner

from hostprocess.goals.tailor import PutativeHostProcessTargetsRequest
from hostprocess.target_types.image import HostProcessImageDependenciesField, HostProcessImageTarget
from hostprocess.util_rules.image import BuiltImage, HostProcessImageFieldSet
from rules.rule_runners import tool_rule_runner, wrapped_error

BASE = "mcr.microsoft.com/oss/kubernetes/windows-host-process-containers-base-image"


@pytest.fixture
def rule_runner() -> RuleRunner:
    return tool_rule_runner(
        query_rules=[
            QueryRule(BuiltImage, [HostProcessImageFieldSet]),
            QueryRule(Digest, [DigestSubset]),
            QueryRule(DigestContents, [Digest]),
            QueryRule(Addresses, [DependenciesRequest]),
            QueryRule(PutativeTargets, [PutativeHostProcessTargetsRequest, AllOwnedSources]),
        ],
    )


def build(rule_runner: RuleRunner, address: Address) -> BuiltImage:
    target = rule_runner.get_target(address)
    return rule_runner.request(BuiltImage, [HostProcessImageFieldSet.create(target)])


def config(image: BuiltImage) -> dict:
    return json.loads(image.image.config)


def layer_names(rule_runner: RuleRunner, image: BuiltImage, index: int) -> list[str]:
    """The tar entry names of one layer, read back with Python's tarfile."""
    digest = image.image.layers[index].digest
    blob_path = f"blobs/sha256/{digest.split(':')[1]}"
    subset = rule_runner.request(Digest, [DigestSubset(image.layout, PathGlobs([blob_path]))])
    (blob,) = rule_runner.request(DigestContents, [subset])
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob.content))) as tar:
        return tar.getnames()


def dependencies(rule_runner: RuleRunner, address: Address) -> list[Address]:
    target = rule_runner.get_target(address)
    return list(
        rule_runner.request(
            Addresses, [DependenciesRequest(target[HostProcessImageDependenciesField])]
        )
    )


def build_error(rule_runner: RuleRunner, address: Address) -> str:
    with pytest.raises(ExecutionError) as info:
        build(rule_runner, address)
    return str(info.value)


def test_readme_dockerfile_builds_the_same_layers_as_examples_hello(
    rule_runner: RuleRunner,
) -> None:
    """The README's Dockerfile, as it is, against the hand-written `examples:hello`."""
    files = [
        "examples/BUILD",
        "examples/hello-world.ps1",
        "examples/dockerfile/BUILD",
        "examples/dockerfile/Dockerfile.windows",
        "examples/dockerfile/hello-world.ps1",
    ]
    rule_runner.write_files({path: Path(path).read_bytes() for path in files})
    # Like this repository's root `files(name="repo")`: a far owner that inference must skip.
    rule_runner.write_files({"BUILD": 'files(name="repo", sources=["examples/**/*"])\n'})
    address = Address("examples/dockerfile", target_name="dockerfile")
    hello = build(rule_runner, Address("examples", target_name="hello"))
    from_dockerfile = build(rule_runner, address)

    assert len(hello.image.layers) == 2
    assert [layer.digest for layer in from_dockerfile.image.layers] == [
        layer.digest for layer in hello.image.layers
    ]
    ours, theirs = config(from_dockerfile), config(hello)
    assert [h["created_by"] for h in ours.pop("history")] == [
        "hostprocess: base layer (licences, empty registry hives)",
        "hostprocess: layer of `ADD hello-world.ps1 .` (line 2) of examples/dockerfile:dockerfile",
    ]
    theirs.pop("history")
    assert ours == theirs
    assert from_dockerfile.files == hello.files
    # hello-world.ps1 came in by dependency inference from the ADD, from its nearest owner
    assert "dependencies" not in Path("examples/dockerfile/BUILD").read_text()
    assert dependencies(rule_runner, address) == [
        Address("examples/dockerfile", target_name="context", relative_file_path="hello-world.ps1")
    ]


AGENT_DOCKERFILE = f"""\
# escape=`
ARG TAG=v1.0.0
FROM {BASE}:${{TAG}}
ARG VERSION=0.0.0
LABEL org.example.version=$VERSION
WORKDIR C:\\hpc\\agent
COPY bin\\ .\\bin\\
COPY config/*.yaml conf/
COPY --chown=ContainerUser scripts/start.ps1 C:\\hpc\\agent\\start-agent.ps1
ENV AGENT_HOME=C:\\hpc\\agent
ENTRYPOINT ["powershell.exe", "-File", "start-agent.ps1"]
CMD -Verbose
"""


def write_agent(rule_runner: RuleRunner, **fields: str) -> Address:
    # Its WORKDIR is an absolute C:\ path, which containerd 1.7 resolves on the host: built
    # anyway here, as a team would while moving it (see test_a_dockerfiles_workdir_is_checked).
    fields = {"skip_checks": '["working-dir"]', **fields}
    extra = "".join(f"    {key}={value},\n" for key, value in fields.items())
    rule_runner.write_files(
        {
            "agent/BUILD": dedent(
                """
                files(name="bin", sources=["bin/**/*"])
                files(name="config", sources=["config/*", "scripts/*"])
                """
            )
            + f'hostprocess_image(\n    name="agent",\n    dockerfile="Dockerfile.windows",\n{extra})\n',
            "agent/Dockerfile.windows": AGENT_DOCKERFILE,
            "agent/bin/agent.exe": b"MZ agent",
            "agent/bin/lib/helper.dll": b"MZ helper",
            "agent/config/prod.yaml": "level: info\n",
            "agent/config/dev.yaml": "level: debug\n",
            "agent/config/notes.txt": "not copied\n",
            "agent/scripts/start.ps1": "Start-Agent\n",
            "agent/README.md": "not in any target\n",
        }
    )
    return Address("agent", target_name="agent")


def test_layers_destinations_config_and_build_args(rule_runner: RuleRunner) -> None:
    address = write_agent(rule_runner, build_args='{"VERSION": "1.2.3"}')
    image = build(rule_runner, address)
    # the built-in base, then one layer per COPY, as Docker does
    assert len(image.image.layers) == 4
    assert layer_names(rule_runner, image, 1) == [
        "Hives",
        "Files",
        "Files/hpc",
        "Files/hpc/agent",
        "Files/hpc/agent/bin",
        "Files/hpc/agent/bin/agent.exe",
        "Files/hpc/agent/bin/lib",
        "Files/hpc/agent/bin/lib/helper.dll",
    ]
    assert layer_names(rule_runner, image, 2)[-2:] == [
        "Files/hpc/agent/conf/dev.yaml",
        "Files/hpc/agent/conf/prod.yaml",
    ]
    assert layer_names(rule_runner, image, 3)[-1] == "Files/hpc/agent/start-agent.ps1"
    runtime = config(image)["config"]
    assert runtime["Labels"] == {"org.example.version": "1.2.3"}
    assert runtime["WorkingDir"] == "C:\\hpc\\agent"
    assert runtime["Env"] == ["AGENT_HOME=C:\\hpc\\agent"]
    assert runtime["Entrypoint"] == ["powershell.exe", "-File", "start-agent.ps1"]
    assert runtime["Cmd"] == ["cmd", "/S", "/C", "-Verbose"]
    assert [h["created_by"] for h in config(image)["history"]][1:] == [
        "hostprocess: layer of `COPY bin\\ .\\bin\\` (line 7) of agent:agent",
        "hostprocess: layer of `COPY config/*.yaml conf/` (line 8) of agent:agent",
        "hostprocess: layer of `COPY --chown=ContainerUser scripts/start.ps1 C:\\hpc\\agent\\start-agent.ps1` (line 9) of agent:agent",
    ]
    # inference found exactly the files the COPYs name, in the targets that own them
    assert {a.relative_file_path for a in dependencies(rule_runner, address)} == {
        "bin/agent.exe",
        "bin/lib/helper.dll",
        "config/prod.yaml",
        "config/dev.yaml",
        "scripts/start.ps1",
    }


def test_a_dockerfiles_workdir_is_checked(rule_runner: RuleRunner) -> None:
    address = write_agent(rule_runner, skip_checks="[]")
    with pytest.raises(ExecutionError) as exc:
        build(rule_runner, address)
    message = str(wrapped_error(exc.value))
    assert message.startswith(
        "The `hostprocess_image` target agent:agent would not run on a Windows node:\n"
        "  [working-dir] `WorkingDir` is `C:\\hpc\\agent`: since containerd 1.7"
    )
    assert "use `%CONTAINER_SANDBOX_MOUNT_POINT%\\hpc\\agent`" in message
    assert "set by the Dockerfile's WORKDIR" in message
    assert "add 'working-dir' to the target's `skip_checks`" in message
    # The script is found beside the working directory, as containerd 1.6 would find it.
    assert "entrypoint-script" not in message


def test_one_layer_for_all_copies_gives_the_same_files(rule_runner: RuleRunner) -> None:
    per_instruction = build(rule_runner, write_agent(rule_runner))
    one = build(rule_runner, write_agent(rule_runner, dockerfile_layers='"one"'))
    assert len(one.image.layers) == 2
    assert set(one.files or ()) == set(per_instruction.files or ())
    assert layer_names(rule_runner, one, 1)[-1] == "Files/hpc/agent/start-agent.ps1"


def test_fields_the_dockerfile_replaces_are_refused(rule_runner: RuleRunner) -> None:
    cases = [
        (
            {"entrypoint": '["x.exe"]'},
            "sets `dockerfile` and also `entrypoint` (the Dockerfile's ENTRYPOINT)",
        ),
        (
            {"env": '{"A": "1"}', "labels": '{"b": "2"}'},
            "also `env` (the Dockerfile's ENV), `labels` (the Dockerfile's LABEL)",
        ),
        (
            {"base": '"//other:image"'},
            "already says what the base is, so the target's `base` field",
        ),
    ]
    for fields, fragment in cases:
        message = build_error(rule_runner, write_agent(rule_runner, **fields))
        assert "agent:agent" in message and fragment in message


def test_refusals_name_the_target_the_file_and_the_line(rule_runner: RuleRunner) -> None:
    rule_runner.write_files(
        {
            "svc/BUILD": 'files(name="context", sources=["*.ps1"])\n'
            'hostprocess_image(name="run", dockerfile="run.Dockerfile")\n'
            'hostprocess_image(name="unowned", dockerfile="unowned.Dockerfile")\n'
            'hostprocess_image(name="unpinned", dockerfile="unpinned.Dockerfile")\n'
            'hostprocess_image(name="args", build_args={"A": "1"})\n'
            'hostprocess_image(name="device", dockerfile="device.Dockerfile")\n',
            "svc/run.Dockerfile": f"FROM {BASE}\nCOPY a.ps1 .\nRUN powershell ./a.ps1\n",
            "svc/unowned.Dockerfile": f"FROM {BASE}\nCOPY a.ps1 notes.txt C:/app/\n",
            "svc/unpinned.Dockerfile": "FROM registry.example.com/org/base:1.0\n",
            "svc/device.Dockerfile": f"FROM {BASE}\nCOPY a.ps1 C:/logs/NUL.ps1\n",
            "svc/a.ps1": "a\n",
            "svc/notes.txt": "nobody owns me\n",
        }
    )
    message = build_error(rule_runner, Address("svc", target_name="run"))
    assert (
        "The `dockerfile` svc/run.Dockerfile of the `hostprocess_image` target svc:run" in message
    )
    assert "line 3: `RUN powershell ./a.ps1` is not supported. RUN executes a command" in message

    message = build_error(rule_runner, Address("svc", target_name="unowned"))
    assert "the source `notes.txt` matches no file in the build context" in message
    assert 'files(name="context", sources=[...])' in message

    message = build_error(rule_runner, Address("svc", target_name="unpinned"))
    assert "line 1, `FROM registry.example.com/org/base:1.0` is neither" in message
    assert "FROM registry.example.com/org/base@sha256:<digest>" in message
    assert "set the target's `base` field" in message

    message = build_error(rule_runner, Address("svc", target_name="device"))
    assert (
        "the layer of `COPY a.ps1 C:/logs/NUL.ps1` (line 2) puts files where Windows cannot have "
        "them:\n  C:\\logs\\NUL.ps1 (from svc/a.ps1): " in message
    )
    assert "reserved" in message and "Change the ADD/COPY destination" in message

    message = build_error(rule_runner, Address("svc", target_name="args"))
    assert "sets `build_args` without `dockerfile`" in message


def test_from_an_image_built_here_maps_through_the_base_field(rule_runner: RuleRunner) -> None:
    rule_runner.write_files(
        {
            "org/BUILD": 'files(name="tools", sources=["tools.ps1"])\n'
            'hostprocess_image(name="base", dependencies=[":tools"], env={"ORG": "1"}, '
            'repository="windows/org-base")\n',
            "org/tools.ps1": "tools\n",
            "app/BUILD": 'files(name="context", sources=["app.ps1"])\n'
            'hostprocess_image(name="app", dockerfile="Dockerfile.windows", base="//org:base")\n',
            "app/Dockerfile.windows": "FROM windows/org-base:latest\nCOPY app.ps1 .\nENV APP=1\n",
            "app/app.ps1": "app\n",
        }
    )
    base = build(rule_runner, Address("org", target_name="base"))
    app = build(rule_runner, Address("app", target_name="app"))
    assert [l.digest for l in app.image.layers[:2]] == [l.digest for l in base.image.layers]
    assert len(app.image.layers) == 3
    assert config(app)["config"]["Env"] == ["ORG=1", "APP=1"]
    assert set(app.files or ()) >= {"tools.ps1", "app.ps1"}


class _Server(ThreadingHTTPServer):
    payload = b"downloaded tool\n"


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.send_response(200)
        self.send_header("Content-Length", str(len(_Server.payload)))
        self.end_headers()
        self.wfile.write(_Server.payload)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def http_url() -> Iterator[str]:
    server = _Server(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/dl/tool.exe"
    finally:
        server.shutdown()
        server.server_close()


def test_add_of_a_url_pinned_by_checksum(rule_runner: RuleRunner, http_url: str) -> None:
    good = hashlib.sha256(_Server.payload).hexdigest()
    rule_runner.write_files(
        {
            "dl/BUILD": 'hostprocess_image(name="good", dockerfile="good.Dockerfile")\n'
            'hostprocess_image(name="bad", dockerfile="bad.Dockerfile")\n',
            "dl/good.Dockerfile": f"FROM {BASE}\nADD --checksum=sha256:{good} {http_url} C:/tools/\n",
            "dl/bad.Dockerfile": f"FROM {BASE}\nADD --checksum=sha256:{'0' * 64} {http_url} C:/tools/t.exe\n",
        }
    )
    image = build(rule_runner, Address("dl", target_name="good"))
    assert image.files is not None and "tools/tool.exe" in image.files
    assert layer_names(rule_runner, image, 1)[-1] == "Files/tools/tool.exe"

    message = build_error(rule_runner, Address("dl", target_name="bad"))
    assert f"line 2: `ADD --checksum=sha256:{'0' * 64} {http_url} C:/tools/t.exe` failed" in message
    assert f"has sha256:{good}, but the Dockerfile pins sha256:{'0' * 64}" in message


def test_tailor_adds_images_beside_hostprocess_dockerfiles(rule_runner: RuleRunner) -> None:
    rule_runner.write_files(
        {
            "windows/agent/Dockerfile.windows": f"FROM {BASE}:v1.0.0\nADD hello-world.ps1 .\nCOPY conf/ C:/conf/\n",
            "windows/agent/hello-world.ps1": "hello\n",
            "windows/agent/conf/a.yaml": "a: 1\n",
            "windows/agent/unrelated.txt": "not copied\n",
            "windows/probe/Dockerfile": f"ARG TAG=v1.0.0\nFROM {BASE}:$TAG\nCOPY probe.ps1 .\n",
            "windows/probe/probe.ps1": "probe\n",
            "windows/probe/BUILD": 'files(name="scripts", sources=["probe.ps1"])\n',
            "linux/web/Dockerfile": "FROM debian:12\nCOPY app /app\n",
            "owned/Dockerfile.windows": f"FROM {BASE}\n",
            "owned/BUILD": 'hostprocess_image(name="owned", dockerfile="Dockerfile.windows")\n',
        }
    )
    owned = AllOwnedSources(["owned/Dockerfile.windows", "windows/probe/probe.ps1"])
    result = rule_runner.request(
        PutativeTargets,
        [
            PutativeHostProcessTargetsRequest(
                ("windows/agent", "windows/probe", "linux/web", "owned")
            ),
            owned,
        ],
    )
    assert sorted(result, key=lambda t: (t.path, t.name)) == [
        PutativeTarget.for_target_type(
            HostProcessImageTarget,
            "windows/agent",
            "agent",
            ["Dockerfile.windows"],
            kwargs={"dockerfile": "Dockerfile.windows"},
        ),
        PutativeTarget.for_target_type(
            FilesGeneratorTarget,
            "windows/agent",
            "context",
            ["conf/a.yaml", "hello-world.ps1"],
            kwargs={"sources": ("conf/a.yaml", "hello-world.ps1")},
        ),
        PutativeTarget.for_target_type(
            HostProcessImageTarget,
            "windows/probe",
            "probe",
            ["Dockerfile"],
            kwargs={"dockerfile": "Dockerfile"},
        ),
    ]
