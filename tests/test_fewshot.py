"""Few-shot linear evaluation (Section 4.1): the closed-form ridge regression to {-1, 1}^K as
big_vision computes it, checked against scikit-learn, and the command end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.linear_model import Ridge
from sklearn.preprocessing import StandardScaler
from torch import nn

import vit
from replicate.cli_errors import run_cli
from replicate.data.datasets import digits_splits
from replicate.fewshot import (
    L2_REG,
    fewshot_accuracies,
    main,
    read_results,
    results_markdown,
    ridge_regression,
    shot_indices,
)
from replicate.figures.__main__ import main as figures_main
from replicate.training.checkpoint import CheckpointInfo, save_weights


class Pixels(nn.Module):
    """A "model" whose representation is the flattened image: its head is one linear layer."""

    def __init__(self, size: int = 8) -> None:
        super().__init__()
        self.head = nn.Linear(3 * size * size, 10)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(images.flatten(1))


def test_ridge_regression_is_the_closed_form_least_squares_solution() -> None:
    generator = torch.Generator().manual_seed(0)
    for n, d in ((40, 6), (6, 40)):  # both of big_vision's cases: N >= D and D > N
        x = torch.randn(n, d, generator=generator)
        y = torch.arange(n) % 3
        w, mean, std = ridge_regression(x, y, 3, l2_reg=5.0)
        design = torch.cat([(x.double() - mean) / std, torch.full((n, 1), 100.0)], dim=1)
        targets = 2.0 * nn.functional.one_hot(y, 3).double() - 1.0
        # The gradient of |design w - targets|^2 + l2 |w|^2 vanishes at the solution.
        gradient = design.T @ (design @ w - targets) + 5.0 * w
        assert gradient.abs().max() < 1e-8
        torch.testing.assert_close(mean, x.double().mean(0, keepdim=True))


def test_fewshot_accuracy_matches_scikit_learns_ridge_on_digit_pixels() -> None:
    splits = digits_splits(Path("."))
    inputs = dict(image_size=8, mean=(0.5,) * 3, std=(0.5,) * 3, workers=0)
    per_seed = fewshot_accuracies(Pixels(), splits.train, splits.test, [5], seeds=2, **inputs)
    train_x, test_x = (
        s.tensors[0].flatten(1).double().numpy() for s in (splits.train, splits.test)
    )
    train_y, test_y = (s.tensors[1].numpy() for s in (splits.train, splits.test))
    for seed, ours in enumerate(per_seed[5]):
        chosen = shot_indices(train_y, 5, seed).ravel()
        scaler = StandardScaler().fit(train_x[chosen])  # constant pixels: weight 0 either way
        targets = 2.0 * np.eye(10)[train_y[chosen]] - 1.0
        ridge = Ridge(alpha=L2_REG).fit(scaler.transform(train_x[chosen]), targets)
        reference = (ridge.predict(scaler.transform(test_x)).argmax(1) == test_y).mean()
        assert abs(ours - reference) <= 0.01, (seed, ours, reference)
        assert ours > 0.6  # 5 digits per class, raw pixels: far above the 10% of chance


def test_shots_are_nested_and_seeded() -> None:
    labels = np.repeat(np.arange(3), 30)
    five, ten = shot_indices(labels, 5, seed=1), shot_indices(labels, 10, seed=1)
    assert (ten[:, :5] == five).all() and (labels[five] == np.arange(3)[:, None]).all()
    assert not (shot_indices(labels, 5, seed=2) == five).all()
    with pytest.raises(ValueError, match="31 shots need 31 training images per class"):
        shot_indices(labels, 31, seed=0)


def test_command_writes_a_run_folder_that_the_results_table_shows(tmp_path: Path, capsys) -> None:
    torch.set_num_threads(1)
    model = vit.create_model("vit_ti16", num_classes=10, image_size=16, patch_size=8, depth=1,
                             hidden_size=32, num_heads=2, mlp_size=64)  # fmt: skip
    info = CheckpointInfo(variant="vit_ti16", num_classes=10, image_size=16,
                          classes=[str(i) for i in range(10)], mean=[0.5] * 3, std=[0.5] * 3,
                          model_overrides={"patch_size": 8, "depth": 1, "hidden_size": 32,
                                           "num_heads": 2, "mlp_size": 64},
                          pretrained=None, dataset="digits", epoch=1, step=1)  # fmt: skip
    save_weights(tmp_path / "model.safetensors", model, info)
    out = tmp_path / "runs" / "fewshot-tiny"
    argv = ["--checkpoint", str(tmp_path / "model.safetensors"), "--shots", "1", "5",
            "--seeds", "2", "--max-test-images", "100", "--out", str(out)]  # fmt: skip
    assert run_cli("replicate.fewshot", main, argv) == 0
    results = json.loads((out / "fewshot.json").read_text())
    assert results["accuracy"].keys() == {"1", "5"} and results["test_images"] == 100
    assert len(results["accuracy_per_seed"]["5"]) == 2 and results["dataset"] == "digits"
    assert "5-shot:" in capsys.readouterr().out
    table = results_markdown(read_results(tmp_path / "runs"))
    assert "| fewshot-tiny |" in table and "| 1-shot (%) | 5-shot (%) |" in table
    (tmp_path / "runs" / "trained").mkdir()  # beside a training run, in figures/results.md
    (tmp_path / "runs" / "trained" / "metrics.jsonl").write_text('{"epoch": 1, "test_acc": 0.5}\n')
    figures = ["--runs", str(tmp_path / "runs"), "--only", "results", "--out", str(tmp_path)]
    assert run_cli("replicate.figures", figures_main, figures) == 0
    assert table in (tmp_path / "results.md").read_text()
    assert run_cli("replicate.fewshot", main, [*argv[:2], "--shots", "0"]) == 2
