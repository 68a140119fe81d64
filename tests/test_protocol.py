"""The paper's fine-tuning and evaluation protocol in `replicate.train`: gradient accumulation to
the global batch (Table 4), the dev split and class-balanced subsets (Appendix B.1.1), Polyak
averaging (Section 4.1), Table 3's scratch rows, the warm-up, and the resolution rule."""

from __future__ import annotations

import json
import warnings
from collections import Counter
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from sklearn.datasets import load_digits
from test_train import (
    TINY_VIT,
    expect_one_line_error,
    interrupt_after_the_first_epoch,
    metrics,
    one_thread,  # noqa: F401 (an autouse fixture: one thread for the tiny models)
    resolve,
    run,
)

from replicate import train as train_module
from replicate.data.subsets import stratified_subsets
from replicate.runtime import seed_everything
from replicate.train import Trainer, main
from replicate.training.accumulation import accumulate_gradients, split_batch
from replicate.training.checkpoint import WEIGHTS
from replicate.training.ema import EMA_WEIGHTS, averaged_model
from replicate.training.recipes import RECIPES, SCRATCH, build_scheduler
from replicate.training.resolution import nearest_multiple

# Two steps: after the first, the zero-initialised head passes gradients back to the body.
SGD = [
    "--recipe",
    "finetune",
    "--lr",
    "0.1",
    "--dropout",
    "0",
    "--steps",
    "2",
    "--warmup-steps",
    "0",
]


# Gradient accumulation (Table 4: batch 512 on any memory).


def test_one_step_accumulated_over_four_micro_batches_equals_one_big_batch(
    tmp_path: Path, capsys
) -> None:
    whole = run(tmp_path / "whole", *SGD, "--micro-batch", "128")
    assert "global batch 128 = 1 process x micro-batch 128 x 1 accumulation step" in (
        capsys.readouterr().out
    )
    accumulated = run(tmp_path / "acc", *SGD, "--micro-batch", "32")
    assert "micro-batch 32 x 4 accumulation steps" in capsys.readouterr().out
    seed_everything(0)  # as the runs do before building their model
    initial = train_module.build_model(resolve(*TINY_VIT, *SGD), num_classes=10)
    moved = 0
    for key, tensor in whole.state_dict().items():
        torch.testing.assert_close(accumulated.state_dict()[key], tensor, atol=1e-6, rtol=1e-5)
        moved += not torch.equal(initial.state_dict()[key], tensor)
    assert moved == len(
        whole.state_dict()
    )  # the step changed the weights, so the comparison means something


def test_every_micro_step_but_the_last_skips_the_gradient_all_reduce() -> None:
    class Recorder(torch.nn.Linear):
        synced: list[bool] = []
        in_no_sync = False

        @contextmanager
        def no_sync(self):
            self.in_no_sync = True
            yield
            self.in_no_sync = False

        def forward(self, x):
            self.synced.append(not self.in_no_sync)
            return super().forward(x)

    network = Recorder(3, 2)
    images, labels = torch.randn(8, 3), torch.tensor([0, 1] * 4)

    def losses_of(x, y):
        logits = network(x)
        return logits, y, torch.nn.functional.cross_entropy(logits, y, reduction="none")

    logits, targets, losses = accumulate_gradients(
        network, images, labels, 2, losses_of, lambda loss: loss.backward()
    )
    assert network.synced == [False, False, False, True]
    assert logits.shape == (8, 2) and losses.shape == (8,) and torch.equal(targets, labels)
    accumulated = network.weight.grad.clone()
    network.weight.grad = None
    losses_of(images, labels)[2].mean().backward()
    torch.testing.assert_close(accumulated, network.weight.grad)


