"""`python -m replicate.train` end to end on the CPU, with models small enough to train in
seconds: recipes, outputs, exact resumption, fine-tuning from a checkpoint, torchrun, bad input."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from test_data import write_image_folder
from test_official_layouts import official_params

import vit
from replicate import train as train_module
from replicate.cli_errors import run_cli
from replicate.errors import DivergedError
from replicate.runtime import default_precision
from replicate.train import main
from replicate.training.checkpoint import WEIGHTS, latest_checkpoint, load_model, read_state
from replicate.training.config import build_parser, resolve_config
from replicate.training.recipes import (
    FEATURE_EXTRACT,
    FINETUNE,
    SCRATCH,
    build_optimizer,
    lr_factor,
)

REPO = Path(__file__).resolve().parents[1]
# ViT-Ti/16 shrunk to one layer of width 32 on 16x16 digits with 8x8 patches: a 2x2 grid.
# fp32: the tests compare runs to the last bit; bf16, the CPU default with AMX, in test_cpu_path.
TINY_VIT = [
    "--variant", "vit_ti16", "--image-size", "16", "--batch-size", "128", "--workers", "0",
    "--precision", "fp32", "--checkpoint-minutes", "0",  # every epoch: what resumes start from
    *("--model-arg", "patch_size=8", "--model-arg", "depth=1"),
    *("--model-arg", "hidden_size=32", "--model-arg", "num_heads=2", "--model-arg", "mlp_size=64"),
]  # fmt: skip


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models gain nothing from a second thread, and lose much when the cores are shared."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def run(out: Path, *options: str) -> torch.nn.Module:
    return main([*TINY_VIT, "--out", str(out), *options])


def metrics(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def resolve(*argv: str):
    return resolve_config(build_parser().parse_args(list(argv)))


# Recipes: Appendix B's values, and what the options and the dataset change.


def test_recipes_hold_the_papers_values() -> None:
    assert (SCRATCH.optimizer, SCRATCH.betas, SCRATCH.weight_decay) == ("adamw", (0.9, 0.999), 0.3)
    assert (SCRATCH.grad_clip, SCRATCH.dropout, SCRATCH.warmup_steps) == (1.0, 0.1, 10_000)
    assert (FINETUNE.optimizer, FINETUNE.momentum, FINETUNE.weight_decay) == ("sgd", 0.9, 0.0)
    assert (FINETUNE.schedule, FINETUNE.grad_clip, FINETUNE.image_size) == ("cosine", 1.0, 384)
    assert FINETUNE.new_head and not FINETUNE.freeze_backbone
    assert FEATURE_EXTRACT.freeze_backbone and FEATURE_EXTRACT.optimizer == "sgd"


def test_no_weight_decay_on_position_embedding_class_token_biases_and_norms() -> None:
    model = vit.create_model("vit_ti16", num_classes=3, image_size=32, depth=1)
    optimizer = build_optimizer(model, SCRATCH, fused=False)
    assert isinstance(optimizer, torch.optim.AdamW)
    decay = {id(p) for g in optimizer.param_groups if g["weight_decay"] == 0.3 for p in g["params"]}
    names = {n for n, p in model.named_parameters() if id(p) in decay}
    assert "embedding.projection.weight" in names and "head.classifier.weight" in names
    assert not names & {"embedding.position_embedding", "embedding.class_token"}
    assert not any(n.endswith("bias") or "norm" in n for n in names)
    assert sum(len(g["params"]) for g in optimizer.param_groups) == len(list(model.parameters()))


def test_learning_rate_warms_up_linearly_then_decays_to_zero() -> None:
    cosine = [lr_factor(s, warmup=10, total=110, schedule="cosine") for s in range(110)]
    linear = [lr_factor(s, warmup=10, total=110, schedule="linear") for s in range(110)]
    assert cosine[:10] == pytest.approx([(s + 1) / 10 for s in range(10)])
    assert cosine[10] == linear[10] == 1.0
    assert cosine[60] == pytest.approx(0.5) and linear[60] == pytest.approx(0.5)
    assert cosine[35] > linear[35]  # cosine stays high longer
    assert lr_factor(110, warmup=10, total=110, schedule="cosine") == pytest.approx(0.0)


def test_default_run_is_vit_b16_from_scratch_on_digits_at_32() -> None:
    config = resolve()
    assert (config.variant, config.dataset, config.recipe.name) == ("vit_b16", "digits", "scratch")
    assert (config.image_size, config.epochs, config.steps) == (32, 15, None)
    assert config.precision == default_precision()[0]  # bf16 on a GPU and on a CPU with AMX
    assert config.out.startswith("runs/vit_b16-digits-")


def test_options_override_recipe_and_dataset_defaults() -> None:
    config = resolve("--variant", "vit_s16", "--pretrained", "x.safetensors", "--dataset",
                     "oxford_pets", "--lr", "0.003", "--schedule", "linear")  # fmt: skip
    assert config.recipe.name == "finetune" and config.image_size == 384  # Table 4
    assert (config.recipe.lr, config.recipe.schedule) == (0.003, "linear")
    assert (config.steps, config.epochs) == (500, None)  # Table 4: Pets, 500 steps
    assert resolve("--variant", "tinyvgg", "--dataset", "cifar10").image_size == 64
    tiny = resolve("--model-arg", "depth=2", "--model-arg", "pool=gap", "--epochs", "3")
    assert tiny.model_overrides == {"depth": 2, "pool": "gap"} and tiny.epochs == 3


# End to end: a tiny ViT and TinyVGG on digits and on an image folder.


def test_vit_run_writes_every_output_and_its_loss_falls(tmp_path: Path) -> None:
    out = tmp_path / "run"
    model = run(out, "--epochs", "3", "--lr", "3e-3")
    lines = metrics(out)
    assert [m["epoch"] for m in lines] == [1, 2, 3] and lines[-1]["step"] == 36
    assert lines[-1]["train_loss"] < lines[0]["train_loss"] < math.log(10)
    assert lines[-1]["test_acc"] > 0.3  # chance is 0.1
    assert all(m["test_top5"] >= m["test_acc"] and m["images_per_s"] > 0 for m in lines)
    assert all(set(m["phase_s"]) == {"data", "step", "log", "eval"} for m in lines)
    assert all(0 < m["phase_s"]["step"] < m["wall_time_s"] for m in lines)
    config = json.loads((out / "config.json").read_text())
    assert config["recipe"]["lr"] == 3e-3 and config["model_overrides"]["depth"] == 1
    assert list(out.glob("events.out.tfevents.*"))
    confusion = json.loads((out / "confusion_matrix.json").read_text())
    assert sum(map(sum, confusion["counts"])) == 360 and confusion["classes"][3] == "3"
    assert (out / "confusion_matrix.png").stat().st_size > 0
    predictions = json.loads((out / "predictions.json").read_text())
    true, predicted = np.array(predictions["true"]), np.array(predictions["predicted"])
    assert predictions["split"] == "test" and len(true) == 360
    assert np.mean(true == predicted) == pytest.approx(lines[-1]["test_acc"])
    assert np.bincount(true, minlength=10).tolist() == list(map(sum, confusion["counts"]))
    state = read_state(latest_checkpoint(out).state)  # weights_only=True
    assert (state["epoch"], state["step"]) == (3, 36)
    assert all(group["fused"] for group in state["optimizer"]["param_groups"])  # on the CPU too
    # The weights are plain state_dict keys that vit.create_model loads as pretrained weights.
    loaded = vit.create_model("vit_ti16", num_classes=10, image_size=16,
                              pretrained=str(out / WEIGHTS), patch_size=8, depth=1,
                              hidden_size=32, num_heads=2, mlp_size=64)  # fmt: skip
    for key, tensor in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], tensor), key
    assert loaded.pretrained_info.mean == (0.5, 0.5, 0.5)


def interrupt_after_the_first_epoch(monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs stop, as if killed, right after their first checkpoint (until monkeypatch.undo())."""
    save = train_module.Trainer.save_checkpoint

    def save_then_interrupt(trainer) -> None:
        save(trainer)
        if trainer.epoch == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(train_module.Trainer, "save_checkpoint", save_then_interrupt)


