"""RuleRunner tests of the `hostprocess_image` target and the package rule's input checks."""
from __future__ import annotations

import logging
from textwrap import dedent

import pytest
from pants.core.target_types import FilesGeneratorTarget, RelocatedFiles
from pants.core.target_types import rules as core_target_type_rules
from pants.core.util_rules import source_files
from pants.engine.addresses import Address
from pants.engine.internals.scheduler import ExecutionError
from pants.engine.target import InvalidFieldException, InvalidTargetException
from pants.testutil.rule_runner import QueryRule, RuleRunner

from hostprocess import register
from hostprocess.util_rules.errors import ImageBuildError
from hostprocess.util_rules.image import BuiltImage, HostProcessImageFieldSet
from hostprocess.util_rules.inputs import InvalidImagePathError, check_destinations
from rules.rule_runners import wrapped_error


@pytest.fixture
def rule_runner() -> RuleRunner:
    return RuleRunner(
        target_types=[*register.target_types(), FilesGeneratorTarget, RelocatedFiles],
        rules=[
            *register.rules(),
            *core_target_type_rules(),
            *source_files.rules(),
            QueryRule(BuiltImage, [HostProcessImageFieldSet]),
        ],
    )


def image_target(rule_runner: RuleRunner, fields: str) -> None:
    rule_runner.write_files(
        {
            "img/BUILD": f"files(name='f', sources=['a.txt'])\nhostprocess_image(name='img', dependencies=[':f'], {fields})\n",
            "img/a.txt": "a",
        }
    )
    rule_runner.get_target(Address("img", target_name="img"))


@pytest.mark.parametrize(
    "fields, field, value",
    [
        ("architecture='x86'", "architecture", "x86"),
        ("media_types='oci2'", "media_types", "oci2"),
        ("env={'A=B': 'c'}", "env", "A=B"),
        ("env={'': 'c'}", "env", "''"),
        ("working_dir='app'", "working_dir", "app"),
        ("working_dir='/app'", "working_dir", "/app"),
        ("image_tags=['bad tag']", "image_tags", "bad tag"),
        ("image_tags=['-lead']", "image_tags", "-lead"),
        ("repository='Upper/Case'", "repository", "Upper/Case"),
        ("output_formats=['zip']", "output_formats", "zip"),
        ("output_formats=[]", "output_formats", "[]"),
        ("entrypoint='powershell.exe'", "entrypoint", "powershell.exe"),
        ("labels={'a': 1}", "labels", "1"),
    ],
)
def test_bad_field_values_name_target_field_and_value(
    rule_runner: RuleRunner, fields: str, field: str, value: str
) -> None:
    with pytest.raises(ExecutionError) as exc:
        image_target(rule_runner, fields)
    wrapped = wrapped_error(exc.value)
    # Pants wraps field errors raised while parsing BUILD files in InvalidTargetException.
    assert isinstance(wrapped, InvalidTargetException)
    message = str(wrapped)
    assert "img:img" in message and field in message and value in message, message


TAG_FIX = (
    "tags are 1-128 characters of letters, digits, `_`, `.` and `-`, not starting with `.` or `-`."
)
REPOSITORY_FIX = (
    "repository names are lowercase path components of letters and digits separated by `/`, "
    "with `.`, `_`, `__` or `-` inside components."
)


@pytest.mark.parametrize(
    "fields, field, value, fix",
    [
        ("image_tags=['v1', 'bad tag']", "image_tags", "'bad tag'", TAG_FIX),
        ("image_tags=['.v1']", "image_tags", "'.v1'", TAG_FIX),
        ("image_tags=['" + "a" * 129 + "']", "image_tags", "'" + "a" * 129 + "'", TAG_FIX),
        ("repository='Upper/Case'", "repository", "'Upper/Case'", REPOSITORY_FIX),
        ("repository='team//app'", "repository", "'team//app'", REPOSITORY_FIX),
        ("repository='a___b'", "repository", "'a___b'", REPOSITORY_FIX),
        (
            "base='registry.example.com/team/base:v1'",
            "base",
            "'registry.example.com/team/base:v1'",
            "an external base must be pinned by digest, so that every build uses the same bytes: "
            "`registry.example.com/team/base@sha256:<digest>`.",
        ),
    ],
)
def test_validation_messages_name_target_field_value_and_fix(
    rule_runner: RuleRunner, fields: str, field: str, value: str, fix: str
) -> None:
    with pytest.raises(ExecutionError) as exc:
        image_target(rule_runner, fields)
    wrapped = wrapped_error(exc.value)
    expected = f"The `{field}` field of the `hostprocess_image` target img:img has the invalid value {value}: {fix}"
    assert expected in str(wrapped), str(wrapped)