def test_finetune_defaults_to_a_global_batch_of_512_in_micro_batches() -> None:
    config = resolve("--pretrained", "x.safetensors", "--dataset", "oxford_pets")
    assert config.batch_size == 512 and config.micro_batch == (
        64 if torch.cuda.is_available() else 16
    )
    assert resolve().micro_batch is None and resolve().batch_size == 128  # scratch on digits
    split = split_batch(512, 2, 64)
    assert (split.local_batch, split.accumulation_steps) == (256, 4)
    assert str(split) == "global batch 512 = 2 processes x micro-batch 64 x 4 accumulation steps"
    assert split_batch(32, 1, 64).micro_batch == 32  # never above the per-process batch
    with pytest.raises(ValueError, match="--micro-batch 48 does not divide the 256 .* try 32"):
        split_batch(512, 2, 48)


def test_bad_micro_batch_is_a_one_line_error(capsys, tmp_path: Path) -> None:
    argv = [*TINY_VIT, "--micro-batch", "48", "--out", str(tmp_path)]
    expect_one_line_error(capsys, argv, "does not divide the 128 images per process")


# Dev split and class-balanced subsets (Appendix B.1.1; the data-size study).


def test_stratified_subsets_are_class_balanced_nested_and_fixed() -> None:
    labels = np.repeat(np.arange(4), [100, 50, 40, 10])
    full = stratified_subsets(labels, val_fraction=0.1)
    assert Counter(labels[full.dev]) == {0: 10, 1: 5, 2: 4, 3: 1}
    assert not set(full.dev) & set(full.train) and len(full.dev) + len(full.train) == 200
    half = stratified_subsets(labels, val_fraction=0.1, train_fraction=0.5)
    assert half.dev == full.dev  # the dev split does not move with --train-fraction
    assert Counter(labels[half.train]) == {0: 45, 1: 22, 2: 18, 3: 4}  # round(0.5 x remaining)
    small = stratified_subsets(labels, val_fraction=0.1, train_fraction=0.2)
    assert set(small.train) < set(half.train)  # nested, like the paper's JFT subsets
    assert stratified_subsets(labels, 0.1, 0.2) == small  # a fixed seed
    for bad in ({"val_fraction": 1.0}, {"train_fraction": 0.0}, {"val_fraction": -0.1}):
        with pytest.raises(ValueError, match="must be in"):
            stratified_subsets(labels, **bad)
    with pytest.raises(ValueError, match="--val-fraction 0.99 holds out more .* than it leaves"):
        stratified_subsets(labels, val_fraction=0.99)  # the photos: 2 images left to train on


def test_val_fraction_evaluates_on_the_dev_split_and_labels_it(tmp_path: Path) -> None:
    out = tmp_path / "dev"
    run(out, "--val-fraction", "0.1", "--train-fraction", "0.5", "--steps", "2")
    labels = load_digits().target
    train_labels = labels[_digits_train_indices()]
    expected = stratified_subsets(train_labels, 0.1, 0.5)
    [line] = metrics(out)
    assert line["eval_split"] == "dev" and "test_acc" not in line and 0 <= line["dev_acc"] <= 1
    assert line["train_images"] == len(expected.train)
    config = (out / "config.json").read_text()
    assert '"val_fraction": 0.1' in config and '"train_fraction": 0.5' in config
    confusion = json.loads((out / "confusion_matrix.json").read_text())["counts"]
    assert sum(map(sum, confusion)) == len(expected.dev)
    predictions = json.loads((out / "predictions.json").read_text())
    assert predictions["split"] == "dev" and len(predictions["predicted"]) == len(expected.dev)


def _digits_train_indices() -> np.ndarray:
    """The training indices of replicate.data.images's fixed 80/20 split of the digits."""
    from sklearn.model_selection import train_test_split

    labels = load_digits().target
    train, _ = train_test_split(np.arange(len(labels)), test_size=0.2, random_state=0,
                                stratify=labels)  # fmt: skip
    return train


def test_without_a_dev_split_the_evaluation_is_labelled_test(tmp_path: Path) -> None:
    run(tmp_path, "--epochs", "2", "--final-eval-only")
    first, last = metrics(tmp_path)
    assert first["eval_split"] == last["eval_split"] == "test"
    assert "test_acc" not in first and 0 <= last["test_acc"] <= 1  # evaluated once, at the end
    assert first["train_images"] == 1437


