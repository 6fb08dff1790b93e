"""RuleRunner tests of the `hostprocess_image` target and the package rule's input checks."""
from __future__ import annotations

from textwrap import dedent

import pytest
from pants.core.target_types import FilesGeneratorTarget, RelocatedFiles
from pants.core.target_types import rules as core_target_type_rules
from pants.core.util_rules import source_files
from pants.engine.addresses import Address
from pants.engine.internals.scheduler import ExecutionError
from pants.engine.target import InvalidTargetException
from pants.testutil.rule_runner import QueryRule, RuleRunner

from hostprocess import register
from hostprocess.goals.package import BuiltImage, HostProcessImageFieldSet, ImageBuildError


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
    [wrapped] = exc.value.wrapped_exceptions
    # Pants reports field errors as InvalidTargetException (InvalidFieldException's base).
    assert isinstance(wrapped, InvalidTargetException)
    message = str(wrapped)
    assert "img:img" in message and field in message and value in message, message


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
    assert field_set.repository.value_or_default() == "windows/node-agent"


def test_repository_defaults_to_target_name(rule_runner: RuleRunner) -> None:
    image_target(rule_runner, "")
    target = rule_runner.get_target(Address("img", target_name="img"))
    assert HostProcessImageFieldSet.create(target).repository.value_or_default() == "img"


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
    [wrapped] = exc.value.wrapped_exceptions
    assert isinstance(wrapped, ImageBuildError)
    message = str(wrapped)
    assert "img:img" in message and "`dependencies`" in message
    assert "other/far.txt" in message and "relocated_files" in message
