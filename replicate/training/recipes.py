"""Training recipes as named presets, one table (`RECIPES`); command-line options override fields.

The paper's (Appendix B) for the ViTs, and each baseline's own, so that a CNN is trained as its
authors train it; `DESCRIPTIONS` says what each is, and `python -m replicate.training.recipes`
prints them as docs/training.md's table. `DEFAULTS` names the ones a model gets when `--recipe`
is not given.

Learning rates are given at a reference batch (Table 3's 4096, Table 4's 512) and scaled to the
run's global batch: by its square root for Adam (Malladi et al. 2022, "On the SDEs and scaling
rules for adaptive gradient algorithms"), linearly for SGD (Goyal et al. 2017). At batch 4096
`scratch` trains at Table 3's 3e-3; at 128, at 3e-3 x sqrt(128/4096) = 5.3e-4.

Weight decay is the paper's coefficient λ as its code applies it: flax.optim's Adam multiplies it
by the scheduled learning rate, as `torch.optim.AdamW` does, so each step shrinks a weight by
λ x lr(t), with lr(t) the run's own rate (after batch scaling or --lr). What λ means at another
batch size and length: AdamW's weights are an exponential average of their updates over
τ = 1 / (λ lr) steps (Wang & Aitchison 2024), τ B / N epochs for N images. Table 3's ImageNet
row (λ 0.3, lr 3e-3, batch 4096, 300 epochs of 1.28M) averages over τ = 1,111 steps, 3.6 epochs,
1.2% of its run. The same λ at batch 128 with the square-root rate (5.3e-4) averages over 6,300
steps, 16 epochs: longer than a short run, so a short run's decay is chosen on its dev split
(the ablation of `results/recipe-ablation` tries Table 3's 0.3 against the short CIFAR recipes'
0.05), not carried over from the paper.

The warm-up is Table 3's 10k steps, capped at a tenth of a shorter run (the paper is silent on
short runs); finetune's 500 steps are the official fine-tuning configs', never longer than the run
(a shorter fine-tune reaches its rate at its last step, as a 500-step one does). An explicit
`--warmup-steps` is taken as given (with a warning above the cap).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, replace
from functools import partial
from typing import Literal

import torch
from torch import nn

Schedule = Literal["cosine", "linear", "step", "constant"]
SCHEDULES: tuple[Schedule, ...] = ("cosine", "linear", "step", "constant")  # `lr_factor`'s


@dataclass(frozen=True)
class Recipe:
    name: str
    optimizer: Literal["adamw", "adam", "sgd"]
    lr: float  # peak learning rate, reached at the end of the warm-up
    weight_decay: float  # decoupled for AdamW, as the reference JAX code's Adam; L2 for SGD
    schedule: Schedule  # after the warm-up
    warmup_steps: int  # the preset's are capped at `max_warmup_fraction` of a shorter run
    grad_clip: float | None  # global gradient norm
    dropout: float  # ViTs only: after every dense layer but qkv, and after E_pos
    betas: tuple[float, float] = (0.9, 0.999)  # Adam
    momentum: float = 0.9  # SGD
    image_size: int | None = None  # ViT resolution when loading pretrained weights
    new_head: bool = False  # a new head for the task (zero-initialised for ViT and BiT)
    freeze_backbone: bool = False  # train `model.head` only
    batch_size: int | None = None  # global batch; None: the dataset's default
    warmup_capped: bool = True  # False when --warmup-steps was given: it is taken as it is
    objective: Literal["classification", "masked-patch"] = "classification"  # see objectives.py
    paper_finetune_steps: bool = False  # with --pretrained, run Table 4's steps for the dataset
    decay_at: tuple[float, ...] = ()  # "step": fractions of the run where the rate drops 10x
    max_warmup_fraction: float = 0.1  # the warm-up is capped at this share of the run
    reference_batch: int | None = None  # lr is for this batch: scaled to the run's (`at_batch`)
    pre_logits: bool = False  # Section 3.1: a tanh hidden layer in the head at pre-training
    mixup_alpha: float = 0.0  # MixUp's Beta(alpha, alpha); 0: none
    crop: Literal["inception", "pad"] = "inception"  # the reference's, or CIFAR's padded crop
    crop_scale: tuple[float, float] | None = None  # inception crop's area; None: the dataset's
    label_smoothing: float = 0.0  # of the cross-entropy's targets (Szegedy et al. 2016)
    by_dataset_size: bool = False  # BiT-HyperRule: length, resolution, MixUp from the data

    @property
    def adaptive(self) -> bool:
        return self.optimizer in ("adam", "adamw")

    def at_batch(self, batch_size: int) -> Recipe:
        """The recipe with its rate scaled from `reference_batch` to `batch_size`: by the
        square root for Adam, linearly for SGD."""
        if not self.reference_batch:
            return self
        ratio = batch_size / self.reference_batch
        return replace(self, lr=self.lr * (math.sqrt(ratio) if self.adaptive else ratio))


SCRATCH = Recipe(
    name="scratch",
    optimizer="adamw",
    lr=3e-3,  # Table 3, ImageNet
    reference_batch=4096,  # Table 3 caption: "All models are trained with a batch size of 4096"
    weight_decay=0.3,  # Table 3, ImageNet
    schedule="cosine",  # Table 3, ImageNet
    warmup_steps=10_000,  # Table 3 caption
    grad_clip=1.0,  # Table 3 caption: "For ImageNet ... gradient clipping at global norm 1"
    dropout=0.1,  # Table 3, ImageNet
    pre_logits=True,  # Section 3.1: "a MLP with one hidden layer at pre-training time"
)
SCRATCH_IN21K = replace(
    SCRATCH,
    name="scratch-in21k",
    lr=1e-3,  # Table 3
    weight_decay=0.03,
    schedule="linear",
    grad_clip=None,
)
SCRATCH_JFT = replace(
    SCRATCH_IN21K,
    name="scratch-jft",
    lr=8e-4,  # Table 3: ViT-B (3e-4 to 6e-4 for L and H)
    weight_decay=0.1,
    dropout=0.0,
)
FINETUNE = Recipe(
    name="finetune",
    optimizer="sgd",
    lr=0.01,  # Table 4's grids {0.001, 0.003, 0.01, 0.03}; 0.01 is VTAB's single choice
    reference_batch=512,  # Table 4 caption
    weight_decay=0.0,  # Table 4 caption
    schedule="cosine",  # Table 4 caption
    warmup_steps=500,  # vit_jax/configs/common.py; the paper does not say
    max_warmup_fraction=1.0,  # as the official configs: 500 even of a 500-step run, no more
    grad_clip=1.0,  # Table 4 caption
    dropout=0.0,
    image_size=384,  # Appendix B.1.1: "all fine-tuning experiments run at 384 resolution"
    new_head=True,  # Appendix B.1.1: "replace it by a single, zero-initialized linear layer"
    paper_finetune_steps=True,  # Table 4
    batch_size=512,  # Table 4 caption, reached by gradient accumulation (training.accumulation)
)
FEATURE_EXTRACT = replace(FINETUNE, name="feature-extract", freeze_backbone=True)
MASKED_PATCH = replace(
    SCRATCH,
    name="masked-patch",
    lr=2e-4,  # Appendix B.1.2: "Adam, with a base learning rate of 2e-4, warmup of 10k steps
    schedule="cosine",  # and cosine learning rate decay", at batch 4096
    weight_decay=0.1,  # ours: B.1.2 is silent; Table 3's JFT rows, the data it pre-trained on
    dropout=0.0,  # ours, likewise
    pre_logits=False,  # the objective's own predictor reads the patch tokens
    objective="masked-patch",
)
SCRATCH_RESNET = Recipe(
    name="scratch-resnet",
    optimizer="adamw",  # Appendix D.1: "We train all models, including ResNets, using Adam"
    lr=1e-3,  # Table 3, R50x1 (JFT-300M, the only ResNet rows)
    reference_batch=4096,
    weight_decay=0.1,  # Table 3, R50x1
    schedule="linear",  # Table 3, R50x1
    warmup_steps=10_000,  # Table 3 caption
    grad_clip=None,  # Table 3 caption: clipping for ImageNet (the ViTs) only
    dropout=0.0,
)
SCRATCH_SMALL = Recipe(
    name="scratch-small",
    optimizer="adamw",
    lr=1e-3,  # the CIFAR ViTs' (omihub777/ViT-CIFAR; timm's DeiT rate 5e-4 x 512 / 256, at 128)
    reference_batch=128,
    # Each setting below was tested against one alternative on CIFAR-10's dev split; for the ViT
    # none of those beat it (results/recipe-ablation/vit.md): Table 3's wd 0.3, dropout 0.1,
    # the inception crop, label smoothing 0.1 and lr 5e-4 within noise, lr 2e-3 and the studies'
    # recipe worse. The ResNet's are `scratch-small-resnet`.
    weight_decay=0.05,  # DeiT's and timm's
    schedule="cosine",
    warmup_steps=10_000,  # capped at a tenth of the run, as `scratch`
    grad_clip=1.0,
    dropout=0.0,  # a short run underfits (its train and test accuracy alike)
    crop="pad",  # 4-pixel zero-padded 32x32 crop and flip (He et al. 2016)
)
# The same search for the BiT ResNet (results/recipe-ablation/bit.md) adopted three changes, each
# better than `scratch-small` on its own: lr 4e-3 (+8.2 points ± 2.4; 2e-3 +5.6, 8e-3 +5.1, and
# 4e-3 beat both, paired), the inception crop with a 50% floor (+4.5 ± 3.0), wd 0.3 (+1.9 ±
# 1.8); label smoothing was within noise, lr 5e-4 worse. Together they were not ablated.
SCRATCH_SMALL_RESNET = replace(
    SCRATCH_SMALL,
    name="scratch-small-resnet",
    lr=4e-3,
    weight_decay=0.3,
    crop="inception",
    crop_scale=(0.5, 1.0),
)
COURSE = Recipe(
    name="course",
    optimizer="adam",  # torch.optim.Adam(params=model.parameters(), lr=0.001)
    lr=1e-3,
    weight_decay=0.0,
    schedule="constant",
    warmup_steps=0,
    grad_clip=None,
    dropout=0.0,
)
COURSE_TRANSFER = replace(COURSE, name="course-transfer", new_head=True, freeze_backbone=True)
BIT_SCRATCH = Recipe(
    name="bit-scratch",
    optimizer="sgd",
    lr=0.1,  # at batch 256 (He et al. 2016; Goyal et al. 2017's linear scaling)
    reference_batch=256,
    weight_decay=5e-4,  # the CIFAR ResNets' (ImageNet: 1e-4)
    schedule="cosine",
    warmup_steps=500,
    grad_clip=None,
    dropout=0.0,
)
BIT_HYPERRULE = Recipe(
    name="bit-hyperrule",
    optimizer="sgd",
    lr=0.003,  # BiT: "initial learning rate 0.003, momentum 0.9, batch size 512"
    reference_batch=512,  # bit_hyperrule.py: lr 0.003 * batch / 512
    batch_size=512,
    weight_decay=0.0,
    schedule="step",
    decay_at=(0.3, 0.6, 0.9),  # filled in by `bit_hyperrule` for the dataset's size
    warmup_steps=500,
    max_warmup_fraction=0.2,  # the small-data schedule warms up 100 of its 500 steps
    grad_clip=None,
    dropout=0.0,
    new_head=True,  # zero-initialised, as BiT's
    mixup_alpha=0.1,
    by_dataset_size=True,
)
PAPER = (
    SCRATCH,
    SCRATCH_IN21K,
    SCRATCH_JFT,
    FINETUNE,
    FEATURE_EXTRACT,
    MASKED_PATCH,
    SCRATCH_RESNET,
)
SMALL = (SCRATCH_SMALL, SCRATCH_SMALL_RESNET)  # ours: short budgets on small images
BASELINES = (COURSE, COURSE_TRANSFER, BIT_SCRATCH, BIT_HYPERRULE)
RECIPES = {r.name: r for r in PAPER + SMALL + BASELINES}

# What a model trains with when --recipe names none, from scratch and from pretrained weights,
# by the registry name's first word: the ViTs (hybrids too) the paper's (Appendix B.1, B.1.1);
# the BiT ResNets the paper's Adam (Appendix D.1, Table 3's ResNet rows) and Table 4's
# fine-tuning, as the paper fine-tunes its ResNets with the ViT setup (`bit-scratch`,
# `bit-hyperrule` are the options); TinyVGG and EfficientNet as the course trains them.
DEFAULTS: dict[str, tuple[str, str]] = {
    "vit": ("scratch", "finetune"),
    "bit": ("scratch-resnet", "finetune"),
    "tinyvgg": ("course", "course"),
    "effnet": ("course", "course-transfer"),
}


def default_recipe(model: str, pretrained: bool) -> str:
    """The recipe `model` (a registry name) trains with when none is named."""
    return DEFAULTS[model.split("_")[0]][pretrained]


DESCRIPTIONS = {  # the one description of each preset: --help, docs/training.md (`markdown`)
    "scratch": (
        "Appendix B.1, Table 3's ImageNet row, the paper's recipe for data that is not "
        "ImageNet-21k or JFT: Adam β (0.9, 0.999), lr 3e-3 at batch 4096, weight decay 0.3 (none "
        "on E_pos, the class token, biases, norms), linear warm-up then cosine decay, clipping at "
        "global norm 1, dropout 0.1, the head's tanh hidden layer (Section 3.1)"
    ),
    "scratch-in21k": (
        "Table 3's ImageNet-21k rows: lr 1e-3, weight decay 0.03, linear decay, dropout 0.1, no "
        'clipping (the caption clips "for ImageNet")'
    ),
    "scratch-jft": (
        "Table 3's JFT-300M rows: lr 8e-4, weight decay 0.1, linear decay, no dropout, no clipping"
    ),
    "scratch-resnet": (
        "Table 3's ResNet rows (Appendix D.1: \"We train all models, including ResNets, using "
        'Adam"): Adam, lr 1e-3 at batch 4096, weight decay 0.1, linear decay, no dropout, no '
        "clipping"
    ),
    "finetune": (
        "Appendix B.1.1, Table 4: SGD momentum 0.9, global batch 512 (gradient accumulation), no "
        "weight decay, cosine decay, clipping at 1, new zero-initialised head, 384×384 for ViTs "
        "(position embeddings interpolated, Section 3.2), Table 4's step counts"
    ),
    "feature-extract": ("`finetune` on the new head only; the backbone stays frozen"),
    "masked-patch": (
        "Appendix B.1.2: self-supervised pre-training of a ViT by masked patch prediction (labels "
        "are not read); the paper's Adam, base learning rate 2e-4 at batch 4096, warm-up (10k "
        "steps, capped as above), cosine decay; ours where it is silent: weight decay 0.1 and no "
        "dropout (Table 3's JFT rows, the data B.1.2 pre-trained on), clipping at 1"
    ),
    "scratch-small": (
        "ours, for a ViT or ResNet from scratch on small images (32x32) in a short budget, as the "
        "public CIFAR recipes train: Adam, lr 1e-3 at batch 128, weight decay 0.05, warm-up for "
        "a tenth of the run then cosine decay, clipping at 1, no dropout, no tanh hidden layer, "
        "the 4-pixel padded crop and flip; chosen on CIFAR-10's dev split "
        "(results/recipe-ablation)"
    ),
    "scratch-small-resnet": (
        "ours, `scratch-small` as the same dev-split search chose it for the BiT ResNet: lr 4e-3 "
        "at batch 128, weight decay 0.3, the inception crop with a 50% area floor and flip "
        "(results/recipe-ablation/bit.md)"
    ),
    "course": (
        "TinyVGG as the course trains it (section 04): `torch.optim.Adam(lr=0.001)`, no weight "
        "decay, no warm-up, constant learning rate"
    ),
    "course-transfer": (
        "EfficientNet as the course transfers it (section 06): `course`'s Adam 1e-3 on a new "
        "head, the pretrained features frozen"
    ),
    "bit-scratch": (
        "the option of SGD for a ResNet from scratch, the standard recipe for small images (He et "
        "al. 2016): SGD momentum 0.9, lr 0.1 × batch/256, weight decay 5e-4 (L2, none on norms "
        "and biases), 500 warm-up steps, cosine decay"
    ),
    "bit-hyperrule": (
        "BiT-HyperRule (Kolesnikov et al. 2020; the paper also runs it for ResNets, Appendix "
        "B.1.1): SGD momentum 0.9, lr 0.003 at batch 512 (scaled linearly), batch 512, new "
        "zero-initialised head, no weight decay; by the training set's size N: N < 20k: 500 steps "
        "(warm-up 100, lr ÷10 after 200, 300, 400), no MixUp; N < 500k: 10k steps, else 20k "
        "(warm-up 500, ÷10 at 30%, 60%, 90%), MixUp α = 0.1; images under 96×96 resized to 160 "
        "and cropped to 128, larger ones 448 → 384"
    ),
}


@dataclass(frozen=True)
class HyperRule:
    """What BiT-HyperRule sets for one dataset."""

    steps: int
    warmup_steps: int
    decay_at: tuple[float, ...]  # fractions of `steps`
    resize: int  # the training images are resized to this side ...
    image_size: int  # ... and randomly cropped to this one (evaluation: resized to it)
    mixup_alpha: float

    def apply(self, recipe: Recipe) -> Recipe:
        """`recipe` with the rule's warm-up, decay points, MixUp and crop."""
        area = (self.image_size / self.resize) ** 2
        return replace(
            recipe,
            warmup_steps=self.warmup_steps,
            decay_at=self.decay_at,
            mixup_alpha=self.mixup_alpha,
            crop_scale=(area, area),
        )


