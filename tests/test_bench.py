"""`python -m replicate.bench` on CPU: end to end, FLOPs, graph breaks, the contenders that
cannot run here, and the training loop against the bench."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from replicate.bench.__main__ import main, parse_args
from replicate.bench.contenders import BenchConfig
from replicate.flops import forward_flops
from vit import VisionTransformer, ViTConfig

SMOKE = ["--image-size", "32", "--batch-size", "4", "--steps", "2", "--warmup", "1",
         "--repeats", "2", "--precision", "fp32"]  # fmt: skip


def test_bench_runs_end_to_end_on_cpu(tmp_path) -> None:
    main(["--variant", "vit_ti16", *SMOKE, "--out", str(tmp_path)])
    report = json.loads((tmp_path / "vit_ti16-32-cpu-fp32-eager.json").read_text())
    assert report["device"]["type"] == "cpu" and report["versions"]["torch"]
    assert report["matmul_peak_flops"] > 0 and report["forward_flops"] > 0
    ours, timm, torchvision = report["results"]
    for timed in (ours, timm):
        assert timed["batch_size"] == 4 and timed["params"] == 5_680_552
        for phase in (timed["train"], timed["inference"]):
            assert phase["images_per_s"] > 0 and len(phase["images_per_s_blocks"]) == 2
            assert 0 < phase["mfu"] < 1
    assert "no equivalent of vit_ti16" in torchvision["skipped"]
    table = (tmp_path / "vit_ti16-32-cpu-fp32-eager.md").read_text()
    assert "| ours vit_ti16 | 5.7M | 4 |" in table and "timm vit_tiny_patch16_224" in table


def test_cli_rejects_unknown_models() -> None:
    with pytest.raises(SystemExit):
        parse_args(["--models", "ours,keras"])
    config, _ = parse_args(["--models", "ours", "--compile", "--model-arg", "patch_size=4"])
    assert config.models == ("ours",) and config.compile_mode == "default"
    assert config.model_overrides == {"patch_size": 4}


def test_vit_b16_forward_is_17_6_gmacs() -> None:
    assert forward_flops("vit_b16", 224) == pytest.approx(2 * 17.6e9, rel=0.02)


@pytest.mark.parametrize("training", [True, False])
def test_no_graph_breaks_in_our_model(tiny_config: ViTConfig, training: bool) -> None:
    """Traced by dynamo (no compiler needed): one graph, no fall-back to Python."""
    model = VisionTransformer(tiny_config).train(training)
    explanation = torch._dynamo.explain(model)(torch.randn(2, 3, 32, 32))
    torch._dynamo.reset()
    reasons = [str(reason.reason) for reason in explanation.break_reasons]
    assert explanation.graph_break_count == 0 and explanation.graph_count == 1, reasons


def test_fp8_says_why_it_cannot_run(tmp_path: Path) -> None:
    """fp8 needs a GPU with float8 tensor cores."""
    report = main(["--variant", "vit_ti16", "--out", str(tmp_path), *SMOKE, "--precision", "fp8"])
    reasons = {r.model: r.skipped for r in report.results}
    assert not torch.cuda.is_available()  # this test is for machines without a GPU
    for kind in ("ours", "timm"):
        assert "--precision fp8 needs an NVIDIA GPU" in reasons[kind]
    table = (tmp_path / "vit_ti16-32-cpu-fp8-eager.md").read_text()
    assert "- ours vit_ti16: skipped (--precision fp8 needs an NVIDIA GPU" in table


def test_gradient_checkpointing_in_the_bench(tmp_path: Path) -> None:
    report = main(["--variant", "vit_b16", "--models", "ours,torchvision", "--grad-checkpointing",
                   "--model-arg", "depth=1", "--model-arg", "hidden_size=32",
                   "--model-arg", "num_heads=2", "--model-arg", "mlp_size=64",
                   *SMOKE, "--out", str(tmp_path)])  # fmt: skip
    ours, torchvision = report.results
    assert ours.train.images_per_s > 0 and ours.params < 100_000
    assert "--model-arg changes our model and timm's only" in torchvision.skipped
    assert (tmp_path / "vit_b16-32-cpu-fp32-eager-checkpointing.json").is_file()


def test_training_loop_against_the_bench(tmp_path: Path) -> None:
    """--train-run: our model benched with the run's settings, the ratio of the loop's img/s."""
    from test_train import TINY_VIT

    from replicate.train import main as train

    run = tmp_path / "run"
    train([*TINY_VIT, "--epochs", "2", "--out", str(run)])
    report = main(["--train-run", str(run), "--steps", "2", "--warmup", "1", "--repeats", "2",
                   "--out", str(tmp_path / "bench")])  # fmt: skip
    (ours,) = report.results
    assert (ours.batch_size, ours.params, report.config.image_size) == (128, 15_306, 16)
    assert report.config.model_overrides == {"dropout": 0.1, "patch_size": 8, "depth": 1,
        "hidden_size": 32, "num_heads": 2, "mlp_size": 64}  # fmt: skip
    loop = report.train_loop
    logged = [json.loads(line)["images_per_s"] for line in (run / "metrics.jsonl").open()]
    assert loop.images_per_s == logged[1] and loop.epochs_images_per_s == tuple(logged)
    assert loop.ratio == loop.images_per_s / ours.train.images_per_s
    assert set(loop.phase_s) == {"data", "step", "log", "eval"}
    assert loop.run == "run"  # outside the working directory: its name, no machine path
    table = next((tmp_path / "bench").glob("vit_ti16-16-cpu-fp32-eager-trainloop-run.md"))
    assert f"**{loop.ratio:.0%}**" in table.read_text()


def test_a_suite_times_every_configuration_in_both_precisions_and_modes(
    tmp_path: Path, monkeypatch
) -> None:
    """`--suite`: each entry in fp32 and bf16, eager and compiled, with timm's model built to
    the same configuration as ours (here a one-layer ViT with 8x8 patches)."""
    from replicate.bench import suites

    tiny = {"patch_size": 8, "depth": 1, "hidden_size": 32, "num_heads": 2, "mlp_size": 64}
    timing = {"warmup": 1, "steps": 1, "repeats": 1}
    entry = suites.SuiteEntry(
        "tiny", BenchConfig("vit_ti16", ("ours", "timm"), 2, 16, 10, model_overrides=tiny, **timing)
    )
    monkeypatch.setitem(suites.SUITES, "tiny", (entry,))
    monkeypatch.setattr(suites, "MODES", (None,))  # compiling is the slow part; same code path
    reports, table = suites.run_suite("tiny", tmp_path)
    assert [r.precision for r in reports] == ["fp32", "bf16"]
    for report in reports:
        ours, timm = report.results
        assert timm.skipped is None and timm.params == ours.params  # the same network
    rows = [line for line in table.read_text().splitlines() if line.startswith("| vit_ti16")]
    assert len(rows) == 4 and all("x |" in row for row in rows)  # train and inference, ratios