# Polyak averaging (Section 4.1).


def test_ema_is_the_exponential_average_of_the_weights() -> None:
    model = torch.nn.Linear(2, 1)
    ema = averaged_model(model, decay=0.75)
    with torch.no_grad():
        model.weight.fill_(1.0)
        ema.update_parameters(model)  # the first update copies the weights
        model.weight.fill_(3.0)
        ema.update_parameters(model)
    torch.testing.assert_close(ema.module.weight, torch.full((1, 2), 0.75 * 1 + 0.25 * 3))


def test_ema_is_evaluated_saved_and_resumed_exactly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    options = ["--epochs", "2", "--lr", "3e-3", "--ema", "0.9"]
    model = run(tmp_path / "a", *options)
    lines = metrics(tmp_path / "a")
    assert all({"test_acc", "ema_test_acc", "ema_test_loss"} <= line.keys() for line in lines)
    ema = load_file(tmp_path / "a" / EMA_WEIGHTS)
    weights = load_file(tmp_path / "a" / WEIGHTS)
    assert ema.keys() == weights.keys()
    assert not torch.equal(
        ema["head.classifier.weight"], model.state_dict()["head.classifier.weight"]
    )

    interrupt_after_the_first_epoch(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "b", *options)
    monkeypatch.undo()
    main(["--resume", "--out", str(tmp_path / "b")])
    resumed = load_file(tmp_path / "b" / EMA_WEIGHTS)
    for key, tensor in ema.items():
        assert torch.equal(resumed[key], tensor), key


def test_ema_decay_must_be_below_one(capsys, tmp_path: Path) -> None:
    expect_one_line_error(capsys, [*TINY_VIT, "--ema", "1.5", "--out", str(tmp_path)], "--ema")


# Table 3's scratch rows and the warm-up (Appendix B.1).


def test_scratch_takes_table_3s_imagenet_row_and_the_other_rows_on_request() -> None:
    assert (SCRATCH.weight_decay, SCRATCH.dropout, SCRATCH.schedule) == (0.3, 0.1, "cosine")
    assert SCRATCH.grad_clip == 1.0
    in21k, jft = RECIPES["scratch-in21k"], RECIPES["scratch-jft"]
    assert (in21k.weight_decay, in21k.dropout, in21k.schedule) == (0.03, 0.1, "linear")
    assert (jft.weight_decay, jft.dropout, jft.schedule) == (0.1, 0.0, "linear")
    assert in21k.grad_clip is None and jft.optimizer == "adamw"
    assert resolve("--recipe", "scratch-in21k").recipe.name == "scratch-in21k"


def test_an_explicit_warmup_is_honoured_with_a_warning() -> None:
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    default = build_scheduler(optimizer, resolve().recipe, total_steps=100)
    assert default.lr_lambdas[0].keywords["warmup"] == 10  # Table 3's 10k, capped at a tenth
    explicit = resolve("--warmup-steps", "50").recipe
    with pytest.warns(UserWarning, match="--warmup-steps 50 is more than 10%"):
        scheduler = build_scheduler(optimizer, explicit, total_steps=100)
    assert scheduler.lr_lambdas[0].keywords["warmup"] == 50
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        build_scheduler(optimizer, resolve("--warmup-steps", "5").recipe, total_steps=100)


# Resolution (ViT-H/14 and patch sizes that do not divide 384).


def test_finetune_resolution_is_384_rounded_to_the_patch_size() -> None:
    assert nearest_multiple(384, 14) == 378 and nearest_multiple(384, 16) == 384
    h14 = resolve("--variant", "vit_h14", "--pretrained", "x.safetensors")
    assert h14.image_size == 378  # 27 x 27 patches, as the official code sees 384
    assert resolve("--variant", "vit_h14", "--image-size", "518").image_size == 518


def test_an_impossible_resolution_fails_before_any_data_is_loaded(capsys) -> None:
    # cifar10 is not downloadable here: the resolution must be the error, not the data.
    argv = ["--variant", "vit_h14", "--image-size", "384", "--dataset", "cifar10"]
    expect_one_line_error(capsys, argv, "patch size 14: use 378 or 392")


