"""Appendix B.1.2: masked patch prediction. The corruption's proportions, the 3-bit mean colour
target, a loss that sees the corrupted patches only, the corruption placed before E_pos, a
short pre-training run on digits, and the pre-train -> fine-tune round trip through files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors import safe_open

import vit
from replicate import train as train_module
from replicate.figures.tables import result_row
from replicate.runs.read import load_runs
from replicate.train import main
from replicate.training.config import build_parser, resolve_config
from vit.masked_patch import (
    KEEP,
    MASK,
    RANDOM,
    MaskedPatchPredictor,
    PatchCorruption,
    corrupted_only,
    mean_colour_classes,
)

TINY = [
    "--variant", "vit_ti16", "--image-size", "16", "--batch-size", "128", "--workers", "0",
    *("--model-arg", "patch_size=4", "--model-arg", "depth=1"),
    *("--model-arg", "hidden_size=32", "--model-arg", "num_heads=2", "--model-arg", "mlp_size=64"),
]  # fmt: skip
TINY_OVERRIDES = dict(patch_size=4, depth=1, hidden_size=32, num_heads=2, mlp_size=64)


def test_corruption_proportions() -> None:
    """50% of each image's patches; of those 80% [mask], 10% another patch, 10% kept."""
    corruption = PatchCorruption(hidden_size=8)
    patches = torch.randn(64, 64, 8)  # every patch embedding distinct
    result = corruption(patches, torch.Generator().manual_seed(0))
    b, m = result.positions.shape
    assert m == 32 and all(len(set(row.tolist())) == 32 for row in result.positions)
    kinds = result.kinds.flatten()
    fractions = [(kinds == k).float().mean().item() for k in (MASK, RANDOM, KEEP)]
    assert fractions == pytest.approx([0.8, 0.1, 0.1], abs=0.03)  # 2048 draws: sd 0.007-0.009

    chosen = torch.zeros(b, 64, dtype=torch.bool).scatter(1, result.positions, True)
    assert torch.equal(result.patches[~chosen], patches[~chosen])  # the rest untouched
    assert chosen.float().mean(0).sub(0.5).abs().max() < 0.3  # every position: 0.5 +- 0.06
    new = result.patches.gather(1, result.positions[..., None].expand(-1, -1, 8))
    old = patches.gather(1, result.positions[..., None].expand(-1, -1, 8))
    mask = result.kinds == MASK
    assert torch.equal(new[mask], corruption.mask_embedding.detach()[0].expand(int(mask.sum()), 8))
    assert torch.equal(new[result.kinds == KEEP], old[result.kinds == KEEP])
    swapped = new[result.kinds == RANDOM]  # each equals one other patch of the batch
    matches = (swapped[:, None] == patches.reshape(-1, 8)[None]).all(-1)
    assert torch.equal(matches.sum(-1), torch.ones(len(swapped), dtype=torch.long))
    assert not (swapped == old[result.kinds == RANDOM]).all(-1).any()


def test_three_bit_mean_colour_of_hand_made_patches() -> None:
    """Four 2x2 patches of one 4x4 image: class = 64 r + 8 g + b, each floor(mean * 8)."""
    image = torch.zeros(1, 3, 4, 4)
    image[0, :, 0:2, 0:2] = torch.tensor([1.0, 0.0, 0.0])[:, None, None]  # red: (7, 0, 0)
    image[0, :, 0:2, 2:4] = torch.tensor([0.5, 0.25, 0.125])[:, None, None]  # (4, 2, 1)
    # bottom left stays black: (0, 0, 0); bottom right mixes: means (1, 0.35, 0.025)
    image[0, 0, 2:4, 2:4] = 1.0
    image[0, 1, 2:4, 2:4] = torch.tensor([[0.2, 0.3], [0.4, 0.5]])
    image[0, 2, 3, 3] = 0.1
    assert mean_colour_classes(image, patch_pixels=2).tolist() == [[448, 273, 0, 7 * 64 + 2 * 8]]
    assert mean_colour_classes(torch.ones(1, 3, 4, 4), 4).item() == 511  # white: (7, 7, 7)


def test_the_loss_ignores_uncorrupted_patches() -> None:
    logits = torch.randn(4, 16, 512, requires_grad=True)
    targets = torch.randint(0, 512, (4, 16))
    positions = PatchCorruption(8)(torch.randn(4, 16, 8)).positions
    loss = F.cross_entropy(*corrupted_only(logits, targets, positions))
    loss.backward()
    corrupted = torch.zeros(4, 16, dtype=torch.bool).scatter(1, positions, True)
    assert logits.grad[~corrupted].abs().max() == 0 and logits.grad[corrupted].abs().min() > 0

    other_logits, other_targets = logits.detach().clone(), targets.clone()
    other_logits[~corrupted] = torch.randn_like(other_logits[~corrupted])
    other_targets[~corrupted] = (other_targets[~corrupted] + 1) % 512
    again = F.cross_entropy(*corrupted_only(other_logits, other_targets, positions))
    torch.testing.assert_close(again, loss.detach(), rtol=0, atol=0)


