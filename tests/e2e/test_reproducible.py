"""Two builds from two checkouts at different paths give byte-identical outputs.

The second build runs with Pants' process cache disabled, so its layers are really
rebuilt rather than replayed from the first build's cache entries.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from typing import Callable

from e2e.checkout import Checkout, load_json


def dist_digests(checkout: Checkout) -> dict[str, str]:
    return {
        str(path.relative_to(checkout.dist)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(checkout.dist.rglob("*"))
        if path.is_file()
    }


def test_two_checkouts_same_bytes(checkout_factory: Callable[[str], Checkout]) -> None:
    first = checkout_factory("a")
    second = checkout_factory("some/much/deeper/other-checkout")
    # examples/dockerfile adds the Dockerfile parse (a process of its own) to the comparison.
    first.pants("package", "examples:hello", "examples/dockerfile")
    second.pants("--no-local-cache", "package", "examples:hello", "examples/dockerfile")
    assert dist_digests(first) == dist_digests(second)
    assert "examples.dockerfile/dockerfile.image.json" in dist_digests(first)
    assert load_json(first.dist / "examples" / "hello.image.json")["digest"].startswith("sha256:")


def test_source_date_epoch_changes_only_timestamps(
    checkout_factory: Callable[[str], Checkout]
) -> None:
    checkout = checkout_factory("epoch")
    checkout.pants("package", "examples:hello", env={"SOURCE_DATE_EPOCH": "1700000000"})
    layout = checkout.dist / "examples" / "hello"
    summary = load_json(checkout.dist / "examples" / "hello.image.json")
    config = load_json(layout / "blobs" / "sha256" / summary["config"]["digest"].split(":")[1])
    assert config["created"] == "2023-11-14T22:13:20Z"
    user_layer = layout / "blobs" / "sha256" / summary["layers"][1]["digest"].split(":")[1]
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(user_layer.read_bytes()))) as tar:
        assert {m.mtime for m in tar.getmembers()} == {1700000000}
