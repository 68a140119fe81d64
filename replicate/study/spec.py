"""A study as data: the runs it needs (each a command line of a project tool), the scale it runs
at, and the paper's claim it checks. `replicate.study.runner` executes it; the study's figure and
table come from `replicate.figures.studies`.

Like big_vision's configs (one config per experiment, a `runlocal` switch that shrinks it), each
study is one small module in `replicate/study/definitions/` whose `runs(scale)` lists its runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

Tool = Literal["train", "sweep", "fewshot", "figures"]


@dataclass(frozen=True)
class Scale:
    """How big a study runs. `cpu` is what is committed (sized for the project's 2-core CPU),
    `gpu` the same larger for one H100; `smoke` runs the same plumbing end to end on a CPU in
    seconds, with tiny models and a few steps."""

    name: str
    upstream: str  # the dataset models are trained on: CIFAR-10
    downstream: str  # the transfer target: the ants vs bees photos
    vit: tuple[str, ...]  # replicate.train options that build the study's ViT
    bit: tuple[str, ...]  # ... and its ResNet (BiT)
    vit_name: str  # how tables and figures name them
    bit_name: str
    image_size: int  # upstream resolution
    batch_size: int
    steps: int  # optimiser steps of every upstream run, whatever the subset's size
    finetune_steps: int  # optimiser steps of every fine-tuning run
    finetune_batch_size: int
    fractions: tuple[float, ...]  # of the upstream training set (data-size study)
    shots: tuple[int, ...]  # images per class for few-shot linear evaluation
    finetune_sizes: tuple[int, ...]  # resolutions of the resolution study, beyond image_size
    learning_rates: tuple[float, ...]  # fine-tuning grid searched on the dev split
    dev_fraction: float  # held out of the upstream training set for early stopping
    eval_every: int  # steps between dev evaluations of an upstream run
    checkpoint_every: int  # steps between checkpoints, so a stop loses little
    crop_scale: float  # the inception crop's area floor at 32x32
    workers: int = 0  # DataLoader processes (images are kept on the device when they fit)
    finetune_seeds: int = 3  # final fine-tuning runs of a sweep: ~150 test photos are noisy


@dataclass(frozen=True)
class RunSpec:
    """One run of a study: `tool`'s command line, with `--out` added by the runner.

    An argument `{weights:STUDY/RUN}` stands for the trained weights of another run (of this
    study or another); the runner runs that one first when it has not finished.
    """

    name: str
    tool: Tool
    args: tuple[str, ...]
    label: str = ""  # how the figure and table name it; defaults to `name`

    @property
    def needs(self) -> list[str]:
        """The "STUDY/RUN" names of the runs whose weights this one reads."""
        return [arg[len(WEIGHTS) : -1] for arg in self.args if arg.startswith(WEIGHTS)]


WEIGHTS = "{weights:"


def weights_of(study: str, run: str) -> str:
    """The placeholder for the weights of `study/run`."""
    return f"{WEIGHTS}{study}/{run}}}"


@dataclass(frozen=True)
class Study:
    name: str  # the command-line name, e.g. "data-size"
    title: str
    claim: str  # what the paper found, with its section, for the caption and the README
    runs: Callable[[Scale], list[RunSpec]]