@pytest.mark.parametrize(
    "recipe",
    [
        # Dropout 0.1: the RNG state must be restored. Streamed, the crops are cut in the
        # workers (none here, then one): they depend on the seeds alone, not on the worker count.
        ["--data-placement", "stream"],
        # The padded crop is cut on the device, from (seed, step): resident images.
        # Its inputs normalised by a given mean and std, which the checkpoint keeps.
        [
            "--recipe",
            "scratch-small",
            "--label-smoothing",
            "0.1",
            "--data-placement",
            "device",
            "--mean",
            "0.4",
            "0.5",
            "0.6",
            "--std",
            "0.3",
            "0.2",
            "0.25",
        ],  # fmt: skip
    ],
)
def test_resumed_run_ends_with_the_same_weights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, recipe: list[str]
) -> None:
    options = ["--epochs", "3", "--lr", "3e-3", *recipe]
    uninterrupted = run(tmp_path / "a", *options)
    interrupt_after_the_first_epoch(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "b", *options)
    monkeypatch.undo()
    assert [m["epoch"] for m in metrics(tmp_path / "b")] == [1]
    resumed = main(["--resume", "--out", str(tmp_path / "b"), "--workers", "1"])

    for key, tensor in uninterrupted.state_dict().items():
        assert torch.equal(resumed.state_dict()[key], tensor), key
    assert [m["epoch"] for m in metrics(tmp_path / "b")] == [1, 2, 3]
    assert metrics(tmp_path / "b")[-1]["test_loss"] == metrics(tmp_path / "a")[-1]["test_loss"]


