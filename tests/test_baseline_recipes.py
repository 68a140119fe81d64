"""Each model family's own recipe: the registry's defaults, BiT-HyperRule by dataset size, the
step and constant schedules, and MixUp on device batches."""

from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from replicate import models
from replicate import train as train_module
from replicate.training.config import TrainConfig, build_parser, resolve_config
from replicate.training.mixup import mixup
from replicate.training.recipes import (
    RECIPES,
    bit_hyperrule,
    default_recipe,
    lr_factor,
    warmup_steps,
)


def resolve(*argv: str) -> TrainConfig:
    return resolve_config(build_parser().parse_args(list(argv)))


def test_every_model_has_default_recipes_that_exist() -> None:
    for name in models.list_models():
        defaults = {default_recipe(name, pretrained) for pretrained in (False, True)}
        assert defaults <= set(RECIPES), name


def test_tinyvgg_trains_as_the_course_does() -> None:
    recipe = resolve("--variant", "tinyvgg").recipe
    assert recipe.name == "course"
    assert (recipe.optimizer, recipe.lr, recipe.weight_decay) == ("adam", 1e-3, 0.0)
    assert (recipe.schedule, recipe.warmup_steps, recipe.grad_clip) == ("constant", 0, None)
    assert all(lr_factor(s, warmup=0, total=100, schedule="constant") == 1 for s in range(100))


def test_efficientnet_transfers_as_the_course_does() -> None:
    recipe = resolve("--variant", "effnet_b0", "--pretrained", "torchvision:IMAGENET1K_V1").recipe
    assert recipe.name == "course-transfer" and recipe.optimizer == "adam" and recipe.lr == 1e-3
    assert recipe.freeze_backbone and recipe.new_head


def test_vits_keep_the_papers_recipes() -> None:
    assert resolve("--variant", "vit_ti16").recipe.name == "scratch"
    assert resolve("--variant", "vit_ti16", "--pretrained", "x.pth").recipe.name == "finetune"


def test_bit_from_scratch_trains_with_adam_as_the_paper_s_resnets() -> None:
    """Appendix D.1: "We train all models, including ResNets, using Adam"; Table 3's R50x1."""
    config = resolve("--variant", "bit_r50x1", "--batch-size", "4096")
    recipe = config.recipe
    assert (recipe.name, recipe.optimizer, recipe.schedule) == ("scratch-resnet", "adamw", "linear")
    assert (recipe.lr, recipe.weight_decay, recipe.grad_clip) == (1e-3, 0.1, None)


def test_bit_scratch_keeps_sgd_scaled_linearly_with_the_batch() -> None:
    config = resolve("--variant", "bit_r50x1", "--recipe", "bit-scratch", "--batch-size", "64")
    assert config.recipe.optimizer == "sgd"
    assert config.recipe.lr == pytest.approx(0.1 * 64 / 256)
    assert resolve("--variant", "bit_r50x1", "--lr", "0.2").recipe.lr == 0.2  # as given


def test_bit_hyperrule_follows_the_dataset_size() -> None:
    """bit_hyperrule.py of google-research/big_transfer: schedule, MixUp and resolution."""
    small = bit_hyperrule(10_000, 32 * 32)
    assert (small.steps, small.warmup_steps, small.mixup_alpha) == (500, 100, 0.0)
    assert (small.resize, small.image_size) == (160, 128)
    assert small.decay_at == (0.4, 0.6, 0.8)  # 200, 300, 400 of 500 steps
    medium = bit_hyperrule(50_000, 32 * 32)  # CIFAR-10
    assert (medium.steps, medium.warmup_steps, medium.mixup_alpha) == (10_000, 500, 0.1)
    assert medium.decay_at == (0.3, 0.6, 0.9)
    large = bit_hyperrule(1_281_167, 224 * 224)  # ImageNet
    assert (large.steps, large.resize, large.image_size) == (20_000, 448, 384)


def test_bit_fine_tunes_with_the_papers_recipe_by_default() -> None:
    """The paper fine-tunes its ResNets with the ViT setup: Table 4's finetune."""
    config = resolve("--variant", "bit_r50x1", "--pretrained", "x.pth")
    assert config.recipe.name == "finetune"
    # The dataset's resolution: Table 4's 384 is the ViTs' (their position embeddings resized).
    assert config.image_size == 32


def test_bit_hyperrule_on_digits_from_the_command_line() -> None:
    """1,437 training digits of 8x8: the small-data rule; options still override it."""
    argv = ("--variant", "bit_r50x1", "--pretrained", "x.pth", "--recipe", "bit-hyperrule")
    config = resolve(*argv)
    recipe = config.recipe
    assert recipe.name == "bit-hyperrule" and (recipe.optimizer, recipe.momentum) == ("sgd", 0.9)
    assert (recipe.lr, config.batch_size, config.steps, config.image_size) == (0.003, 512, 500, 128)
    assert (recipe.warmup_steps, recipe.mixup_alpha) == (100, 0.0)
    assert recipe.crop_scale == pytest.approx((0.64, 0.64))  # a 128 crop of a 160 image
    assert recipe.new_head
    assert TrainConfig.from_dict(asdict(config)) == config  # config.json round trip
    given = resolve("--variant", "bit_r50x1", "--recipe", "bit-hyperrule", "--steps", "7",
                    "--image-size", "32", "--batch-size", "16")  # fmt: skip
    assert (given.steps, given.image_size, given.batch_size) == (7, 32, 16)


