"""How long a study's runs will take on this machine, said before they start: a run's optimiser
steps (from its settings) times the time of one of its steps, measured here and now on random
images (its model, batch, resolution and precision: a few seconds a model). Decoding,
augmentation and evaluations are left out, and early stopping may end a run sooner, so the
measured times printed after each run are the ones to quote."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import torch
import torch.nn.functional as F

from replicate.bench.measure import measure_rate, warm_up
from replicate.runtime import (
    Runtime,
    autocast,
    fused_optimizer,
    keep_freed_memory,
    synchronize,
)
from replicate.study.spec import RunSpec
from replicate.sweep import build_parser as sweep_parser
from replicate.sweep import grid_points
from replicate.train import build_model
from replicate.training.config import TrainConfig, parse_args, resolve_config
from replicate.training.objectives import objective_for

CLASSES = 10  # the head's width barely moves a step's time


def planned_steps(spec: RunSpec) -> tuple[int, tuple[str, ...]] | None:
    """The optimiser steps a run of `replicate.train` or a sweep takes in all, and the
    training options they run with; None for a run that does not train or has no --steps."""
    if spec.tool == "train":
        steps = parse_args(list(spec.args)).steps
        return (steps, spec.args) if steps else None
    if spec.tool != "sweep":
        return None
    split = spec.args.index("--")
    sweep, train_args = sweep_parser().parse_args(spec.args[:split]), spec.args[split + 1 :]
    steps = parse_args(list(train_args)).steps
    if not steps:
        return None
    grid = len(grid_points(sweep.lrs, sweep.weight_decays, sweep.crop_scales))
    return grid * steps + sweep.seeds * (sweep.final_steps or steps), train_args


def estimate_s(spec: RunSpec, done: int = 0) -> float | None:
    """Seconds the run should take here with `done` of its steps behind it (a run resumed);
    None where nothing is trained (few-shot, figures)."""
    planned = planned_steps(spec)
    if planned is None:
        return None
    steps, train_args = planned
    args = parse_args(list(train_args))
    args.pretrained = None  # weights that may not exist yet; they change no shape
    return (steps - done) * step_seconds(resolve_config(args))


_MEASURED: dict[tuple, float] = {}  # by what decides a step's cost, once per process


def step_seconds(config: TrainConfig) -> float:
    """The time of one optimiser step of the run `config` describes, measured once."""
    recipe = config.recipe
    key = (config.variant, repr(config.model_overrides), config.batch_size,
           config.image_size, config.precision, recipe.objective, recipe.dropout)  # fmt: skip
    if key not in _MEASURED:
        _MEASURED[key] = time_step(config)
    return _MEASURED[key]


def time_step(config: TrainConfig, warmup: int = 2, timed: int = 3) -> float:
    """The median time of `timed` optimiser steps on random images, after `warmup` untimed,
    set up as the trainer's are (its device, allocator, memory layout and fused optimiser)."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cpu":
        keep_freed_memory()
    model = build_model(config, CLASSES).to(device)
    mean = config.mean or (0.5, 0.5, 0.5)
    objective = objective_for(config.recipe.objective, model, CLASSES, mean, config.std or mean)
    trained = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trained, fused=fused_optimizer(device))
    images = torch.randn(config.batch_size, 3, config.image_size, config.image_size, device=device)
    if Runtime(device, 0, 1, config.precision).channels_last:
        model.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)
    labels = torch.randint(CLASSES, (config.batch_size,), device=device)
    model.train()

    def step() -> None:
        with autocast(device, config.precision):
            logits, targets = objective(model, images, labels)
        F.cross_entropy(logits.float(), targets).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    wait = partial(synchronize, device)
    warm_up(step, warmup, wait)
    return 1 / measure_rate(step, 1, steps=1, repeats=timed, synchronize=wait).median


def duration(seconds: float) -> str:
    """'12 s', '41 min' or '2.3 h'."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


def described(spec: RunSpec, estimate: float | None) -> str:
    """The estimate as the runner prints it: "about 41 min", "at most 6.0 h" with early
    stopping, "no estimate" for a run that does not train."""
    if estimate is None:
        return "no estimate"
    return ("at most " if _stops_early(spec) else "about ") + duration(estimate)


def described_total(specs: Sequence[RunSpec], total: float) -> str:
    """The sum of the runs' estimates: "about 5.2 h", "at most 30.1 h" if any may stop early."""
    return ("at most " if any(map(_stops_early, specs)) else "about ") + duration(total)


def _stops_early(spec: RunSpec) -> bool:
    return "--patience" in spec.args