def test_feature_extraction_from_a_checkpoint_trains_the_head_only(tmp_path: Path) -> None:
    run(tmp_path / "base", "--steps", "3")
    base = load_file(tmp_path / "base" / WEIGHTS)
    model = run(tmp_path / "head", "--pretrained", str(tmp_path / "base" / WEIGHTS),
                "--recipe", "feature-extract", "--steps", "5", "--lr", "0.1")  # fmt: skip
    changed = {k for k, v in model.state_dict().items() if not torch.equal(v, base[k])}
    assert changed and all(k.startswith("head.") for k in changed)
    assert "head.classifier.weight" in changed


@pytest.mark.parametrize("placement", ["device", "stream"])
@pytest.mark.parametrize("split", ["train", "val"])
def test_a_split_of_unreadable_images_is_one_line_not_a_nan(
    tmp_path: Path, capsys: pytest.CaptureFixture, placement: str, split: str
) -> None:
    data = write_image_folder(tmp_path / "photos")
    for image in (data / split).rglob("*.png"):
        image.write_bytes(b"not a png")
    argv = ["--variant", "tinyvgg", "--model-arg", "hidden_units=4", "--dataset",
            f"imagefolder:{data}", "--image-size", "16", "--steps", "2", "--workers", "0",
            "--data-placement", placement, "--out", str(tmp_path / "run")]  # fmt: skip
    assert run_cli("replicate.train", main, argv) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("replicate.train: error: ") and "could be read" in err, err
    assert "no decoder knows it" in err and "nan" not in err


@pytest.mark.parametrize("inside", ["train/zero/run", "run", "."])
def test_an_out_inside_the_data_set_is_refused(tmp_path: Path, inside: str) -> None:
    data = write_image_folder(tmp_path / "photos")
    with pytest.raises(ValueError, match="lies inside the data set .* choose an --out outside"):
        resolve("--dataset", f"imagefolder:{data}", "--out", str(data / inside))
    resolve("--dataset", f"imagefolder:{data}", "--out", str(tmp_path / "photos-run"))  # beside


