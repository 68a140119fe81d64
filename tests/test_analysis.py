"""The math behind the figures, on hand-built inputs: attention distance (Figure 7 right),
attention rollout (Figure 6), PCA of the filters and position-embedding similarity (Figure 7),
the paper's numbers (Tables 1, 2, 5) and the run reader."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from replicate.figures import paper_numbers
from replicate.figures.attention_distance import (
    mean_attention_distance,
    mean_attention_entropy,
    patch_distances,
)
from replicate.figures.embeddings import filter_principal_components, position_similarity
from replicate.figures.rollout import attention_rollout, output_token_maps, upsample_maps
from replicate.figures.tables import NO_PAPER_NUMBER, result_row, results_markdown
from replicate.runs.read import Run, load_runs


def _with_class_token(patch_attention: torch.Tensor, class_weight: float = 0.0) -> torch.Tensor:
    """(N, N) patch attention -> (1, 1, N + 1, N + 1) with `class_weight` of every query's mass
    on the class token, and the class token attending to itself."""
    n = patch_attention.shape[0]
    full = torch.zeros(n + 1, n + 1, dtype=torch.float64)
    full[0, 0] = 1
    full[1:, 0] = class_weight
    full[1:, 1:] = (1 - class_weight) * patch_attention
    return full[None, None]


def test_patch_distances_are_pixels_between_patch_centres() -> None:
    d = patch_distances(grid_size=2, patch_size=16)  # patches 0 1 / 2 3
    assert d[0, 1] == d[0, 2] == 16
    assert d[0, 3] == pytest.approx(16 * math.sqrt(2))
    assert torch.equal(d, d.T) and d.diagonal().eq(0).all()


def test_attending_to_itself_is_distance_zero() -> None:
    attention = _with_class_token(torch.eye(16), class_weight=0.3)
    assert mean_attention_distance(attention, 16, class_token=True).item() == 0


def test_attending_to_a_neighbour_is_one_patch_away() -> None:
    """Every query attends to its right neighbour (the last column to its left): distance P,
    whatever mass the class token takes, since it is dropped and the rest renormalised."""
    grid, patch = 4, 14
    neighbour = torch.zeros(grid * grid, grid * grid)
    for q in range(grid * grid):
        row, col = divmod(q, grid)
        neighbour[q, row * grid + (col + 1 if col + 1 < grid else col - 1)] = 1
    attention = _with_class_token(neighbour, class_weight=0.5)
    assert mean_attention_distance(attention, patch, class_token=True).item() == pytest.approx(
        patch
    )


def test_uniform_attention_is_the_mean_pairwise_distance() -> None:
    uniform = torch.full((9, 9), 1 / 9)
    heads = torch.cat([_with_class_token(uniform), _with_class_token(torch.eye(9))], dim=1)
    distance = mean_attention_distance(heads, 8, class_token=True)  # (1 image, 2 heads)
    assert distance.shape == (1, 2)
    assert distance[0, 0].item() == pytest.approx(patch_distances(3, 8).mean().item())
    assert distance[0, 1].item() == 0
    without = mean_attention_distance(heads[..., 1:, 1:], 8, class_token=False)  # GAP: T = N
    torch.testing.assert_close(without, distance)


def test_attention_entropy_is_log_n_for_uniform_and_0_for_one_patch() -> None:
    """The class token's share is renormalised away, as for the distance."""
    uniform = _with_class_token(torch.full((16, 16), 1 / 16), class_weight=0.4)
    one = _with_class_token(torch.eye(16), class_weight=0.4)
    assert mean_attention_entropy(uniform, class_token=True).item() == pytest.approx(math.log(16))
    assert mean_attention_entropy(one, class_token=True).item() == pytest.approx(0, abs=1e-12)


def test_attention_distance_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError, match="square grid"):
        mean_attention_distance(torch.ones(1, 1, 4, 4) / 4, 16, class_token=True)  # 3 patches
    with pytest.raises(ValueError, match="expected attention weights"):
        mean_attention_distance(torch.ones(5, 5), 16, class_token=True)


