"""`python -m replicate.bench` (project issue 5), on CPU: end to end, FLOPs, graph breaks."""

from __future__ import annotations

import json

import pytest
import torch

from replicate.bench.__main__ import main, parse_args
from replicate.bench.graph_breaks import explain
from replicate.bench.max_batch import largest_fitting, largest_training_batch
from replicate.flops import forward_flops
from vit import VisionTransformer, ViTConfig


def test_bench_runs_end_to_end_on_cpu(tmp_path) -> None:
    main(
        ["--variant", "vit_ti16", "--image-size", "32", "--batch-size", "4"]
        + ["--steps", "2", "--warmup", "1", "--repeats", "2", "--out", str(tmp_path)]
    )
    report = json.loads((tmp_path / "vit_ti16-cpu-fp32-eager.json").read_text())
    assert report["device"]["type"] == "cpu" and report["versions"]["torch"]
    assert report["matmul_peak_flops"] > 0 and report["forward_flops"] > 0
    ours, timm, torchvision = report["results"]
    for timed in (ours, timm):
        assert timed["batch_size"] == 4 and timed["params"] == 5_680_552
        for phase in (timed["train"], timed["inference"]):
            assert phase["images_per_s"] > 0 and len(phase["images_per_s_blocks"]) == 2
            assert 0 < phase["mfu"] < 1
    assert "no equivalent of vit_ti16" in torchvision["skipped"]
    table = (tmp_path / "vit_ti16-cpu-fp32-eager.md").read_text()
    assert "| ours vit_ti16 | 5.7M | 4 |" in table and "timm vit_tiny_patch16_224" in table


def test_cli_rejects_unknown_models() -> None:
    with pytest.raises(SystemExit):
        parse_args(["--models", "ours,keras"])
    config, _ = parse_args(["--models", "ours", "--compile"])
    assert config.models == ("ours",) and config.compile_mode == "default"


def test_vit_b16_forward_is_17_6_gmacs() -> None:
    assert forward_flops("vit_b16", 224) == pytest.approx(2 * 17.6e9, rel=0.02)


@pytest.mark.parametrize("training", [True, False])
def test_no_graph_breaks_in_our_model(tiny_config: ViTConfig, training: bool) -> None:
    model = VisionTransformer(tiny_config).train(training)
    breaks = explain(model, torch.randn(2, 3, 32, 32))
    assert breaks.graph_break_count == 0 and breaks.graph_count == 1, breaks.reasons


@pytest.mark.parametrize("capacity, start", [(300, 64), (300, 1000), (5, 64), (1, 1)])
def test_largest_fitting_finds_the_capacity(capacity: int, start: int) -> None:
    probes = []

    def fits(batch_size: int) -> bool:
        probes.append(batch_size)
        return batch_size <= capacity

    found = largest_fitting(fits, start, granularity=8)
    assert capacity - 8 < found <= capacity and len(probes) <= 12


def test_largest_fitting_limits() -> None:
    assert largest_fitting(lambda b: True, 64, limit=1024) == 1024
    with pytest.raises(RuntimeError, match="not even a batch of 1"):
        largest_fitting(lambda b: False, 8)


def test_max_batch_search_needs_a_gpu(tiny_config: ViTConfig) -> None:
    with pytest.raises(ValueError, match="needs a GPU"):
        largest_training_batch(VisionTransformer(tiny_config), 32, 5, "fp32", start=4)
