"""The sanity check of the studies' training: the cpu scale's ViT (or ResNet) trained by a
plain PyTorch loop, written as a CIFAR tutorial writes it, beside `replicate.train --recipe
scratch-small` on the same model, data, batch and steps, at the full budget of a headline run.
If the trainer falls behind the plain loop, the trainer is at fault; if both end alike, what
limits the accuracy is the budget and the recipe, not the code.

    python -m replicate.study.plain_loop --out results/plain-loop/vit.json   # 10 epochs of ViT
    python -m replicate.study.plain_loop --compare RUN       # beside a finished 10-epoch run
    python -m replicate.study.plain_loop --model bit --steps 500             # the ResNet, short
    python -m replicate.study.plain_loop --mean 0.4914 0.4822 0.4465 --std 0.2023 0.1994 0.2010 \\
        --compare results/recipe-ablation/vit-cifar-stats-10-epochs   # configs/cifar10_vit_ti4.py

The plain loop: the whole training split decoded into memory once; per image a random crop of
the 4-pixel-padded image and a horizontal flip (the CIFAR literature's augmentation); AdamW
(lr 1e-3, weight decay 0.05, none on biases and norms), linear warm-up for a tenth of the steps
then cosine decay, gradient clipping at 1, no dropout, bf16 autocast where the CPU has bf16
units, inputs normalised to [-1, 1] (or by --mean and --std, as the run it is compared with);
the test split once at the end. No dev split, no early stopping: the trainer's run here
has none either.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from replicate.cli_errors import ArgumentParser, positive_int, run_cli
from replicate.data.datasets import image_folder_splits
from replicate.models import create_model
from replicate.runs.log import read_metrics
from replicate.runtime import autocast, default_precision
from replicate.study.runner import environment
from replicate.study.scales import CPU
from replicate.study.spec import command_line
from replicate.training.config import parse_model_arg
from vit.data_config import INCEPTION_MEAN, INCEPTION_STD

BATCH = CPU.batch_size
EPOCH_STEPS = math.ceil(50_000 / BATCH)  # CIFAR-10's training split
# The ViT is built for 32x32 inputs without dropout, as scratch-small; the ResNet takes any size.
BUILD = {"vit": {"image_size": 32, "dropout": 0.0}, "bit": {}}


def images_in_memory(split) -> tuple[Tensor, Tensor]:
    """uint8 (N, 3, 32, 32) and int64 (N,): every image decoded once."""
    images, labels = zip(*(split[i] for i in range(len(split))), strict=True)
    return torch.stack(images), torch.tensor(labels)


def augment(images: Tensor, generator: torch.Generator) -> Tensor:
    """Random 32x32 crops of the 4-pixel zero-padded images, half of them mirrored."""
    n, _, size, _ = images.shape
    padded = F.pad(images, (4, 4, 4, 4))
    rows, cols = torch.randint(0, 9, (2, n), generator=generator)
    corners = zip(rows.tolist(), cols.tolist(), strict=True)
    crops = torch.stack(
        [padded[i, :, r : r + size, c : c + size] for i, (r, c) in enumerate(corners)]
    )
    flip = torch.rand(n, generator=generator) < 0.5
    return torch.where(flip[:, None, None, None], crops.flip(-1), crops)


def plain_loop(
    data: Path,
    steps: int,
    model_name: str = "vit",
    seed: int = 0,
    mean: Sequence[float] = INCEPTION_MEAN,  # 0.5: pixels to [-1, 1], the reference code's
    std: Sequence[float] = INCEPTION_STD,
) -> float:
    """Train the cpu scale's ViT or ResNet for `steps` steps of CIFAR-10, its inputs
    normalised by `mean` and `std`; returns its test top-1."""
    shift, scale = (torch.tensor(v).view(3, 1, 1) for v in (mean, std))

    def normalise(images: Tensor) -> Tensor:
        return (images.float() / 255 - shift) / scale

    torch.manual_seed(seed)
    splits = image_folder_splits(data)
    train_images, train_labels = images_in_memory(splits.train)
    test_images, test_labels = images_in_memory(splits.test)
    settings = CPU.models[model_name]
    overrides = dict(parse_model_arg(a) for a in settings["model_arg"])  # e.g. patch_size=4
    model = create_model(settings["variant"], num_classes=10, **overrides, **BUILD[model_name])
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.05}, {"params": no_decay, "weight_decay": 0.0}],
        lr=1e-3,
    )
    # torch's own schedulers, not the trainer's: linear warm-up over a tenth, then cosine to 0
    warmup, schedules = max(steps // 10, 1), torch.optim.lr_scheduler
    schedule = schedules.SequentialLR(
        optimizer,
        [schedules.LinearLR(optimizer, 1 / warmup, 1.0, warmup - 1),
         schedules.CosineAnnealingLR(optimizer, steps - warmup)],
        milestones=[warmup],
    )  # fmt: skip
    precision = default_precision()[0]
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(train_labels), generator=generator)
    model.train()
    for step in range(steps):
        start = (step * BATCH) % len(order)
        if start + BATCH > len(order):
            order, start = torch.randperm(len(train_labels), generator=generator), 0
        index = order[start : start + BATCH]
        with autocast(torch.device("cpu"), precision):
            logits = model(normalise(augment(train_images[index], generator)))
        loss = F.cross_entropy(logits.float(), train_labels[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
    model.eval()
    correct = 0
    with torch.no_grad(), autocast(torch.device("cpu"), precision):
        for start in range(0, len(test_labels), 500):
            batch = normalise(test_images[start : start + 500])
            correct += (model(batch).argmax(-1) == test_labels[start : start + 500]).sum().item()
    return correct / len(test_labels)


def trainer_run(
    data: Path, steps: int, out: Path, model_name: str, mean: Sequence[float], std: Sequence[float]
) -> float:
    """`replicate.train` on the same model, data, batch, steps and normalisation; its final
    test top-1."""
    settings = {**CPU.models[model_name], "recipe": "scratch-small",
                "dataset": f"imagefolder:{data}", "image_size": 32, "batch_size": BATCH,
                "workers": 0, "steps": steps, "final_eval_only": True, "out": out,
                "mean": list(mean), "std": list(std)}  # fmt: skip
    argv = command_line(settings)
    subprocess.run([sys.executable, "-m", "replicate.train", *argv], check=True)
    return read_metrics(out / "metrics.jsonl")[-1]["test_acc"]


def finished_run(run: Path, steps: int) -> tuple[float, float]:
    """A finished run's final test top-1 and wall time; it must have run `steps` steps."""
    last = read_metrics(run / "metrics.jsonl")[-1]
    if last["step"] != steps:
        raise ValueError(f"{run} ran {last['step']} steps, not {steps}: compare equal budgets")
    return last["test_acc"], last["wall_time_s"]


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="python -m replicate.study.plain_loop", description=__doc__)
    parser.add_argument("--data", type=Path, default=Path(".data/cifar10"), help="CIFAR-10")
    parser.add_argument("--steps", type=positive_int, default=10 * EPOCH_STEPS,
                        help=f"optimiser steps ({10 * EPOCH_STEPS}: 10 epochs)")  # fmt: skip
    parser.add_argument("--model", choices=CPU.models, default="vit",
                        help="the cpu scale's ViT (default) or its ResNet")  # fmt: skip
    parser.add_argument("--mean", type=float, nargs=3, default=INCEPTION_MEAN, metavar="M",
                        help="normalise the inputs by this mean per channel (0.5)")  # fmt: skip
    parser.add_argument("--std", type=float, nargs=3, default=INCEPTION_STD, metavar="S",
                        help="and this std (0.5)")  # fmt: skip
    parser.add_argument("--out", type=Path, help="also write the results to this JSON file")
    parser.add_argument("--compare", type=Path, metavar="RUN",
                        help="a finished replicate.train run of the same model and steps to "
                        "compare with, instead of training one")  # fmt: skip
    return parser


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    args = build_parser().parse_args(argv)
    finished = finished_run(args.compare, args.steps) if args.compare else None  # check first
    results, seconds = {}, {}
    start = time.perf_counter()
    normalisation = {"mean": tuple(args.mean), "std": tuple(args.std)}
    results["plain loop"] = plain_loop(args.data, args.steps, args.model, **normalisation)
    seconds["plain loop"] = time.perf_counter() - start
    print(f"plain loop: test top-1 {results['plain loop']:.2%} ({seconds['plain loop']:.0f} s)")
    if finished:
        results["replicate.train"], seconds["replicate.train"] = finished
    else:
        with tempfile.TemporaryDirectory() as folder:
            start = time.perf_counter()
            results["replicate.train"] = trainer_run(
                args.data, args.steps, Path(folder) / "run", args.model, **normalisation
            )
            seconds["replicate.train"] = time.perf_counter() - start
    for name, accuracy in results.items():
        print(f"{name}: {args.steps} steps of {BATCH}, test top-1 {accuracy:.2%}")
    if args.out:
        record = {"model": args.model, "steps": args.steps, "batch_size": BATCH,
                  **normalisation, "test_top1": results, "wall_time_s": seconds,
                  **environment()}  # fmt: skip
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(record, indent=2) + "\n")
    return results


if __name__ == "__main__":
    raise SystemExit(run_cli("replicate.study.plain_loop", main))