def test_rollout_of_identity_attention_is_the_identity() -> None:
    identity = torch.eye(5).expand(2, 3, 5, 5)  # 2 images, 3 heads
    rollout = attention_rollout([identity] * 4)
    assert torch.allclose(rollout, torch.eye(5).expand(2, 5, 5))


def test_rollout_averages_heads_adds_residual_and_multiplies_layers() -> None:
    attentions = [torch.rand(1, 2, 5, 5).softmax(dim=-1) for _ in range(3)]
    expected = np.eye(5)
    for a in attentions:  # the recipe of Abnar & Zuidema, in numpy
        mixed = 0.5 * a[0].double().mean(0).numpy() + 0.5 * np.eye(5)
        expected = mixed @ expected
    rollout = attention_rollout(attentions)[0].double().numpy()
    np.testing.assert_allclose(rollout, expected, rtol=1e-6)
    np.testing.assert_allclose(rollout.sum(axis=-1), 1, rtol=1e-6)  # still a mixing matrix


def test_class_token_maps_lie_on_the_grid_scaled_to_one() -> None:
    rollout = torch.rand(3, 17, 17)
    maps = output_token_maps(rollout, class_token=True)
    assert maps.shape == (3, 4, 4)
    assert torch.allclose(maps.amax(dim=(1, 2)), torch.ones(3))
    assert maps[1, 0, 1] == pytest.approx((rollout[1, 0, 2] / rollout[1, 0, 1:].max()).item())
    assert upsample_maps(maps, 64).shape == (3, 64, 64)


def test_gap_maps_average_every_tokens_rollout() -> None:
    """A GAP model's output is the mean of all N tokens: its map is the mean of their rows."""
    rollout = torch.rand(2, 16, 16)
    maps = output_token_maps(rollout, class_token=False)
    mean_row = rollout.mean(dim=1)
    assert maps.shape == (2, 4, 4)
    assert maps[1, 2, 3] == pytest.approx((mean_row[1, 11] / mean_row[1].max()).item())


def test_filter_pca_matches_numpy_svd() -> None:
    weight = torch.randn(40, 3, 4, 4)  # D = 40 filters of P^2 C = 48 values
    components, explained = filter_principal_components(weight, num_components=6)
    filters = weight.flatten(1).double().numpy()
    centred = filters - filters.mean(axis=0)
    _, singular, vt = np.linalg.svd(centred, full_matrices=False)
    assert components.shape == (6, 3, 4, 4)
    for ours, theirs in zip(components.reshape(6, -1), vt[:6], strict=True):
        np.testing.assert_allclose(ours * np.sign(ours @ theirs), theirs, atol=1e-8)  # sign free
    np.testing.assert_allclose(explained, (singular**2 / (singular**2).sum())[:6], rtol=1e-8)


def test_position_similarity_is_the_cosine_of_patch_embeddings() -> None:
    position_embedding = torch.randn(1, 1 + 9, 16)  # class token + a 3x3 grid
    similarity = position_similarity(position_embedding, class_token=True)
    without = position_similarity(position_embedding[:, 1:], class_token=False)  # GAP: no row
    np.testing.assert_array_equal(without, similarity)
    patches = position_embedding[0, 1:].double().numpy()
    unit = patches / np.linalg.norm(patches, axis=1, keepdims=True)
    assert similarity.shape == (3, 3, 3, 3)
    np.testing.assert_allclose(similarity.reshape(9, 9), unit @ unit.T, atol=1e-12)
    np.testing.assert_allclose(similarity[1, 2, 1, 2], 1)  # each tile is 1 at its own patch


def test_paper_numbers_are_typed_in_whole() -> None:
    assert len(paper_numbers.TABLE_5) == 3 * 6 * 5 - 6  # no ViT-H/14 pre-trained on ImageNet
    assert len(paper_numbers.TABLE_2) == 3 * 7
    assert [v.params_millions for v in paper_numbers.TABLE_1] == [86, 307, 632]
    assert paper_numbers.paper_variant("ViT-L/32").name == "ViT-Large"
    assert paper_numbers.paper_variant("ViT-Ti/16") is None