def test_a_run_checkpoint_fine_tunes_with_its_own_variant_and_shape(tmp_path: Path) -> None:
    """--pretrained alone: the checkpoint's variant and model arguments, as it was trained."""
    run(tmp_path / "base", "--steps", "2")
    argv = ["--pretrained", str(tmp_path / "base"), "--image-size", "16", "--steps", "1",
            "--workers", "0", "--batch-size", "32", "--out", str(tmp_path / "ft")]  # fmt: skip
    config = resolve(*argv)
    assert config.variant == "vit_ti16"
    assert config.model_overrides["depth"] == 1 and config.model_overrides["hidden_size"] == 32
    assert resolve(*argv, "--model-arg", "depth=2").model_overrides["depth"] == 2  # yours win
    model = main(argv)
    assert model.config.patch_size == 8 and model.config.hidden_size == 32


def test_finetune_replaces_the_head_and_trains_everything(tmp_path: Path) -> None:
    run(tmp_path / "base", "--steps", "3")
    config = resolve(*TINY_VIT, "--pretrained", str(tmp_path / "base" / WEIGHTS), "--steps", "1",
                     "--out", str(tmp_path / "ft"))  # fmt: skip
    model = train_module.build_model(config, num_classes=10)
    assert torch.count_nonzero(model.head.classifier.weight) == 0  # Appendix B.1.1
    assert all(p.requires_grad for p in model.parameters())


def test_tinyvgg_on_digits_and_on_an_image_folder(tmp_path: Path) -> None:
    folder = write_image_folder(tmp_path / "images", per_class=8)
    tinyvgg = ["--variant", "tinyvgg", "--model-arg", "hidden_units=4", "--lr", "3e-3",
               "--workers", "0"]  # fmt: skip
    main([*tinyvgg, "--image-size", "16", "--steps", "4", "--out", str(tmp_path / "digits")])
    assert metrics(tmp_path / "digits")[-1]["step"] == 4
    out = tmp_path / "folder"
    main([*tinyvgg, "--dataset", f"imagefolder:{folder}", "--epochs", "6", "--batch-size", "4",
          "--out", str(out)])  # fmt: skip
    lines = metrics(out)
    assert lines[-1]["train_loss"] < lines[0]["train_loss"]
    assert lines[-1]["test_acc"] == 1.0  # dark against bright
    assert json.loads((out / "confusion_matrix.json").read_text())["classes"] == ["bright", "dark"]


def test_a_diverging_run_stops_and_keeps_the_last_good_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    step = train_module.Trainer.train_step

    def nan_in_epoch_two(trainer, images, labels):
        logits, targets, losses = step(trainer, images, labels)
        return logits, targets, losses * (math.nan if trainer.epoch == 1 else 1)

    monkeypatch.setattr(train_module.Trainer, "train_step", nan_in_epoch_two)
    with pytest.raises(DivergedError, match="last good checkpoint .step 12. is kept"):
        run(tmp_path, "--epochs", "2", "--log-every", "5")
    assert read_state(latest_checkpoint(tmp_path).state)["epoch"] == 1


def test_two_processes_end_with_identical_weights(tmp_path: Path) -> None:
    """torchrun with the gloo backend on the CPU: DistributedDataParallel keeps ranks in step."""
    script = tmp_path / "ddp_run.py"
    script.write_text(
        "import os, sys\n"
        "from safetensors.torch import save_file\n"
        "from replicate.train import main\n"
        "model = main(sys.argv[1:])\n"
        "save_file(model.state_dict(), f'{sys.argv[-1]}/rank{os.environ[\"RANK\"]}.safetensors')\n"
    )
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
               "--standalone", str(script), *TINY_VIT, "--steps", "4", "--micro-batch", "32",
               "--out", str(tmp_path)]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    subprocess.run(command, check=True, cwd=REPO, env=env, capture_output=True, timeout=120)
    rank0, rank1 = (load_file(tmp_path / f"rank{r}.safetensors") for r in (0, 1))
    assert rank0.keys() == rank1.keys()
    for key in rank0:
        assert torch.equal(rank0[key], rank1[key]), key
    assert metrics(tmp_path)[-1]["step"] == 4  # 4 steps of 2 x 32 images on each rank


# CNNs whose batch norm (EfficientNet's nn.BatchNorm2d; the ResNet's timm BatchNormAct2d) must
# see the global batch; no dropout, no stochastic depth, SGD: two processes and one compute the
# same numbers up to rounding.
CNN = ["--image-size", "32", "--batch-size", "16", "--workers", "0", "--precision", "fp32",
       "--recipe", "finetune", "--lr", "0.1", "--steps", "2"]  # fmt: skip