@pytest.mark.parametrize(
    "fields",
    ["image_tags=['" + "a" * 128 + "', '_', 'V1.0-rc_2']", "repository='a.b_c__d-e--f/g9'"],
)
def test_grammar_edges_are_accepted(rule_runner: RuleRunner, fields: str) -> None:
    image_target(rule_runner, fields)


def test_good_fields_are_accepted(rule_runner: RuleRunner) -> None:
    image_target(
        rule_runner,
        dedent(
            """\
            architecture='arm64', media_types='docker', env={'PATH': 'C:\\\\Windows'},
            working_dir='%CONTAINER_SANDBOX_MOUNT_POINT%\\\\app', image_tags=['v1.2.3', 'latest'],
            repository='windows/node-agent', output_formats=['docker-archive'],
            entrypoint=['agent.exe'], cmd=['--verbose'], user='NT AUTHORITY\\\\SYSTEM'
            """
        ),
    )
    target = rule_runner.get_target(Address("img", target_name="img"))
    field_set = HostProcessImageFieldSet.create(target)
    runtime = field_set.runtime_config()
    assert runtime.entrypoint == ("agent.exe",)
    assert runtime.env == {"PATH": "C:\\Windows"}
    assert field_set.repository.value_or_default("{directory}/{name}") == "windows/node-agent"


@pytest.mark.parametrize(
    "template, expected",
    [
        ("{directory}/{name}", "img/img"),
        ("{name}", "img"),
        ("team/{parent_directory}-{name}", "team/img-img"),
    ],
)
def test_repository_default_template(rule_runner: RuleRunner, template: str, expected: str) -> None:
    image_target(rule_runner, "")
    target = rule_runner.get_target(Address("img", target_name="img"))
    assert HostProcessImageFieldSet.create(target).repository.value_or_default(template) == expected


@pytest.mark.parametrize("template", ["{nmae}", "{Name}/{directory}", "UPPER/{name}"])
def test_bad_repository_template(rule_runner: RuleRunner, template: str) -> None:
    image_target(rule_runner, "")
    target = rule_runner.get_target(Address("img", target_name="img"))
    with pytest.raises(InvalidFieldException, match="`repository`"):
        HostProcessImageFieldSet.create(target).repository.value_or_default(template)


def test_bad_repository_from_template_says_to_set_it(rule_runner: RuleRunner) -> None:
    image_target(rule_runner, "")
    target = rule_runner.get_target(Address("img", target_name="img"))
    with pytest.raises(InvalidFieldException) as exc:
        HostProcessImageFieldSet.create(target).repository.value_or_default("Team/{name}")
    assert str(exc.value) == (
        "The `repository` field of the `hostprocess_image` target img:img has the invalid value "
        f"'Team/img': {REPOSITORY_FIX[:-1]} (set `repository` explicitly)."
    )


def test_files_outside_the_image_directory_are_refused(rule_runner: RuleRunner) -> None:
    rule_runner.write_files(
        {
            "other/BUILD": "files(name='o', sources=['far.txt'])",
            "other/far.txt": "far",
            "img/BUILD": "hostprocess_image(name='img', dependencies=['other:o'])",
        }
    )
    target = rule_runner.get_target(Address("img", target_name="img"))
    with pytest.raises(ExecutionError) as exc:
        rule_runner.request(BuiltImage, [HostProcessImageFieldSet.create(target)])
    wrapped = wrapped_error(exc.value)
    assert isinstance(wrapped, ImageBuildError)
    message = str(wrapped)
    assert "img:img" in message and "`dependencies`" in message
    assert "other/far.txt" in message and "relocated_files" in message