@pytest.mark.parametrize(
    ("model", "spec", "dataset", "top1", "source"),
    [
        ("ViT-B/16", "timm:vit_base_patch16_224.augreg2_in21k_ft_in1k", "cifar10", 98.95, "5"),
        ("ViT-L/16", "google:imagenet21k/ViT-L_16", "CIFAR-100", 93.44, "5"),
        ("ViT-B/32", None, "imagenet", 73.38, "5"),  # from scratch = pre-trained on itself
        ("ViT-H/14", "jft", "vtab", 77.63, "2"),
        ("ViT-B/16", "torchvision:IMAGENET1K_V1", "oxford_iiit_pet", 93.81, "5"),
    ],
)
def test_paper_accuracy_finds_the_papers_number(
    model: str, spec: str | None, dataset: str, top1: float, source: str
) -> None:
    pretraining = paper_numbers.pretraining_dataset(spec, dataset)
    row = paper_numbers.paper_accuracy(model, pretraining, dataset)
    assert (row.top1, row.source) == (top1, f"Table {source}")


@pytest.mark.parametrize(
    ("model", "spec", "dataset"),
    [
        ("ViT-B/16", None, "digits"),
        ("ViT-B/16", "timm:vit_base_patch16_224.augreg2_in21k_ft_in1k", "hymenoptera"),
        ("ViT-B/16", None, "cifar10"),  # the paper never trains CIFAR from scratch
        ("ViT-B/16", "torchvision:IMAGENET1K_SWAG_E2E_V1", "cifar10"),  # not the paper's data
        ("tinyvgg", None, "imagenet"),
    ],
)
def test_paper_accuracy_is_none_where_the_paper_has_no_number(
    model: str, spec: str | None, dataset: str
) -> None:
    pretraining = paper_numbers.pretraining_dataset(spec, dataset)
    assert paper_numbers.paper_accuracy(model, pretraining, dataset) is None


def _run(name: str, config: dict, accuracies: list[float]) -> Run:
    rows = tuple({"epoch": e + 1, "test_acc": a} for e, a in enumerate(accuracies))
    return Run(name, config, rows)


def test_results_table_puts_runs_beside_the_paper() -> None:
    finetuned = _run(
        "b16-c10",
        {"variant": "vit_b16", "dataset": "cifar10", "pretrained": "timm:x_in21k_ft_in1k"},
        [0.9, 0.985],
    )
    digits = _run("b16-digits", {"variant": "vit_b16", "dataset": "digits"}, [0.5, 0.9])
    assert result_row(finetuned).paper.top1 == 98.95
    assert result_row(finetuned).test_acc == pytest.approx(98.5)
    table = results_markdown([finetuned, digits])
    c10, dig = (line for line in table.splitlines() if line.startswith("| b16-"))
    assert "98.50" in c10 and "98.95 (Table 5, ImageNet-21k pre-training)" in c10
    assert "-0.45" in c10
    assert NO_PAPER_NUMBER in dig and "90.00" in dig


def _write_run(folder: Path, config: dict | None, rows: list) -> None:
    folder.mkdir(parents=True)
    if config is not None:
        (folder / "config.json").write_text(json.dumps(config))
    lines = [json.dumps(r) if isinstance(r, dict) else r for r in rows]
    (folder / "metrics.jsonl").write_text("\n".join(lines) + "\n")


def test_load_runs_tolerates_missing_keys_and_skips_folders_without_metrics(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _write_run(tmp_path / "a", {"variant": "vit_ti16"}, [{"epoch": 2, "test_acc": 0.5}])
    _write_run(tmp_path / "b", None, [{"epoch": 1, "train_loss": 1.0}, '{"epoch": 2, "trai'])
    (tmp_path / "not-a-run").mkdir()
    with caplog.at_level(logging.WARNING):
        runs = load_runs(tmp_path)
    assert [r.name for r in runs] == ["a", "b"]
    assert runs[0].series("test_acc") == ([2], [0.5]) and runs[0].final("train_loss") is None
    assert runs[1].config == {} and len(runs[1].metrics) == 1  # the half-written line skipped
    assert "not-a-run" in caplog.text and "metrics.jsonl:2" in caplog.text


def test_load_runs_says_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        load_runs(tmp_path / "nope")
    with pytest.raises(ValueError, match="no run under"):
        load_runs(tmp_path)