def test_corruption_comes_before_the_position_embedding(monkeypatch: pytest.MonkeyPatch) -> None:
    """A [mask]ed patch enters the encoder as [mask] + E_pos of its position (Eq. 1)."""
    model = vit.create_model("vit_ti16", num_classes=3, image_size=16, **TINY_OVERRIDES)
    predictor = MaskedPatchPredictor(model).eval()
    predictor.corruption.mask = 1.0  # every corrupted patch becomes [mask]
    seen = []
    monkeypatch.setattr(predictor.vit.encoder, "forward", lambda z: seen.append(z) or z)
    logits, positions = predictor(torch.randn(2, 3, 16, 16))
    assert logits.shape == (2, 16, 512) and positions.shape == (2, 8)
    z0 = seen[0][:, 1:].gather(1, positions[..., None].expand(-1, -1, 32))
    position_embedding = model.embedding.position_embedding[0, 1:][positions]
    expected = predictor.corruption.mask_embedding + position_embedding
    torch.testing.assert_close(z0, expected)


def test_masked_patch_needs_a_vit() -> None:
    config = resolve_config(
        build_parser().parse_args(["--variant", "tinyvgg", "--recipe", "masked-patch"])
    )
    with pytest.raises(ValueError, match="pre-trains a ViT"):
        train_module.build_model(config, num_classes=10)


@pytest.fixture(scope="module")
def pretrained_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """20 steps of masked patch prediction on digits (12 steps an epoch, so 2 epochs)."""
    out = tmp_path_factory.mktemp("masked") / "run"
    main([*TINY, "--recipe", "masked-patch", "--steps", "20", "--out", str(out)])
    return out


def test_twenty_steps_on_digits_lower_the_loss(pretrained_run: Path) -> None:
    lines = [json.loads(x) for x in (pretrained_run / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [12, 20]
    assert lines[1]["train_loss"] < lines[0]["train_loss"] < 6.3  # ln 512 = 6.24 at the start
    assert 0 < lines[1]["test_acc"] < 1  # the colour accuracy of the test images' patches
    config = json.loads((pretrained_run / "config.json").read_text())
    batch = config["batch_size"]  # B.1.2's 2e-4 at batch 4096, scaled by the square root
    assert config["recipe"]["lr"] == pytest.approx(2e-4 * (batch / 4096) ** 0.5)
    assert config["recipe"]["optimizer"] == "adamw"
    assert not (pretrained_run / "confusion_matrix.json").exists()  # no classes to confuse
    row = result_row(load_runs(pretrained_run)[0])
    assert row.model.endswith("masked-patch pre-training (colour accuracy)") and row.paper is None


def test_pretrain_then_finetune_through_files(pretrained_run: Path, tmp_path: Path) -> None:
    """The checkpoint loads with pretrained=: the ViT's weights, no [mask] embedding or colour
    head, a zero-initialised classifier (Appendix B.1.1); and `--pretrained` fine-tunes it."""
    weights = pretrained_run / "model.safetensors"
    with safe_open(weights, framework="pt") as f:
        saved = {k: f.get_tensor(k) for k in f.keys()}
    assert {"corruption.mask_embedding", "colour_head.weight"} <= saved.keys()
    model = vit.create_model(
        "vit_ti16", num_classes=7, image_size=32, pretrained=str(weights), **TINY_OVERRIDES
    )
    assert model.pretrained_info.image_size == 16
    state = model.state_dict()
    assert not any(k.startswith(("corruption", "colour_head")) for k in state)
    for key in (
        "embedding.projection.weight",
        "encoder.layers.0.mlp.fc1.weight",
        "head.norm.weight",
    ):
        assert torch.equal(state[key], saved[f"vit.{key}"]), key
    assert model.head.classifier.weight.shape == (7, 32) and not model.head.classifier.weight.any()
    assert model.embedding.position_embedding.shape == (1, 8 * 8 + 1, 32)  # Section 3.2

    out = tmp_path / "finetuned"
    finetuned = main([*TINY, "--pretrained", str(weights), "--steps", "2", "--out", str(out)])
    config = json.loads((out / "config.json").read_text())
    assert (
        config["recipe"]["name"] == "finetune" and finetuned.head.classifier.weight.shape[0] == 10
    )
    assert (out / "confusion_matrix.json").is_file()