def test_scratch_small_resolves_to_the_short_cifar_recipe() -> None:
    """What `--recipe scratch-small` trains with, for the ViT and the ResNet alike."""
    for model in (("--variant", "vit_ti16"), ("--variant", "bit_r50x1")):
        config = resolve(*model, "--recipe", "scratch-small", "--batch-size", "128",
                         "--steps", "3910", "--dataset", "imagefolder:x")  # fmt: skip
        recipe = config.recipe
        assert (recipe.optimizer, recipe.lr, recipe.weight_decay) == ("adamw", 1e-3, 0.05)
        assert (recipe.schedule, recipe.grad_clip, recipe.dropout) == ("cosine", 1.0, 0.0)
        assert (recipe.crop, recipe.label_smoothing, recipe.pre_logits) == ("pad", 0.0, False)
        assert warmup_steps(recipe, config.steps) == 391  # a tenth of the run
    at_512 = resolve("--recipe", "scratch-small", "--batch-size", "512").recipe
    assert at_512.lr == pytest.approx(2e-3)  # the square-root rule
    vit = train_module.build_model(resolve("--variant", "vit_ti16", "--recipe", "scratch-small",
                                           "--model-arg", "depth=1"), 10)  # fmt: skip
    assert vit.config.dropout == 0 and vit.config.representation_size is None


def test_scratch_small_resnet_is_scratch_small_with_the_resnets_three_changes() -> None:
    """What the dev-split search adopted for the ResNet (results/recipe-ablation/bit.md)."""
    argv = ("--recipe", "scratch-small-resnet", "--batch-size", "128", "--steps", "3910")
    config = resolve("--variant", "bit_r50x1", *argv, "--dataset", "imagefolder:x")
    recipe, small = config.recipe, RECIPES["scratch-small"]
    assert (recipe.lr, recipe.weight_decay, recipe.crop, recipe.crop_scale) == (
        4e-3, 0.3, "inception", (0.5, 1.0))  # fmt: skip
    unchanged = ("optimizer", "schedule", "grad_clip", "dropout", "label_smoothing", "pre_logits")
    assert all(getattr(recipe, f) == getattr(small, f) for f in unchanged)
    assert warmup_steps(recipe, config.steps) == 391


def test_label_smoothing_reaches_the_training_loss(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = resolve("--variant", "tinyvgg", "--image-size", "16", "--steps", "1", "--workers",
                     "0", "--model-arg", "hidden_units=4", "--out", str(tmp_path),
                     "--label-smoothing", "0.2", "--crop", "pad")  # fmt: skip
    seen = []
    step = train_module.Trainer.train_step

    def record(trainer, images, labels):
        logits, targets, losses = step(trainer, images, labels)
        seen.append((logits, targets, losses))
        return logits, targets, losses

    monkeypatch.setattr(train_module.Trainer, "train_step", record)
    train_module.train(config)
    logits, targets, losses = seen[0]
    expected = F.cross_entropy(logits, targets, reduction="none", label_smoothing=0.2)
    torch.testing.assert_close(losses, expected)
    assert not torch.allclose(losses, F.cross_entropy(logits, targets, reduction="none"))


def test_step_schedule_drops_tenfold_as_the_reference() -> None:
    """big_transfer's get_lr: warm-up over 100 steps, then / 10 after 200, 300 and 400 of 500."""
    factor = [
        lr_factor(s, warmup=100, total=500, schedule="step", decay_at=(0.4, 0.6, 0.8))
        for s in range(500)
    ]
    assert factor[49] == pytest.approx(0.5) and factor[100] == factor[200] == 1.0
    assert factor[201] == pytest.approx(0.1) and factor[301] == pytest.approx(0.01)
    assert factor[499] == pytest.approx(0.001)


def test_mixup_mixes_images_and_labels_alike() -> None:
    labels = torch.arange(6)
    images = labels.float().view(6, 1, 1, 1).expand(6, 3, 4, 4)  # image i holds the value i
    generator = torch.Generator().manual_seed(0)
    mixed, targets = mixup(images, labels, 6, alpha=0.4, generator=generator)
    assert targets.shape == (6, 6) and torch.allclose(targets.sum(1), torch.ones(6))
    assert torch.allclose(mixed[:, 0, 0, 0], targets @ labels.float())  # same λ, same pairs
    assert not torch.equal(mixed, images)
    again = mixup(images, labels, 6, alpha=0.4, generator=torch.Generator().manual_seed(0))
    assert torch.equal(again[0], mixed)  # the seeded generator decides everything
    assert mixup(images, labels, 6, alpha=0.0, generator=generator) == (images, labels)
    # Cross-entropy against the mixed targets is MixUp's λ CE(y) + (1 - λ) CE(y[perm]).
    logits = torch.randn(6, 6)
    lam, pair = targets.max(1).values, targets.argsort(1)[:, -2]
    expected = lam * F.cross_entropy(logits, labels, reduction="none") + (
        1 - lam
    ) * F.cross_entropy(logits, pair, reduction="none")
    torch.testing.assert_close(F.cross_entropy(logits, targets, reduction="none"), expected)


def test_trainer_applies_mixup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = resolve("--variant", "tinyvgg", "--image-size", "16", "--steps", "2", "--workers",
                     "0", "--model-arg", "hidden_units=4", "--out", str(tmp_path))  # fmt: skip
    config = replace(config, recipe=replace(config.recipe, mixup_alpha=0.2))
    seen = []
    step = train_module.Trainer.train_step

    def record(trainer, images, targets):
        seen.append(targets)
        return step(trainer, images, targets)

    monkeypatch.setattr(train_module.Trainer, "train_step", record)
    train_module.train(config)
    assert len(seen) == 2 and all(t.shape == (128, 10) and t.dtype.is_floating_point for t in seen)