def bit_hyperrule(train_size: int, image_area: int) -> HyperRule:
    """BiT-HyperRule for a training set of `train_size` images of about `image_area` pixels:
    google-research/big_transfer's `get_schedule`, `get_mixup` and `get_resolution`."""
    small_images = image_area < 96 * 96
    resize, crop = (160, 128) if small_images else (448, 384)
    if train_size < 20_000:
        return HyperRule(500, 100, (0.4, 0.6, 0.8), resize, crop, mixup_alpha=0.0)
    steps = 10_000 if train_size < 500_000 else 20_000
    return HyperRule(steps, 500, (0.3, 0.6, 0.9), resize, crop, mixup_alpha=0.1)


def build_optimizer(model: nn.Module, recipe: Recipe, fused: bool) -> torch.optim.Optimizer:
    """No weight decay on biases, norms (1-D tensors) and `model.no_weight_decay()` (E_pos, the
    class token), as timm and big_vision; frozen parameters are left out."""
    from timm.optim import param_groups_weight_decay

    skip = model.no_weight_decay() if hasattr(model, "no_weight_decay") else ()
    groups = param_groups_weight_decay(model, recipe.weight_decay, no_weight_decay_list=skip)
    if recipe.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=recipe.lr, betas=recipe.betas, fused=fused)
    if recipe.optimizer == "adam":
        return torch.optim.Adam(groups, lr=recipe.lr, betas=recipe.betas, fused=fused)
    return torch.optim.SGD(groups, lr=recipe.lr, momentum=recipe.momentum, fused=fused)


