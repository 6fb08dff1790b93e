"""What the targets' fields share: one wording for an invalid value, and plain values."""

from __future__ import annotations

from typing import Any, Callable

from pants.engine.addresses import Address
from pants.engine.target import Field, InvalidFieldException, StringSequenceField
from pants.util.frozendict import FrozenDict

from hostprocess.compat.catalog import CHECK_NAMES


def invalid_field(
    target: str, address: Address, alias: str, value: Any, fix: str
) -> InvalidFieldException:
    """The error for field `alias` of the `target` at `address`: the value, then the fix."""
    return InvalidFieldException(
        f"The `{alias}` field of the `{target}` target {address} has the invalid value "
        f"{value!r}: {fix}"
    )


def checked_value(
    target: str, cls: type[Field], value: Any, address: Address, check: Callable[[Any], Any]
) -> Any:
    """`check(value)`, its ValueError (the core's reason) turned into an `invalid_field`."""
    try:
        return check(value)
    except ValueError as e:
        raise invalid_field(target, address, cls.alias, value, str(e)) from None


def thaw(value: Any) -> Any:
    """Plain dicts and lists from a field's frozen value, for the manifest."""
    if isinstance(value, FrozenDict):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [thaw(v) for v in value]
    return value


class SkipChecksField(StringSequenceField):
    """Compatibility checks (`hostprocess.compat.catalog`) a target leaves out, by name."""

    alias = "skip_checks"
    valid_choices = CHECK_NAMES