@pytest.mark.parametrize(
    "files, rule, shown",
    [
        (["CON.txt"], "reserved-name", "C:\\CON.txt"),
        (["bin/lpt1"], "reserved-name", "C:\\bin\\lpt1"),
        (["a:b.txt"], "drive-letter", "a:b.txt"),
        (["dir/a:b"], "invalid-character", "C:\\dir\\a:b"),
        (["what?.ps1"], "invalid-character", "what?.ps1"),
        (["tab\tname"], "invalid-character", "tab"),
        (["trailing."], "trailing-dot-or-space", "C:\\trailing."),
        (["trailing "], "trailing-dot-or-space", "C:\\trailing "),
        (["dir./x"], "trailing-dot-or-space", "dir."),
        ([".wh.hidden"], "whiteout-prefix", ".wh.hidden"),
        (["Readme.txt", "README.TXT"], "case-collision", "README.TXT"),
        (["tools", "TOOLS/x.exe"], "case-collision", "TOOLS"),
    ],
)
def test_windows_incompatible_paths_are_refused(
    rule_runner: RuleRunner, files: list[str], rule: str, shown: str
) -> None:
    rule_runner.write_files(
        {
            "img/BUILD": "files(name='f', sources=['**/*', '!BUILD'])\nhostprocess_image(name='img', dependencies=[':f'])",
            **{f"img/{name}": "x" for name in files},
        }
    )
    target = rule_runner.get_target(Address("img", target_name="img"))
    with pytest.raises(ExecutionError) as exc:
        rule_runner.request(BuiltImage, [HostProcessImageFieldSet.create(target)])
    wrapped = wrapped_error(exc.value)
    assert isinstance(wrapped, InvalidImagePathError)
    assert rule in {problem.rule for problem in wrapped.problems}
    message = str(wrapped)
    assert "img:img" in message and "`dependencies`" in message and shown in message, message
    assert any(f"(from img/{name})" in message for name in files)  # the source, to rename it


def test_long_paths_warn_with_the_limit(
    rule_runner: RuleRunner, caplog: pytest.LogCaptureFixture
) -> None:
    deep = "/".join(["d" * 40] * 5) + "/file.txt"  # 213 characters: over the 187 budget
    rule_runner.write_files(
        {
            "img/BUILD": "files(name='f', sources=['**/*.txt'])\nhostprocess_image(name='img', dependencies=[':f'])",
            f"img/{deep}": "x",
        }
    )
    target = rule_runner.get_target(Address("img", target_name="img"))
    with caplog.at_level(logging.WARNING):
        check_destinations(target.address, [deep], [f"img/{deep}"])
    [warning] = [r.getMessage() for r in caplog.records]
    assert "img:img" in warning and "260" in warning and deep.replace("/", "\\") in warning


def request_image(rule_runner: RuleRunner, spec_path: str, name: str) -> Exception:
    target = rule_runner.get_target(Address(spec_path, target_name=name))
    with pytest.raises(ExecutionError) as exc:
        rule_runner.request(BuiltImage, [HostProcessImageFieldSet.create(target)])
    wrapped = wrapped_error(exc.value)
    return wrapped


def test_base_cycle_is_named(rule_runner: RuleRunner) -> None:
    rule_runner.write_files(
        {
            "a/BUILD": "hostprocess_image(name='a', base='//b:b')",
            "b/BUILD": "hostprocess_image(name='b', base='//c:c')",
            "c/BUILD": "hostprocess_image(name='c', base='//a:a')",
        }
    )
    error = request_image(rule_runner, "a", "a")
    assert isinstance(error, ImageBuildError)
    assert "a:a -> b:b -> c:c -> a:a" in str(error) and "`base`" in str(error)


def test_base_must_be_an_image(rule_runner: RuleRunner) -> None:
    rule_runner.write_files(
        {
            "a/BUILD": "files(name='f', sources=['x.txt'])\nhostprocess_image(name='a', base=':f')",
            "a/x.txt": "x",
        }
    )
    error = request_image(rule_runner, "a", "a")
    assert isinstance(error, ImageBuildError)
    assert "a:f" in str(error) and "not a `hostprocess_image`" in str(error), str(error)


def test_image_in_dependencies_points_to_base(rule_runner: RuleRunner) -> None:
    rule_runner.write_files(
        {
            "a/BUILD": "hostprocess_image(name='base')\nhostprocess_image(name='app', dependencies=[':base'])"
        }
    )
    error = request_image(rule_runner, "a", "app")
    assert isinstance(error, ImageBuildError)
    assert "a:app" in str(error) and "base=" in str(error) and "a:base" in str(error)


@pytest.mark.parametrize(
    "base, shown",
    [
        (
            "mcr.microsoft.com/oss/kubernetes/windows-host-process-containers-base-image:v1.0.0",
            "mcr.microsoft.com/oss/kubernetes/windows-host-process-containers-base-image@sha256:<digest>",
        ),
        ("localhost:5000/team/base", "localhost:5000/team/base@sha256:<digest>"),
    ],
)
def test_external_base_must_be_pinned(rule_runner: RuleRunner, base: str, shown: str) -> None:
    with pytest.raises(ExecutionError) as exc:
        image_target(rule_runner, f"base={base!r}")
    wrapped = wrapped_error(exc.value)
    message = str(wrapped)
    assert (
        "img:img" in message
        and "base" in message
        and shown in message
        and "skopeo inspect" in message
    )