CNNS = {
    "effnet": ["--variant", "effnet_b0", "--model-arg", "dropout=0.0",
               "--model-arg", "stochastic_depth_prob=0.0"],
    "bit-batch-norm": ["--variant", "bit_r50x1", "--model-arg", "stem=small",
                       "--model-arg", "layers=(1,1)", "--model-arg", "width=0.5",
                       "--model-arg", "norm=batch"],
}  # fmt: skip


@pytest.mark.parametrize("cnn", list(CNNS))
def test_a_cnn_on_two_processes_trains_as_on_one_and_resumes_on_one(
    tmp_path: Path, cnn: str
) -> None:
    """Step 1 on two processes (torchrun, gloo), interrupted after its checkpoint; step 2 resumed
    in one process: the same weights and batch-norm statistics as one process throughout."""
    settings = [*CNN, *CNNS[cnn]]
    script = tmp_path / "ddp_step.py"
    script.write_text(
        "import sys\n"
        "from replicate import train\n"
        "save = train.Trainer.save_checkpoint\n"
        "def save_then_stop(trainer):\n"
        "    save(trainer)\n"
        "    if trainer.step == 1:\n"
        "        raise KeyboardInterrupt\n"
        "train.Trainer.save_checkpoint = save_then_stop\n"
        "try:\n"
        "    train.main(sys.argv[1:])\n"
        "except KeyboardInterrupt:\n"
        "    pass\n"
    )
    out = tmp_path / "two"
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
               "--standalone", str(script), *settings, "--checkpoint-every", "1",
               "--out", str(out)]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    subprocess.run(command, check=True, cwd=REPO, env=env, capture_output=True, timeout=600)
    assert len(read_state(latest_checkpoint(out).state)["rng"]) == 2  # saved by two processes
    resumed = main(["--resume", "--out", str(out)])
    one = main([*settings, "--out", str(tmp_path / "one")])
    # Channels-last convolutions sum a half batch in another order than a whole one, and batch
    # norm's backward magnifies that float noise (up to 7e-5 seen); stepping on half the batch
    # alone, as a missing all-reduce would, moves the stem's weights 1.2e-3.
    for key, tensor in one.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[key], tensor, rtol=1e-4, atol=2e-4)
    assert metrics(out)[-1]["test_loss"] == pytest.approx(
        metrics(tmp_path / "one")[-1]["test_loss"], rel=1e-4
    )


# Bad input: one line on stderr, exit status 2, no traceback.


