"""Appendix B.1.1's fine-tuning protocol, end to end: choose the learning rate on a dev split,
retrain on the whole training set, evaluate once on the test set.

    python -m replicate.sweep -- --variant vit_b16 --dataset oxford_pets --pretrained ...
    python -m replicate.sweep --lrs 0.001 0.01 --val-fraction 0.02 --out runs/sweep-c10 \\
        -- --variant vit_s16 --dataset imagefolder:.data/cifar10 --pretrained ... --steps 1000

"We run a small grid search over learning rates, see learning rate ranges in Table 4. To do so,
we use small sub-splits from the training set (10% for Pets and Flowers, 2% for CIFAR, 1%
ImageNet) as development set and train on the remaining data. For final results we train on
the entire training set and evaluate on the respective test data."

Everything after `--` is passed to `replicate.train` for every run; the sweep adds `--lr`,
`--val-fraction` (candidates) or `--final-eval-only` and `--seed` (the final runs) and `--out`.
`--weight-decays` and `--crop-scales` make the grid a product: every learning rate with every
weight decay and every crop floor, the same search for whatever model is swept. `--final-steps`
trains the final runs longer than the candidates: a short search, then one full-length run.
The folder holds one run folder per candidate (`lr-0.001/`, `lr-0.001-wd-0.3-crop-0.25/`, ...),
the final runs (`final-lr-0.01/`; with `--seeds 3`, `final-lr-0.01-seed-0/` to `-seed-2/`) and
`sweep.json` / `sweep.md`: every candidate's dev accuracy, the choice and the test accuracy of
each seed and their mean. Candidates are chosen on their last epoch's dev top-1 (ties: the first
in the grid). A sweep that stops resumes where it stopped when run again with the same `--out`.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

from replicate.cli_errors import ArgumentParser, positive_int, run_cli
from replicate.runs.files import atomic_path, read_json, write_json
from replicate.runs.log import last_epoch
from replicate.train import main as train_main
from replicate.training.checkpoint import latest_checkpoint
from replicate.training.config import build_parser as train_parser
from replicate.training.config import given_options, parse_args

LEARNING_RATES = (0.001, 0.003, 0.01, 0.03)  # Table 4 (ImageNet: 0.003 to 0.06)
DEV_FRACTIONS = {  # Appendix B.1.1
    "oxford_pets": 0.1,
    "flowers102": 0.1,
    "cifar10": 0.02,
    "cifar100": 0.02,
    "imagenet": 0.01,
}
DEFAULT_DEV_FRACTION = 0.1  # the small datasets' share, for datasets the paper does not name
SWEEP = "sweep.json"
CONTROLLED = ("lr", "val_fraction", "out", "resume", "final_eval_only", "seed")  # set by the sweep
GRID = {"weight_decay": "wd", "crop_scale": "crop"}  # optional axes beside lr: option -> folder tag


@dataclass
class Candidate:
    lr: float
    run: str  # folder, relative to the sweep's
    dev_acc: float  # top-1 on the dev split after the last epoch
    dev_loss: float
    weight_decay: float | None = None  # None: not swept, the recipe's (or the train options')
    crop_scale: float | None = None

    @property
    def point(self) -> tuple[float, float | None, float | None]:
        return (self.lr, self.weight_decay, self.crop_scale)

    @property
    def options(self) -> list[str]:
        """The replicate.train options that set this point of the grid."""
        return _options(*self.point)

    @property
    def label(self) -> str:
        """ "lr 0.001, weight decay 0.3, crop floor 0.25": the swept values only."""
        names = ("lr", "weight decay", "crop floor")
        return ", ".join(
            f"{n} {v:g}" for n, v in zip(names, self.point, strict=True) if v is not None
        )


def _options(lr: float, weight_decay: float | None, crop_scale: float | None) -> list[str]:
    values = {"lr": lr, "weight_decay": weight_decay, "crop_scale": crop_scale}
    return [a for k, v in values.items() if v is not None for a in (_flag(k), str(v))]


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _folder(lr: float, weight_decay: float | None, crop_scale: float | None) -> str:
    tags = zip(GRID.values(), (weight_decay, crop_scale), strict=True)
    return f"lr-{lr:g}" + "".join(f"-{tag}-{v:g}" for tag, v in tags if v is not None)


@dataclass
class SweepResult:
    train_args: list[str]
    val_fraction: float
    candidates: list[Candidate] = field(default_factory=list)
    seeds: int = 1  # final runs of the chosen rate, seeds 0 to seeds - 1
    final_steps: int | None = None  # the final runs' length, where it is not the candidates'
    best_lr: float | None = None
    best_weight_decay: float | None = None  # where weight decay was swept
    best_crop_scale: float | None = None  # where the crop floor was swept
    final_runs: list[str] = field(default_factory=list)
    test_accs: list[float] = field(default_factory=list)  # each final run's one test evaluation
    test_losses: list[float] = field(default_factory=list)
    train_images: int | None = None  # of the final runs: the whole training split

    @property
    def test_acc(self) -> float | None:
        """The final runs' mean test top-1 (once every seed has run)."""
        done = len(self.test_accs) == self.seeds
        return sum(self.test_accs) / self.seeds if done else None


