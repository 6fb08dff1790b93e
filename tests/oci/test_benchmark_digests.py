"""The benchmarks' trees keep their layer digests: speed work may not change layer bytes.

The trees come from the benchmark's own generators (deterministic content), smaller than in
a benchmark run; each is written by the `layer` command the package rule runs, with 1 and
with 4 threads. A changed digest means the layer writer's output changed.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from layer_benchmark import make_small_file_tree, make_tree

from hostprocess.oci.cli import main

# The same before the speed work began (at 347e988) and after; never to be updated for speed.
BENCHMARK_TREE_LAYER = "sha256:21afe9983fff91eb42c7403c379975a12059ac50c0745e43e907d1a1d8b4ef3e"
SCALE_TREE_LAYER = "sha256:836415612c52377b7b35ff12ef1f891769186720364052f82807227d2a63e711"


def _layer_digest(root: Path, out: Path, threads: int) -> str:
    argv = ["layer", "--root", str(root), "--out", str(out), "--level", "1"]
    assert main([*argv, "--threads", str(threads)]) == 0
    return json.loads((out / "layer.json").read_text())["digest"]


@pytest.mark.parametrize("threads", [1, 4])
def test_the_benchmark_tree_keeps_its_layer_digest(tmp_path: Path, threads: int) -> None:
    make_tree(tmp_path / "tree", total_mib=8)
    assert _layer_digest(tmp_path / "tree", tmp_path / "out", threads) == BENCHMARK_TREE_LAYER


@pytest.mark.parametrize("threads", [1, 4])
def test_the_scale_tree_keeps_its_layer_digest(tmp_path: Path, threads: int) -> None:
    make_small_file_tree(tmp_path / "tree", files=3000)
    assert _layer_digest(tmp_path / "tree", tmp_path / "out", threads) == SCALE_TREE_LAYER
