"""How long a study's runs will take, before they start: each run's training FLOPs (three
forward passes per image: forward, and a backward of about twice its cost) divided by the
training FLOP/s this machine reached in the runs already finished under the same folder.

Evaluations and data decoding are left out, so the estimate is a floor; the runner prints it
beside each run's measured time.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from replicate.flops import forward_flops
from replicate.runs.log import CONFIG, METRICS, last_epoch
from replicate.study.spec import RunSpec
from replicate.sweep import LEARNING_RATES
from replicate.training.config import parse_model_arg

TRAIN_PASSES = 3  # forward + backward (about twice the forward's FLOPs)
CLASSES = 10  # the studies' heads: CIFAR-10 (and the photos' two, a rounding error)


@dataclass(frozen=True)
class TrainingShape:
    """What a study run's training costs: its model, resolution and the images it trains on."""

    variant: str
    overrides: dict
    image_size: int
    images: int  # optimiser steps x batch, over every training run the tool makes

    def flops(self) -> float:
        forward = forward_flops(
            self.variant, image_size=self.image_size, num_classes=CLASSES, **self.overrides
        )
        return TRAIN_PASSES * forward * self.images


def _option(args: Sequence[str], name: str, default: str | None = None) -> str | None:
    return args[args.index(name) + 1] if name in args else default


def _values(args: Sequence[str], name: str) -> list[str]:
    """Every value after `name` up to the next option (`--lrs 0.001 0.01`)."""
    if name not in args:
        return []
    values = []
    for value in args[args.index(name) + 1 :]:
        if value.startswith("--"):
            break
        values.append(value)
    return values


def training_shape(spec: RunSpec) -> TrainingShape | None:
    """The training a run does, from its command line; None for tools that do not train
    (few-shot, figures), whose forward passes over a small dataset take seconds."""
    if spec.tool not in ("train", "sweep"):
        return None
    args = list(spec.args)
    sweep: list[str] = []
    if spec.tool == "sweep":
        split = args.index("--")
        sweep, args = args[:split], args[split + 1 :]
    steps = total_steps = int(_option(args, "--steps", "0"))
    if sweep:
        grid = len(_values(sweep, "--lrs") or LEARNING_RATES)
        for axis in ("--weight-decays", "--crop-scales"):
            grid *= len(_values(sweep, axis)) or 1
        final = int(_option(sweep, "--final-steps", str(steps)))
        total_steps = grid * steps + int(_option(sweep, "--seeds", "1")) * final
    model_args = [args[i + 1] for i, a in enumerate(args) if a == "--model-arg"]
    batch = int(_option(args, "--batch-size", "0"))
    return TrainingShape(
        variant=str(_option(args, "--variant")),
        overrides=dict(parse_model_arg(a) for a in model_args),
        image_size=int(_option(args, "--image-size", "224")),
        images=total_steps * batch,
    )


def measured_rates(finished: Iterable[Path]) -> dict[str, float]:
    """The median training FLOP/s of finished `replicate.train` run folders for each variant
    (a ViT and a ResNet of equal FLOPs train at very different rates), from their config.json
    and the images/s of their last logged epoch."""
    rates: dict[str, list[float]] = {}
    for folder in finished:
        if not (folder / CONFIG).is_file() or not (folder / METRICS).is_file():
            continue
        config = json.loads((folder / CONFIG).read_text())
        last = last_epoch(folder)
        if not last.get("images_per_s"):
            continue
        forward = forward_flops(
            config["variant"],
            image_size=config["image_size"],
            num_classes=CLASSES,
            **config["model_overrides"],
        )
        rates.setdefault(config["variant"], []).append(
            TRAIN_PASSES * forward * last["images_per_s"]
        )
    return {variant: statistics.median(values) for variant, values in rates.items()}


def estimate_seconds(spec: RunSpec, rates: dict[str, float]) -> float | None:
    """The run's training time at the rate its variant reached here (or the slowest measured
    variant's); 0 for a run that does not train; None when nothing has been measured yet."""
    shape = training_shape(spec)
    if shape is None:
        return 0.0
    rate = rates.get(shape.variant) or min(rates.values(), default=None)
    return None if rate is None else shape.flops() / rate


# The measured H100 anchor (docs/benchmarks.md): timm's ViT-B/16 trains 2,563 images/s at 224x224
# in bf16, batch 256. Small models at 32x32 keep the GPU far less busy, so time at this rate is
# a floor, the "on paper" time of a scale that has not run on a GPU yet.
H100_VIT_B16_IMAGES_PER_S = 2_563


def h100_training_flops_per_s() -> float:
    forward = forward_flops("vit_b16", image_size=224, num_classes=1000)
    return TRAIN_PASSES * forward * H100_VIT_B16_IMAGES_PER_S


def training_flops(specs: Iterable[RunSpec]) -> float:
    """The training FLOPs of a study's runs (evaluation and few-shot left out)."""
    return sum(shape.flops() for spec in specs if (shape := training_shape(spec)) is not None)