def expect_one_line_error(capsys, argv: list[str], pattern: str) -> None:
    capsys.readouterr()  # what earlier runs printed
    assert run_cli("replicate.train", main, argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith("replicate.train: error:") and pattern in err, err


def test_unknown_variant_and_dataset(capsys) -> None:
    expect_one_line_error(capsys, ["--variant", "vit_b17"], "Did you mean 'vit_b16'")
    expect_one_line_error(capsys, ["--dataset", "mnist"], "unknown dataset 'mnist'")
    expect_one_line_error(capsys, ["--variant", "tinyvgg", "--model-arg", "depth=2"], "depth")


@pytest.mark.skipif(torch.cuda.is_available(), reason="the GPU may run fp8")
def test_options_this_machine_or_model_cannot_take(capsys) -> None:
    expect_one_line_error(capsys, [*TINY_VIT, "--precision", "fp8"], "needs an NVIDIA GPU")
    tinyvgg = ["--variant", "tinyvgg", "--grad-checkpointing"]
    expect_one_line_error(capsys, tinyvgg, "tinyvgg has no encoder blocks")


def test_empty_and_corrupt_image_folders(tmp_path: Path, capsys) -> None:
    (tmp_path / "empty" / "train").mkdir(parents=True)
    (tmp_path / "empty" / "val").mkdir()
    expect_one_line_error(capsys, ["--dataset", f"imagefolder:{tmp_path / 'empty'}"], "no images")
    folder = write_image_folder(tmp_path / "corrupt")
    (folder / "val" / "dark" / "truncated.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    argv = ["--variant", "tinyvgg", "--dataset", f"imagefolder:{folder}", "--verify-images"]
    expect_one_line_error(capsys, argv, "truncated.png")


@pytest.mark.parametrize("placement", ["stream", "device"])
def test_unreadable_images_met_while_training_are_skipped_named_and_counted(
    tmp_path: Path, placement: str
) -> None:
    """A truncated PNG and a 0-byte JPEG are skipped, named on stderr even with every warning
    filtered out (as cluster setups run: PYTHONWARNINGS=ignore), and counted in metrics.jsonl."""
    folder = write_image_folder(tmp_path / "images")
    (folder / "train" / "dark" / "truncated.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (folder / "train" / "bright" / "empty.jpg").write_bytes(b"")
    argv = ["--variant", "tinyvgg", "--model-arg", "hidden_units=4", "--workers", "0",
            "--dataset", f"imagefolder:{folder}", "--image-size", "16", "--batch-size", "4",
            "--epochs", "2", "--data-placement", placement, "--precision", "fp32",
            "--out", str(tmp_path / "run")]  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-m", "replicate.train", *argv],
        cwd=REPO, capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    named = [line for line in result.stderr.splitlines() if "skipped an unreadable image" in line]
    assert len(named) == 2, result.stderr  # each once, though met in both epochs
    assert "truncated.png" in "".join(named) and "empty.jpg: the file is empty" in "".join(named)
    assert all(line.startswith("skipped") for line in named)  # not in a progress bar's line
    assert [m["skipped_images"] for m in metrics(tmp_path / "run")] == [2, 2]


def test_pretrained_weights_offline(capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*args, **kwargs):
        raise OSError("Network is unreachable")

    monkeypatch.setattr("socket.create_connection", no_network)
    spec = "timm:vit_tiny_patch16_224.augreg_in21k_ft_in1k"
    expect_one_line_error(capsys, [*TINY_VIT, "--pretrained", spec], "huggingface.co")


def test_checkpoint_of_another_variant(tmp_path: Path, capsys) -> None:
    run(tmp_path / "ti", "--steps", "1")
    weights = str(tmp_path / "ti" / WEIGHTS)
    expect_one_line_error(
        capsys, ["--variant", "vit_s16", "--pretrained", weights, "--image-size", "16",
                 "--out", str(tmp_path / "s")], "another variant")  # fmt: skip
    expect_one_line_error(
        capsys, ["--resume", "--out", str(tmp_path / "ti"), "--variant", "vit_s16"], "--variant"
    )
    expect_one_line_error(capsys, [*TINY_VIT, "--out", str(tmp_path / "ti")], "--resume")


def test_command_line_exit_status_and_help() -> None:
    command = [sys.executable, "-m", "replicate.train"]
    bad = subprocess.run([*command, "--dataset", "mnist"], cwd=REPO, capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "mnist" in bad.stderr
    with pytest.raises(SystemExit) as usage:  # argparse's own errors exit with 2 as well
        main(["--precision", "fp4"])
    assert usage.value.code == 2
    help_text = build_parser().format_help()
    for option in ("--variant", "--dataset", "--data-dir", "--pretrained", "--recipe", "--epochs",
                   "--steps", "--batch-size", "--lr", "--image-size", "--precision", "--compile",
                   "--seed", "--out", "--resume"):  # fmt: skip
        assert option in help_text


def test_official_weights_keep_their_gelu_and_pool_through_checkpoints(tmp_path: Path) -> None:
    """A run from an official GAP .npz saves what the file decided (tanh GELU, no class token),
    so its checkpoint and its resumption rebuild that model, not the variant's default."""
    geometry = vit.ViTConfig(
        image_size=16, patch_size=8, hidden_size=32, depth=1, num_heads=2, mlp_size=64
    )
    npz = tmp_path / "official.npz"
    np.savez(npz, **official_params(geometry, classifier="gap"))
    run(tmp_path / "ft", "--pretrained", str(npz), "--steps", "1")
    model, info = load_model(tmp_path / "ft" / WEIGHTS)
    assert (model.config.gelu, model.config.pool, model.config.has_class_token) == (
        "tanh",
        "gap",
        False,
    )
    resumed = main(["--resume", "--out", str(tmp_path / "ft")])
    assert (resumed.config.gelu, resumed.config.pool) == ("tanh", "gap")
    again = vit.create_model(  # the trainer's checkpoint as pretrained weights
        "vit_ti16", 10, 16, str(tmp_path / "ft" / WEIGHTS),
        patch_size=8, depth=1, hidden_size=32, num_heads=2, mlp_size=64,
    )  # fmt: skip
    assert (again.config.gelu, again.config.pool) == ("tanh", "gap")


def test_a_run_prints_what_it_uses_and_ends_with_its_results_and_next_commands(
    tmp_path: Path, capsys
) -> None:
    """The settings table shows the warm-up a 24-step run uses (the recipe's 10k capped), and
    the placement "auto" chose; config.json records them; the run ends naming its test top-1,
    its folder and the commands to use it, which run as printed."""
    out = tmp_path / "run"
    run(out, "--epochs", "2")
    printed = capsys.readouterr().out
    assert f"run folder: {out}" in printed.splitlines()[0]
    assert re.search(r"warmup_steps +2\n", printed)  # scratch's 10000, capped at 10% of 24
    assert re.search(r"data_placement +device\n", printed)  # the images fit in memory
    assert re.search(r"model vit_ti16: 0\.0\d+M parameters \(0\.0\d+M trainable\), [\d.e-]+ GFLOPs "
                     r"per 16x16 image", printed)  # fmt: skip
    config = json.loads((out / "config.json").read_text())
    half = [0.5] * 3  # a ViT from scratch: pixels to [-1, 1], as the reference code
    assert config["used"] == {
        "warmup_steps": 2,
        "data_placement": "device",
        "mean": half,
        "std": half,
    }
    assert config["data_placement"] == "auto"  # what was asked, for --resume
    final = metrics(out)[-1]["test_acc"]
    assert re.search(rf"done in \d+ min \d+ s: test top-1 {final:.2%}", printed)
    evaluate = next(line for line in printed.splitlines() if "replicate.evaluate" in line)
    assert evaluate.split()[-1] == str(out / "model.safetensors")
    assert "replicate.figures --checkpoint" in printed
    train_module.main(["--resume", "--out", str(out)])  # config.json's record is not an input


def test_mean_and_std_normalise_the_inputs_and_travel_with_the_weights(
    tmp_path: Path, capsys
) -> None:
    mean, std = ["0.49", "0.48", "0.45"], ["0.25", "0.24", "0.26"]
    out = tmp_path / "run"
    run(out, "--steps", "1", "--mean", *mean, "--std", *std)
    config = json.loads((out / "config.json").read_text())
    assert config["used"]["mean"] == config["mean"] == list(map(float, mean))
    assert load_model(out)[0].pretrained_info.std == tuple(map(float, std))
    expect_one_line_error(capsys, [*TINY_VIT, "--mean", *mean], "--mean and --std go together")
    zero = ["--mean", *mean, "--std", "0", "1", "1"]
    expect_one_line_error(capsys, [*TINY_VIT, *zero], "--std must be positive")


@pytest.mark.parametrize(
    ("model_arg", "message"),
    [
        ("patch_size=0", "patch_size must be a whole number >= 1, not 0"),
        ("depth=-1", "depth must be a whole number >= 1, not -1"),
        ("hidden_size=2.5", "hidden_size must be a whole number >= 1, not 2.5"),
        ("dropout=1", "dropout must be in [0, 1), not 1"),
    ],
)
def test_a_model_arg_out_of_range_is_one_line(tmp_path: Path, capsys, model_arg, message) -> None:
    argv = ["--variant", "vit_ti16", "--model-arg", model_arg, "--steps", "1", "--out",
            str(tmp_path / "run")]  # fmt: skip
    assert run_cli("replicate.train", main, argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