def run_sweep(
    train_args: Sequence[str],
    lrs: Sequence[float],
    val_fraction: float,
    out: Path,
    seeds: int = 1,
    weight_decays: Sequence[float] = (),
    crop_scales: Sequence[float] = (),
    final_steps: int | None = None,
) -> SweepResult:
    """Every candidate of the grid on the dev split, then the best retrained with each seed
    (for `final_steps`, if given) and tested; resumable."""
    result = _read(out) or SweepResult(
        list(train_args), val_fraction, seeds=seeds, final_steps=final_steps
    )
    recorded = (result.train_args, result.val_fraction, result.seeds, result.final_steps)
    if recorded != (list(train_args), val_fraction, seeds, final_steps):
        raise ValueError(
            f"{out / SWEEP} records another sweep ({result.train_args}, --val-fraction "
            f"{result.val_fraction}, --seeds {result.seeds}, --final-steps "
            f"{result.final_steps}); choose another --out"
        )
    done = {c.point for c in result.candidates}
    for point in grid_points(lrs, weight_decays, crop_scales):
        if point in done:
            continue
        folder = _folder(*point)
        options = [*_options(*point), "--val-fraction", str(val_fraction)]
        last = _train(out / folder, [*train_args, *options])
        result.candidates.append(Candidate(point[0], folder, last["dev_acc"], last["dev_loss"],
                                           *point[1:]))  # fmt: skip
        _write(out, result)
    best = max(result.candidates, key=lambda c: c.dev_acc)  # max keeps the first of a tie
    result.best_lr, result.best_weight_decay, result.best_crop_scale = best.point
    length = ["--steps", str(final_steps)] if final_steps else []
    for seed in range(len(result.test_accs), seeds):
        run = f"final-{best.run}" + (f"-seed-{seed}" if seeds > 1 else "")
        options = [*best.options, *length, "--final-eval-only", "--seed", str(seed)]
        final = _train(out / run, [*train_args, *options])
        result.final_runs.append(run)
        result.test_accs.append(final["test_acc"])
        result.test_losses.append(final["test_loss"])
        result.train_images = final["train_images"]
        _write(out, result)
    _write(out, result)
    return result


def grid_points(
    lrs: Sequence[float], weight_decays: Sequence[float], crop_scales: Sequence[float]
) -> list[tuple[float, float | None, float | None]]:
    """Each rate with each swept weight decay and crop floor (None where one is not swept)."""
    return list(itertools.product(lrs, weight_decays or [None], crop_scales or [None]))


def _train(folder: Path, options: list[str]) -> dict:
    """Train (or finish an interrupted run) and return the last line of its metrics."""
    resume = latest_checkpoint(folder) is not None
    train_main(["--resume", "--out", str(folder)] if resume else [*options, "--out", str(folder)])
    return last_epoch(folder)


def _read(out: Path) -> SweepResult | None:
    path = out / SWEEP
    if not path.is_file():
        return None
    data = read_json(path)
    try:
        data.pop("test_acc", None)  # derived: the mean of test_accs
        candidates = [Candidate(**c) for c in data.pop("candidates")]
        return SweepResult(**data, candidates=candidates)
    except (AttributeError, KeyError, TypeError) as error:  # edited, or another version's
        raise ValueError(
            f"cannot read {path}: {error!r} is not a sweep's; delete it to redo the sweep"
        ) from error


def _write(out: Path, result: SweepResult) -> None:
    write_json(out / SWEEP, asdict(result) | {"test_acc": result.test_acc})
    with atomic_path(out / "sweep.md") as path:
        path.write_text(sweep_markdown(result))