def build_scheduler(
    optimizer: torch.optim.Optimizer, recipe: Recipe, total_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    warmup = warmup_steps(recipe, total_steps)
    factor = partial(
        lr_factor,
        warmup=warmup,
        total=total_steps,
        schedule=recipe.schedule,
        decay_at=recipe.decay_at,
    )
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def warmup_steps(recipe: Recipe, total_steps: int) -> int:
    """The warm-up a run of `total_steps` uses: the recipe's, capped at `max_warmup_fraction`
    of the run unless it was given (`--warmup-steps`)."""
    cap = int(total_steps * recipe.max_warmup_fraction)
    if recipe.warmup_capped:
        return min(recipe.warmup_steps, cap)
    if recipe.warmup_steps > cap:
        warnings.warn(
            f"--warmup-steps {recipe.warmup_steps} is more than "
            f"{recipe.max_warmup_fraction:.0%} of the {total_steps}-step run (the default would "
            f"cap it at {cap}); taken as given",
            stacklevel=2,
        )
    return recipe.warmup_steps


def lr_factor(
    step: int, *, warmup: int, total: int, schedule: str, decay_at: tuple[float, ...] = ()
) -> float:
    """Linear warm-up from 0 to 1 over `warmup` steps, then cosine or linear decay to 0, a
    staircase ("step": 10x lower after each fraction `decay_at` of the run), or constant."""
    if step < warmup:
        return (step + 1) / warmup
    if schedule == "step":
        return 0.1 ** sum(step > fraction * total for fraction in decay_at)
    if schedule == "constant":
        return 1.0
    progress = (step - warmup) / max(1, total - warmup)
    if schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * progress))
    return 1 - progress


def markdown() -> str:
    """The `--recipe` table of docs/training.md: each preset, what it is, and the models that
    get it by default (`DEFAULTS`)."""
    uses: dict[str, list[str]] = {name: [] for name in RECIPES}
    for family, (scratch, pretrained) in DEFAULTS.items():
        uses[scratch].append(f"`{family}*` from scratch")
        uses[pretrained].append(f"`{family}*` with `--pretrained`")
    rows = [f"| `{name}` | {DESCRIPTIONS[name]} | {', '.join(uses[name])} |" for name in RECIPES]
    return "\n".join(["| `--recipe` | what it is | default for |", "| --- | --- | --- |", *rows])


if __name__ == "__main__":
    print(markdown())  # python -m replicate.training.recipes: the table docs/training.md holds