def test_figures_name_the_evaluation_split(tmp_path: Path, monkeypatch) -> None:
    from replicate.figures import plots
    from replicate.figures.tables import results_markdown
    from replicate.runs.read import Run

    test_run = Run("a", {"variant": "vit_b16"}, ({"epoch": 1, "test_acc": 0.5},))  # older run
    dev_run = Run("b", {}, ({"epoch": 1, "eval_split": "dev", "dev_acc": 0.7, "dev_loss": 1.0},))
    figures = []
    monkeypatch.setattr(plots, "save", lambda fig, path: figures.append(fig) or path)
    plots.draw_training_curves([test_run, dev_run], tmp_path / "curves.png", "curves")
    [figure] = figures
    titles = [ax.get_title() for ax in figure.axes]
    assert "Evaluation accuracy (dev and test split)" in titles
    legend = [text.get_text() for text in figure.legends[0].get_texts()]
    assert legend[0].endswith("eval: test split)") and legend[1].endswith("eval: dev split)")
    accuracy = figure.axes[3]
    assert [line.get_ydata().tolist() for line in accuracy.get_lines()] == [[50.0], [70.0]]
    assert "| — (dev split only) |" in results_markdown([dev_run])


# Early stopping (Section 4.3): the best dev checkpoint, tested once.


def test_early_stopping_tests_the_best_dev_checkpoint_once(tmp_path: Path) -> None:
    argv = [*TINY_VIT, "--val-fraction", "0.1", "--early-stopping", "--epochs", "4"]
    main([*argv, "--eval-every", "20", "--out", str(tmp_path)])
    records = metrics(tmp_path)
    evaluated = [r for r in records if "dev_acc" in r]
    assert len(evaluated) < len(records) and evaluated[-1] is records[-1]  # every 20 steps, last
    best = max(evaluated, key=lambda r: r["dev_acc"])
    result = json.loads((tmp_path / "test.json").read_text())
    assert (result["dev_acc"], result["step"]) == (best["dev_acc"], best["step"])
    assert result["test_images"] == 360 and 0 < result["test_acc"] <= 1  # digits' test split
    saved = load_file(tmp_path / "best.safetensors")
    assert saved.keys() == load_file(tmp_path / "model.safetensors").keys()


def test_early_stopping_needs_a_dev_split(tmp_path: Path, capsys) -> None:
    argv = [*TINY_VIT, "--early-stopping", "--out", str(tmp_path)]
    expect_one_line_error(capsys, argv, "--early-stopping chooses on the dev split")


def test_patience_stops_the_run_and_a_resumed_run_stays_stopped(
    tmp_path: Path, capsys, monkeypatch
) -> None:
    """Every evaluation scored alike, the second is no better than the first: with --patience 1
    the run ends after 2 of its 6 epochs, and tests the first's weights."""
    evaluate = Trainer.evaluate
    monkeypatch.setattr(Trainer, "evaluate", lambda *a: replace(evaluate(*a), top1=0.5))
    argv = [*TINY_VIT, "--val-fraction", "0.1", "--early-stopping", "--patience", "1"]
    main([*argv, "--epochs", "6", "--out", str(tmp_path)])
    assert [r["epoch"] for r in metrics(tmp_path)] == [1, 2]
    assert "stopping early: no better dev top-1 in 1 evaluations" in capsys.readouterr().out
    assert json.loads((tmp_path / "test.json").read_text())["step"] == metrics(tmp_path)[0]["step"]
    main(["--resume", "--out", str(tmp_path)])
    assert [r["epoch"] for r in metrics(tmp_path)] == [1, 2]  # nothing trained


def test_patience_needs_early_stopping(tmp_path: Path, capsys) -> None:
    argv = [*TINY_VIT, "--val-fraction", "0.1", "--patience", "2", "--out", str(tmp_path)]
    expect_one_line_error(capsys, argv, "--patience counts evaluations of the dev split")