def sweep_markdown(result: SweepResult) -> str:
    best = (result.best_lr, result.best_weight_decay, result.best_crop_scale)
    chosen = next((c for c in result.candidates if c.point == best), None)
    lines = [
        "# Sweep on the dev split (Appendix B.1.1)",
        "",
        f"`replicate.train {' '.join(result.train_args)}`, dev split: "
        f"{100 * result.val_fraction:g}% of the training set, class-balanced.",
        "",
        "| candidate | dev top-1 (%) | dev loss | run |",
        "| --- | ---: | ---: | --- |",
    ]
    for c in result.candidates:
        mark = " **(chosen)**" if c is chosen else ""
        lines.append(f"| {c.label}{mark} | {100 * c.dev_acc:.2f} | {c.dev_loss:.4f} | `{c.run}` |")
    if result.test_acc is not None and chosen is not None:
        each = ", ".join(f"{seed}: {100 * acc:.2f}%" for seed, acc in enumerate(result.test_accs))
        runs = (
            f" (`{result.final_runs[0]}`)." if result.seeds == 1 else f", the mean of seeds {each}."
        )
        length = f" for {result.final_steps} steps" if result.final_steps else ""
        lines += [
            "",
            f"Final: {chosen.label} retrained on the whole training set "
            f"({result.train_images} images){length}, evaluated once on the test split: "
            f"**{100 * result.test_acc:.2f}%** top-1{runs}",
        ]
    return "\n".join(lines) + "\n"


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="python -m replicate.sweep",
        description="Appendix B.1.1: learning rate from a dev split, then the whole training set "
        "and one test evaluation. Options after -- go to replicate.train.",
        epilog=__doc__.split("\n\n", 2)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--lrs",
        type=float,
        nargs="+",
        default=list(LEARNING_RATES),
        metavar="LR",
        help="candidate learning rates (default: Table 4's 0.001 0.003 0.01 0.03)",
    )
    parser.add_argument(
        "--weight-decays",
        type=float,
        nargs="+",
        default=[],
        metavar="WD",
        help="also sweep these weight decays, each with every learning rate (default: the "
        "recipe's alone)",
    )
    parser.add_argument(
        "--crop-scales",
        type=float,
        nargs="+",
        default=[],
        metavar="MIN",
        help="also sweep these floors of the inception crop (replicate.train --crop-scale), "
        "each with every other point of the grid (default: the run's alone)",
    )
    parser.add_argument(
        "--final-steps",
        type=positive_int,
        metavar="N",
        help="train the final runs for N optimiser steps (default: as long as the candidates)",
    )
    parser.add_argument(
        "--val-fraction",
        type=float,
        metavar="F",
        help="dev split (default: 0.1 Pets/Flowers, 0.02 CIFAR, 0.01 ImageNet, else 0.1)",
    )
    parser.add_argument(
        "--seeds",
        type=int,
        default=1,
        metavar="N",
        help="final runs of the chosen rate with seeds 0 to N-1, their test accuracies "
        "averaged (default 1)",
    )
    parser.add_argument("--out", type=Path, help="sweep folder (default runs/sweep-DATASET-TIME)")
    return parser


def main(argv: Sequence[str] | None = None) -> SweepResult:
    argv = list(argv) if argv is not None else sys.argv[1:]
    split = argv.index("--") if "--" in argv else len(argv)
    args = build_parser().parse_args(argv[:split])
    train_args = argv[split + 1 :]
    given = given_options(train_parser().parse_args(train_args))  # not an experiment file's
    swept = [k for k, values in (("weight_decay", args.weight_decays),
                                 ("crop_scale", args.crop_scales)) if values]  # fmt: skip
    controlled = [_flag(k) for k in (*CONTROLLED, *swept) if k in given]
    if controlled:
        raise ValueError(f"the sweep sets {', '.join(controlled)} itself; drop them after --")
    dataset = parse_args(train_args).dataset
    val_fraction = args.val_fraction or DEV_FRACTIONS.get(dataset, DEFAULT_DEV_FRACTION)
    name = dataset.replace("imagefolder:", "").strip("/").replace("/", "-")
    out = args.out or Path(f"runs/sweep-{name}-{datetime.now():%Y%m%d-%H%M%S}")
    if args.seeds < 1:
        raise ValueError(f"--seeds {args.seeds}: give 1 or more final runs")
    result = run_sweep(train_args, args.lrs, val_fraction, out, args.seeds,
                       args.weight_decays, args.crop_scales, args.final_steps)  # fmt: skip
    print((out / "sweep.md").read_text())
    return result


if __name__ == "__main__":
    raise SystemExit(run_cli("replicate.sweep", main))
