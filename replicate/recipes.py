"""The training recipes of Appendix B as named presets; command-line options override fields.

scratch           Appendix B.1, Table 3's ImageNet row (the paper's recipe where the data is
                  not ImageNet-21k or JFT): Adam(0.9, 0.999), decoupled weight decay 0.3,
                  linear warm-up then cosine decay, clipping at global norm 1, dropout 0.1
scratch-in21k     Table 3's ImageNet-21k rows: weight decay 0.03, linear decay, dropout 0.1,
                  no clipping (the caption clips "for ImageNet" only)
scratch-jft       Table 3's JFT-300M rows: weight decay 0.1, linear decay, no dropout, no clipping
finetune          Appendix B.1.1, Table 4: SGD with momentum 0.9, batch 512, no weight decay,
                  cosine decay, clipping at norm 1, a new zero-initialised head, 384 x 384 for a ViT
feature-extract   finetune's optimiser on the new head only; the backbone stays frozen
masked-patch      Appendix B.1.2: self-supervised masked patch prediction (no labels read);
                  Adam, base learning rate 2e-4, warm-up, cosine decay; the rest as scratch

Table 3's learning rates are for batch 4096; the scratch presets take a tenth of them, for the
batches of 32 to 512 that fit here. The warm-up is Table 3's 10k steps, capped at a tenth of a
shorter run; an explicit `--warmup-steps` is taken as given (with a warning above the cap).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, replace
from functools import partial
from typing import Literal

import torch
from timm.optim import param_groups_weight_decay
from torch import nn

MAX_WARMUP_FRACTION = 0.1  # the paper warms up 10k of ~100k+ steps; short runs keep that ratio


@dataclass(frozen=True)
class Recipe:
    name: str
    optimizer: Literal["adamw", "sgd"]
    lr: float  # peak learning rate, reached at the end of the warm-up
    weight_decay: float  # decoupled (AdamW), as the reference JAX code's Adam
    schedule: Literal["cosine", "linear"]  # decay to 0 after the warm-up
    warmup_steps: int  # the preset's are capped at a tenth of a shorter run; see warmup_capped
    grad_clip: float | None  # global gradient norm
    dropout: float  # ViTs only: after every dense layer but qkv, and after E_pos
    betas: tuple[float, float] = (0.9, 0.999)  # Adam
    momentum: float = 0.9  # SGD
    image_size: int | None = None  # ViT resolution when loading pretrained weights
    new_head: bool = False  # replace the (pretrained) head by a zero-initialised one
    freeze_backbone: bool = False  # train `model.head` only
    batch_size: int | None = None  # global batch; None: the dataset's default
    warmup_capped: bool = True  # False when --warmup-steps was given: it is taken as it is
    objective: Literal["classification", "masked-patch"] = "classification"  # replicate.objectives


SCRATCH = Recipe(
    name="scratch",
    optimizer="adamw",
    lr=3e-4,  # Table 3, ImageNet: 3e-3 at batch 4096; batches of 32-512 need a gentler step
    weight_decay=0.3,  # Table 3, ImageNet
    schedule="cosine",  # Table 3, ImageNet
    warmup_steps=10_000,  # Table 3 caption
    grad_clip=1.0,  # Table 3 caption: "For ImageNet ... gradient clipping at global norm 1"
    dropout=0.1,  # Table 3, ImageNet
)
SCRATCH_IN21K = replace(
    SCRATCH,
    name="scratch-in21k",
    lr=1e-4,  # Table 3: 1e-3 at batch 4096, a tenth as for scratch
    weight_decay=0.03,
    schedule="linear",
    grad_clip=None,
)
SCRATCH_JFT = replace(
    SCRATCH_IN21K,
    name="scratch-jft",
    lr=8e-5,  # Table 3: 8e-4 for ViT-B (3e-4 to 6e-4 for L and H) at batch 4096
    weight_decay=0.1,
    dropout=0.0,
)
FINETUNE = Recipe(
    name="finetune",
    optimizer="sgd",
    lr=0.01,  # Table 4's grids {0.001, 0.003, 0.01, 0.03}; 0.01 is VTAB's single choice
    weight_decay=0.0,  # Table 4 caption
    schedule="cosine",  # Table 4 caption
    warmup_steps=500,  # big_vision's fine-tuning configs; the paper does not say
    grad_clip=1.0,  # Table 4 caption
    dropout=0.0,
    image_size=384,  # Appendix B.1.1: "all fine-tuning experiments run at 384 resolution"
    new_head=True,  # Appendix B.1.1: "replace it by a single, zero-initialized linear layer"
    batch_size=512,  # Table 4 caption, reached by gradient accumulation (replicate.accumulation)
)
FEATURE_EXTRACT = replace(FINETUNE, name="feature-extract", freeze_backbone=True)
MASKED_PATCH = replace(
    SCRATCH,  # Table 3's ImageNet row: weight decay, clipping, dropout, as for any small dataset
    name="masked-patch",
    lr=2e-4,  # Appendix B.1.2: "Adam, with a base learning rate of 2e-4, warmup of 10k steps
    schedule="cosine",  # and cosine learning rate decay"
    objective="masked-patch",
)
RECIPES = {
    r.name: r
    for r in (SCRATCH, SCRATCH_IN21K, SCRATCH_JFT, FINETUNE, FEATURE_EXTRACT, MASKED_PATCH)
}


def build_optimizer(model: nn.Module, recipe: Recipe, fused: bool) -> torch.optim.Optimizer:
    """No weight decay on biases, norms (1-D tensors) and `model.no_weight_decay()` (E_pos, the
    class token), as timm and big_vision; frozen parameters are left out."""
    skip = model.no_weight_decay() if hasattr(model, "no_weight_decay") else ()
    groups = param_groups_weight_decay(model, recipe.weight_decay, no_weight_decay_list=skip)
    if recipe.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=recipe.lr, betas=recipe.betas, fused=fused)
    return torch.optim.SGD(groups, lr=recipe.lr, momentum=recipe.momentum, fused=fused)


def build_scheduler(
    optimizer: torch.optim.Optimizer, recipe: Recipe, total_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    cap = int(total_steps * MAX_WARMUP_FRACTION)
    warmup = min(recipe.warmup_steps, cap) if recipe.warmup_capped else recipe.warmup_steps
    if warmup > cap:
        warnings.warn(
            f"--warmup-steps {warmup} is more than a tenth of the {total_steps}-step run "
            f"(the default would cap it at {cap}); taken as given",
            stacklevel=2,
        )
    factor = partial(lr_factor, warmup=warmup, total=total_steps, schedule=recipe.schedule)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def lr_factor(step: int, *, warmup: int, total: int, schedule: str) -> float:
    """Linear warm-up from 0 to 1 over `warmup` steps, then cosine or linear decay to 0."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    if schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * progress))
    return 1 - progress
