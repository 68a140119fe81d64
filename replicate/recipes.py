"""The training recipes of Appendix B as named presets; command-line options override fields.

scratch           Appendix B.1, Table 3: Adam(0.9, 0.999), decoupled weight decay 0.1,
                  linear warm-up then cosine (or linear) decay, clipping at global norm 1,
                  dropout 0.1
finetune          Appendix B.1.1, Table 4: SGD with momentum 0.9, no weight decay, cosine
                  decay, clipping at norm 1, a new zero-initialised head, 384 x 384 for a ViT
feature-extract   finetune's optimiser on the new head only; the backbone stays frozen
masked-patch      Appendix B.1.2: self-supervised masked patch prediction (no labels read);
                  Adam, base learning rate 2e-4, warm-up, cosine decay; the rest as scratch
"""

from __future__ import annotations

import math
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
    warmup_steps: int  # capped at a tenth of a shorter run
    grad_clip: float | None  # global gradient norm
    dropout: float  # ViTs only: after every dense layer but qkv, and after E_pos
    betas: tuple[float, float] = (0.9, 0.999)  # Adam
    momentum: float = 0.9  # SGD
    image_size: int | None = None  # ViT resolution when loading pretrained weights
    new_head: bool = False  # replace the (pretrained) head by a zero-initialised one
    freeze_backbone: bool = False  # train `model.head` only
    objective: Literal["classification", "masked-patch"] = "classification"  # replicate.objectives


SCRATCH = Recipe(
    name="scratch",
    optimizer="adamw",
    lr=3e-4,  # Table 3: 1e-3 to 3e-3 at batch 4096; batches of 32-128 need a gentler step
    weight_decay=0.1,  # Table 3, JFT-300M (ImageNet-21k: 0.03, ImageNet: 0.3)
    schedule="cosine",  # Table 3: linear for the large datasets, cosine on ImageNet
    warmup_steps=10_000,  # Table 3 caption
    grad_clip=1.0,  # Table 3 caption (ImageNet)
    dropout=0.1,  # Table 3, ImageNet(-21k)
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
)
FEATURE_EXTRACT = replace(FINETUNE, name="feature-extract", freeze_backbone=True)
MASKED_PATCH = replace(
    SCRATCH,  # Appendix B.1: weight decay 0.1, clipping, dropout for every pre-training
    name="masked-patch",
    lr=2e-4,  # Appendix B.1.2: "Adam, with a base learning rate of 2e-4, warmup of 10k steps
    schedule="cosine",  # and cosine learning rate decay"
    objective="masked-patch",
)
RECIPES = {r.name: r for r in (SCRATCH, FINETUNE, FEATURE_EXTRACT, MASKED_PATCH)}


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
    warmup = min(recipe.warmup_steps, int(total_steps * MAX_WARMUP_FRACTION))
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
