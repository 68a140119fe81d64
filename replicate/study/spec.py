"""A study as data: the runs it needs (each a project tool's settings, named as its options are,
as configs/ write them), the scale it runs at, the paper's claim it checks, and how its table
and figure are drawn. `replicate.study.runner` executes it.

Like big_vision's configs (one config per experiment, a `runlocal` switch that shrinks it), each
study is one module in `replicate/study/definitions/`: `runs(scale)` lists its runs, and its
table, figure and rule sit beside them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from replicate.figures.studies import Drawing

Tool = Literal["train", "sweep", "fewshot", "figures"]
Settings = Mapping[str, Any]  # a tool's options by name: {"image_size": 32, "model_arg": [...]}
REPEATED = ("model_arg",)  # options given once per value (argparse's "append")


def command_line(settings: Settings) -> tuple[str, ...]:
    """Settings as the tool's command line: image_size=32 -> --image-size 32; True -> the flag;
    a list -> the option and its values, or the option once per value for those in REPEATED."""
    argv: list[str] = []
    for name, value in settings.items():
        option = "--" + name.replace("_", "-")
        if value is True:
            argv.append(option)
        elif isinstance(value, list | tuple):
            values = [str(v) for v in value]
            argv += (
                [a for v in values for a in (option, v)] if name in REPEATED else [option, *values]
            )
        else:
            argv += [option, str(value)]
    return tuple(argv)


@dataclass(frozen=True)
class Search:
    """The recipe study's search: every learning rate with every weight decay and crop floor,
    each candidate trained `steps` on the dev split; the chosen one then trains `final_steps`
    on the whole training set (the sanity run) and is tested once."""

    lrs: tuple[float, ...]
    weight_decays: tuple[float, ...]
    crop_scales: tuple[float, ...]
    steps: int
    final_steps: Mapping[str, int]  # by model, "vit" and "bit": as long as the budget allows


@dataclass(frozen=True)
class Scale:
    """How big a study runs. `cpu` is what is committed (sized for the project's 2-core CPU),
    `gpu` the same larger for one H100; `smoke` runs the same plumbing end to end on a CPU in
    seconds, with tiny models and a few steps."""

    name: str
    upstream: str  # the dataset models are trained on: CIFAR-10
    upstream_name: str  # how tables and figures name it: "CIFAR-10", "digits"
    downstream: str  # the transfer target: the ants vs bees photos
    vit: Settings  # the replicate.train settings that build the study's ViT
    bit: Settings  # ... and its ResNet (BiT)
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
    search: Search  # the recipe study's grid, the same for both models
    # Each model's settings from scratch by model ("vit", "bit"), as the recipe study chose them
    # on the dev split; none: the recipe's own (Table 3).
    scratch: Mapping[str, Settings] = field(default_factory=dict)
    # The transfer study: the upstream data set's classes split in two, pre-training on the
    # first and training on the second from few labels.
    transfer_split: tuple[tuple[str, ...], tuple[str, ...]] = ((), ())
    few_label_steps: int = 0  # every run on few labels (transfer, self-supervision)
    pretext_lrs: tuple[float, ...] = ()  # masked patch prediction's rates, chosen on the dev split
    pretext_steps: int = 0  # the chosen rate's pre-training
    # The data-size study: every subset's run at most this long, stopped by patience.
    data_size_steps: int = 0
    patience: int = 0  # evaluations of the dev split without a better top-1
    # Each model's from-scratch recipe (`replicate.training.recipes`) and the grid of rates its
    # from-scratch runs search, as many points as `learning_rates` around the recipe's own.
    recipes: Mapping[str, str] = field(default_factory=dict)
    scratch_lrs: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    workers: int = 0  # DataLoader processes (images are kept on the device when they fit)
    best_vit: str | None = None  # the attention study's model; None: data-size's all-data ViT
    finetune_seeds: int = 3  # final fine-tuning runs of a sweep: ~150 test photos are noisy

    @property
    def models(self) -> dict[str, Settings]:
        """The settings that build each model, by the name its runs carry: "vit", "bit"."""
        return {"vit": self.vit, "bit": self.bit}


@dataclass(frozen=True)
class RunSpec:
    """One run of a study: `tool`'s settings, with `--out` added by the runner; a sweep's
    `train` settings are those of the training runs it sweeps (after its `--`).

    A setting `{weights:STUDY/RUN}` stands for the trained weights of another run (of this
    study or another); the runner runs that one first when it has not finished.
    """

    name: str
    tool: Tool
    settings: Settings
    label: str = ""  # how the figure and table name it; defaults to `name`
    train: Settings | None = None

    @property
    def args(self) -> tuple[str, ...]:
        """The tool's command line."""
        args = command_line(self.settings)
        return args if self.train is None else (*args, "--", *command_line(self.train))

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
    drawing: Drawing  # its table, figure and notes from its study.json
