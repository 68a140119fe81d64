"""A study as data: the runs it needs (each a project tool's settings, named as its options are,
as configs/ write them), the scale it runs at, the paper's claim it checks, and how its table
and figure are drawn. `replicate.study.runner` executes it.

Like big_vision's configs (one config per experiment, a `runlocal` switch that shrinks it), each
study is one module in `replicate/study/definitions/`: `runs(scale)` lists its runs, and its
own sizes (by scale name), table, figure and rule sit beside them; `Scale` holds what the
studies share.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
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
class Scale:
    """How big a study runs. `cpu` is what is committed (sized for the project's 2-core CPU),
    `gpu` the same larger for one H100; `smoke` runs the same plumbing end to end on a CPU in
    seconds, with tiny models and a few steps. What the studies share; each study's own sizes
    sit in its module, by scale name."""

    name: str
    upstream: str  # the dataset models are trained on: CIFAR-10
    upstream_name: str  # how tables and figures name it: "CIFAR-10", "digits"
    vit: Settings  # the replicate.train settings that build the study's ViT
    bit: Settings  # ... and its ResNet (BiT)
    vit_name: str  # how tables and figures name them
    bit_name: str
    # Each model's from-scratch recipe (`replicate.training.recipes`) and the grid of rates its
    # from-scratch runs search, as many points as `learning_rates` around the recipe's own.
    recipes: Mapping[str, str]
    scratch_lrs: Mapping[str, tuple[float, ...]]
    image_size: int  # upstream resolution
    batch_size: int
    dev_fraction: float  # held out of the upstream training set for early stopping
    eval_every: int  # steps between dev evaluations of an upstream run
    checkpoint_every: int  # steps between checkpoints, so a stop loses little
    learning_rates: tuple[float, ...]  # Table 4's fine-tuning grid, searched on the dev split
    shots: tuple[int, ...]  # images per class for few-shot linear evaluation
    few_label_steps: int  # every run on few labels (transfer, self-supervision)
    workers: int = 0  # DataLoader processes (images are kept on the device when they fit)
    best_vit: str | None = None  # the best-trained ViT; None: data-size's all-data ViT
    finetune_seeds: int = 3  # the final runs of every sweep

    @property
    def models(self) -> dict[str, Settings]:
        """The settings that build each model, by the name its runs carry: "vit", "bit"."""
        return {"vit": self.vit, "bit": self.bit}

    @property
    def names(self) -> dict[str, str]:
        """How tables and figures name each model, by the same keys."""
        return {"vit": self.vit_name, "bit": self.bit_name}


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
