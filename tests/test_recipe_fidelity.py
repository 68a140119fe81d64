"""Recipes that mean what the paper means at any batch size (Appendix B, Tables 3 and 4), and a
gradient that is the whole batch's on every step, however it is split."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from replicate import train as train_module
from replicate.training import recipes as recipes_module
from replicate.training.accumulation import accumulate_gradients
from replicate.training.config import TrainConfig, build_parser, resolve_config
from replicate.training.recipes import DESCRIPTIONS, RECIPES, build_optimizer, warmup_steps
from vit.masked_patch import MaskedPatchPredictor
from vit.registry import create_model


def resolve(*argv: str) -> TrainConfig:
    return resolve_config(build_parser().parse_args(list(argv)))


def gradient(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, micro: int) -> list:
    model.zero_grad()

    def losses_of(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, ...]:
        logits = model(x)
        return logits, y, F.cross_entropy(logits, y, reduction="none")

    accumulate_gradients(model, images, labels, micro, losses_of, lambda loss: loss.backward())
    return [p.grad.clone() for p in model.parameters()]


def test_an_uneven_split_gives_the_gradient_of_the_whole_batch() -> None:
    """A short last batch of 96 split as 64 + 32 (Table 4's Pets: 3,680 = 7 x 512 + 96)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 5))
    images, labels = torch.randn(96, 3, 2, 2), torch.randint(0, 5, (96,))
    whole = gradient(model, images, labels, micro=96)
    for split, expected in zip(gradient(model, images, labels, micro=64), whole, strict=True):
        torch.testing.assert_close(split, expected, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize(
    ("argv", "lr"),
    [
        (("--batch-size", "4096"), 3e-3),
        (("--batch-size", "128"), 3e-3 * (128 / 4096) ** 0.5),
        (("--recipe", "scratch-in21k", "--batch-size", "4096"), 1e-3),
        (("--recipe", "masked-patch", "--batch-size", "4096"), 2e-4),
        (("--recipe", "masked-patch", "--batch-size", "1024"), 1e-4),
        (("--pretrained", "x.pth", "--batch-size", "512"), 0.01),
        (("--pretrained", "x.pth", "--batch-size", "128"), 0.0025),
    ],
)
def test_the_rate_is_the_papers_at_its_batch_and_scaled_at_another(argv, lr) -> None:
    config = resolve("--variant", "vit_b16", *argv)
    assert config.recipe.lr == pytest.approx(lr)


def test_an_explicit_rate_is_taken_as_given() -> None:
    config = resolve("--variant", "vit_b16", "--batch-size", "128", "--lr", "0.001")
    assert config.recipe.lr == 0.001


@pytest.mark.parametrize(
    ("argv", "lr"),
    [
        (("--batch-size", "4096"), 3e-3),  # Table 3's batch: its rate
        (("--batch-size", "128"), 3e-3 * (128 / 4096) ** 0.5),  # the square-root rule's
        (("--batch-size", "128", "--lr", "0.001"), 1e-3),  # as given
    ],
)
def test_weight_decay_shrinks_a_weight_by_wd_times_the_runs_own_rate(argv, lr) -> None:
    """Each AdamW step multiplies a decayed weight by 1 - wd x lr(t), lr(t) the rate this run
    trains at, as flax.optim's Adam applied Table 3's 0.3: at batch 4096 the paper's 0.3 x 3e-3,
    at 128 the scaled rate's 0.3 x 5.3e-4, with --lr 0.3 x that rate."""
    recipe = resolve("--variant", "vit_ti16", *argv).recipe
    model = nn.Linear(4, 4)
    optimizer = build_optimizer(model, recipe, fused=False)
    decay = optimizer.param_groups[1]  # the 2-D weights (timm: [no decay, decay])
    assert decay["lr"] == pytest.approx(lr) and decay["weight_decay"] == 0.3
    before = model.weight.detach().clone()
    model.weight.grad = torch.zeros_like(model.weight)
    optimizer.step()
    torch.testing.assert_close(model.weight.detach(), before * (1 - 0.3 * lr))


def test_fine_tuning_warms_up_for_the_official_500_steps() -> None:
    """vit_jax/configs/common.py: warmup_steps 500, also of Table 4's 500-step runs."""
    recipe = resolve("--variant", "vit_b16", "--pretrained", "x.pth").recipe
    assert warmup_steps(recipe, total_steps=500) == 500
    assert warmup_steps(recipe, total_steps=100) == 100  # a short run still reaches its rate
    assert warmup_steps(resolve("--variant", "vit_b16").recipe, total_steps=500) == 50  # capped


def test_masked_patch_prediction_reads_every_patch_of_a_gap_model() -> None:
    vit = create_model("vit_ti16", num_classes=10, image_size=32, patch_size=8, depth=1, pool="gap")
    logits, positions = MaskedPatchPredictor(vit)(torch.randn(2, 3, 32, 32))
    assert logits.shape == (2, 16, 512) and positions.shape == (2, 8)


def test_masked_patch_states_the_papers_values_and_ours() -> None:
    recipe = resolve("--variant", "vit_b16", "--recipe", "masked-patch").recipe
    assert (recipe.optimizer, recipe.schedule, recipe.warmup_steps) == ("adamw", "cosine", 10_000)
    assert (recipe.weight_decay, recipe.dropout) == (0.1, 0.0)  # ours: B.1.2 is silent


def test_pre_training_has_the_tanh_hidden_layer_and_fine_tuning_drops_it(tmp_path) -> None:
    """Section 3.1: an MLP head with one hidden layer at pre-training, one linear layer at
    fine-tuning."""
    tiny = ("--variant", "vit_ti16", "--model-arg", "depth=1", "--image-size", "32")
    scratch = train_module.build_model(resolve(*tiny), num_classes=10)
    assert scratch.head.representation_size == 192
    path = tmp_path / "pretrained.pth"
    torch.save(scratch.state_dict(), path)
    tuned = train_module.build_model(resolve(*tiny, "--pretrained", str(path)), num_classes=3)
    assert tuned.head.representation_size is None


TRAINING_DOCS = Path(__file__).resolve().parents[1] / "docs" / "training.md"


def test_every_recipe_is_described_once_and_the_docs_hold_the_generated_table() -> None:
    """`DESCRIPTIONS` is the one description of each preset; docs/training.md's table is
    `python -m replicate.training.recipes`'s output, so the two cannot drift apart."""
    assert set(DESCRIPTIONS) == set(RECIPES)
    assert recipes_module.markdown() in TRAINING_DOCS.read_text()


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_each_description_s_numbers_are_the_resolved_settings_at_two_batches(name: str) -> None:
    """Every "lr X at batch B", "weight decay W" and dropout the table states is what the recipe
    resolves to, at B and at B / 4 (the rate scaled by the rule docs/training.md states)."""
    text = DESCRIPTIONS[name]
    pretrained = ("--pretrained", "x.pth") if RECIPES[name].new_head else ()
    variant = "bit_r50x1" if "resnet" in name or name.startswith("bit") else "vit_b16"
    args = ("--variant", variant, "--recipe", name, "--dataset", "digits", *pretrained)
    stated = re.search(r"lr ([0-9.e-]+) at batch (\d+)", text)
    if stated:
        lr, batch = float(stated.group(1)), int(stated.group(2))
        at_batch = resolve(*args, "--batch-size", str(batch)).recipe
        quarter = resolve(*args, "--batch-size", str(batch // 4)).recipe
        assert at_batch.lr == pytest.approx(lr)
        assert quarter.lr == pytest.approx(lr / 2 if at_batch.adaptive else lr / 4)
    recipe = resolve(*args).recipe
    decay = re.search(r"weight decay ([0-9.e-]+)", text)
    if decay:
        assert recipe.weight_decay == pytest.approx(float(decay.group(1)))
    if "no weight decay" in text:
        assert recipe.weight_decay == 0
    dropout = re.search(r"dropout ([0-9.]+)", text)
    if dropout:
        assert recipe.dropout == float(dropout.group(1))
    if "no dropout" in text:
        assert recipe.dropout == 0
