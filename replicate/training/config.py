"""The command line of `replicate.train`: options, defaults, and the resolved `TrainConfig`.

    python -m replicate.train --variant vit_b16                      # digits, from scratch, offline
    python -m replicate.train --variant vit_b16 --dataset oxford_pets \\
        --pretrained timm:vit_base_patch16_224.orig_in21k_ft_in1k     # Table 4 fine-tuning at 384
    python -m replicate.train --variant tinyvgg --dataset imagefolder:data/hymenoptera
    python -m replicate.train --config configs/cifar10_vit_ti4.py    # an experiment as a file
    python -m replicate.train --resume --out runs/vit_b16-digits-20250101-120000
    torchrun --nproc_per_node=8 -m replicate.train --variant vit_b16 --dataset cifar100 \\
        --pretrained ... --batch-size 512 --micro-batch 32   # 512 = 8 processes x 32 x 2 steps

Each option's default is in the parser; `--config FILE` replaces them with the file's settings,
so options given still win. An option left at None is the recipe's (`replicate.training.
recipes`, Appendix B) or follows from the others: the recipe is --recipe, else the model's
(`recipes.DEFAULTS`: a ViT's scratch / finetune, a BiT ResNet's scratch-resnet / finetune); its
rate is scaled to the batch; the image size is BiT-HyperRule's crop, else 384 for a pretrained
ViT (Table 4), else the dataset's (32 for digits), else the model's (224 for a ViT). The run
prints the resolved settings and writes them to `--out/config.json`, which `--resume` reads back.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import torch

from replicate import models
from replicate.cli_errors import (
    ArgumentParser,
    finite_non_negative_float,
    learning_rate,
    non_negative_float,
    non_negative_int,
    positive_int,
    probability,
)
from replicate.data.datasets import (
    DATASETS,
    DEFAULT_DATA_DIR,
    IMAGEFOLDER,
    WDS,
    DatasetSpec,
    get_dataset_spec,
    image_folder,
    load_splits,
)
from replicate.data.loader import Placement, default_workers
from replicate.runs.log import CONFIG
from replicate.runtime import Precision, default_precision
from replicate.training.accumulation import FINETUNE_MICRO_BATCH
from replicate.training.checkpoint import run_checkpoint_info
from replicate.training.ema import check_decay
from replicate.training.recipes import (
    DEFAULTS,
    RECIPES,
    SCHEDULES,
    HyperRule,
    Recipe,
    bit_hyperrule,
    default_recipe,
)
from replicate.training.resolution import check_resolution, nearest_multiple, patch_size


@dataclass(frozen=True)
class TrainConfig:
    """Everything a run depends on, resolved; written to config.json."""

    variant: str
    dataset: str
    data_dir: str
    pretrained: str | None  # weights spec: timm:NAME, torchvision:WEIGHTS or a file
    recipe: Recipe  # the preset, with the options applied
    model_overrides: dict[str, Any]  # create_model(variant, **model_overrides)
    image_size: int
    batch_size: int  # over all processes
    epochs: int | None  # exactly one of epochs and steps is set
    steps: int | None
    precision: Precision
    compile: bool
    seed: int
    out: str
    data_placement: Placement
    workers: int  # DataLoader processes that decode images
    log_every: int  # steps between progress updates (each costs a device sync)
    # Appendix B.1.1's protocol (replicate.data.subsets, replicate.training.accumulation,
    # replicate.training.ema); the defaults keep the config.json of older runs readable.
    micro_batch: int | None = None  # images per forward/backward pass; None: the whole batch
    val_fraction: float = 0.0  # held out of the training split as the dev split
    train_fraction: float = 1.0  # class-balanced share of the (remaining) training split
    ema: float | None = None  # Polyak averaging decay (Section 4.1: 0.9999)
    final_eval_only: bool = False  # evaluate after the last epoch only
    verify_images: bool = False  # check every image file before training
    checkpoint_every: int | None = None  # steps between checkpoints within an epoch
    checkpoint_minutes: float = 1.0  # an epoch's end saves when the last save is this old
    eval_every: int | None = None  # evaluate at the first epoch end this many steps on
    early_stopping: bool = False  # keep the best dev weights, test them once (Section 4.3)
    patience: int | None = None  # stop after this many evaluations without a better dev top-1
    grad_checkpointing: bool = False  # recompute activations in the backward (ViTs)
    mean: tuple[float, ...] | None = None  # input normalisation; None: the weights'
    std: tuple[float, ...] | None = None

    @classmethod
    def from_dict(cls, config: dict[str, Any]) -> TrainConfig:
        """From a run's config.json; its "used" record (what the trainer chose) is not input."""
        recipe = {k: tuple(v) if isinstance(v, list) else v for k, v in config["recipe"].items()}
        known = {f.name for f in fields(cls)}  # not "used", nor older runs' "sources"
        config = {k: v for k, v in config.items() if k in known}
        return cls(**{**config, "recipe": Recipe(**recipe)})


USED = "used"  # config.json: the values the trainer chose (`Trainer.used_settings`)

# Options that change where or how fast a run goes but not what it computes: --resume accepts
# them; every other option must come from the run's config.json, so a resumed run is the same run.
RESUMABLE_OPTIONS = (
    "data_dir",
    "workers",
    "data_placement",
    "log_every",
    "verify_images",
    "micro_batch",
    "checkpoint_every",
    "checkpoint_minutes",
    "grad_checkpointing",
)

# Of those, the ones that change the arithmetic: accumulation's sums, and the crops' pixels
# (resident crops are resampled from a stored copy, streamed ones from the original).
INEXACT_ON_RESUME = ("micro_batch", "data_placement")


def build_parser() -> argparse.ArgumentParser:
    """The options, one line of help each; docs/training.md has the detail."""
    p = ArgumentParser(
        prog="python -m replicate.train",
        description="Train a registered model (a ViT variant or a CNN baseline) on an image "
        "classification dataset.",
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # a default of None: the recipe's, or what the other settings imply (resolve_config)
    p.add_argument("--config", type=Path, metavar="FILE",
                   help="an experiment file whose get_config() gives these options' defaults "
                   "(configs/)")  # fmt: skip

    add = p.add_argument_group("model", "the network and where its weights come from").add_argument
    add(
        "--variant",
        "--model",
        metavar="NAME",
        help="registry name: " + ", ".join(models.list_models()) + " (default vit_b16)",
    )
    add(
        "--pretrained",
        metavar="SPEC",
        help="start from weights: timm:MODEL.TAG, torchvision:WEIGHTS, google:NAME, or a file",
    )
    add(
        "--model-arg",
        action="append",
        metavar="KEY=VALUE",
        help="override a model argument (depth=2, patch_size=4, stem=small); repeatable",
    )
    add(
        "--image-size",
        type=positive_int,
        metavar="S",
        help="training resolution (default: 384 for a pretrained ViT, else the dataset's)",
    )

    add = p.add_argument_group("data", "the dataset and the splits of it a run uses").add_argument
    add(
        "--dataset",
        default="digits",
        metavar="NAME",
        help=f"{', '.join(DATASETS)}, imagefolder:PATH or wds:PATH (default digits, offline)",
    )
    add(
        "--data-dir",
        default=DEFAULT_DATA_DIR,
        metavar="DIR",
        help="where datasets are downloaded to and read from (%(default)s)",
    )
    add(
        "--val-fraction",
        type=float,
        default=0.0,
        metavar="F",
        help="hold out this class-balanced fraction as the dev split and evaluate on it",
    )
    add(
        "--train-fraction",
        type=float,
        default=1.0,
        metavar="F",
        help="train on this class-balanced, nested fraction of the training split",
    )
    add("--mean", type=float, nargs=3, metavar="M", help="normalise inputs by this mean per "
        "channel (default: the weights', else 0.5: pixels to [-1, 1])")  # fmt: skip
    add("--std", type=float, nargs=3, metavar="S", help="and this std (default: as --mean)")
    add(
        "--crop",
        choices=["inception", "pad"],
        help="the training crop: the reference's inception crop, or CIFAR's padded crop",
    )
    add(
        "--crop-scale",
        type=float,
        metavar="MIN",
        help="the inception crop's smallest area, as a fraction of the image",
    )

    add = p.add_argument_group("optimisation", "the recipe and what overrides it").add_argument
    add(
        "--recipe",
        choices=list(RECIPES),
        help="a training preset (python -m replicate.training.recipes); default: the model's, "
        + default_recipes_help(),
    )
    add(
        "--batch-size",
        type=positive_int,
        metavar="N",
        help="the global batch, over all processes (default: the recipe's, else the dataset's)",
    )
    add(
        "--micro-batch",
        type=positive_int,
        metavar="N",
        help="images per forward/backward pass; the rest of the batch is accumulated",
    )
    add("--lr", type=learning_rate, help="peak learning rate (default: the recipe's, scaled "
        "to the batch)")  # fmt: skip
    add("--weight-decay", type=finite_non_negative_float, help="decoupled for AdamW")
    add("--grad-clip", type=non_negative_float, help="global gradient norm (0: none)")
    add("--dropout", type=probability, help="ViT dropout rate")
    add("--label-smoothing", type=probability, metavar="EPS", help="of the training targets")
    add(
        "--ema",
        type=float,
        metavar="DECAY",
        help="also keep and evaluate a Polyak average of the weights (Section 4.1: 0.9999)",
    )
    add(
        "--seed",
        type=int,
        default=0,
        metavar="N",
        help="initialisation, data order and augmentation (%(default)s)",
    )

    group = p.add_argument_group("schedule", "how long, and the learning rate over time")
    length = group.add_mutually_exclusive_group()
    length.add_argument(
        "--epochs",
        type=positive_int,
        metavar="N",
        help="passes over the training set (default: the dataset's)",
    )
    length.add_argument(
        "--steps",
        type=positive_int,
        metavar="N",
        help="optimiser steps instead (default with finetune: Table 4's)",
    )
    group.add_argument(
        "--warmup-steps",
        type=non_negative_int,
        metavar="N",
        help="linear warm-up, taken as given (default: the recipe's, capped)",
    )
    group.add_argument("--schedule", choices=SCHEDULES, help="decay after the warm-up")

    add = p.add_argument_group("evaluation", "when and on what the run is evaluated").add_argument
    add("--final-eval-only", action="store_true", help="evaluate once, after the last epoch")
    add(
        "--early-stopping",
        action="store_true",
        help="with --val-fraction: test the best dev weights once at the end (Section 4.3)",
    )
    add(
        "--patience",
        type=positive_int,
        metavar="N",
        help="with --early-stopping: stop after N evaluations without a better dev top-1",
    )
    add(
        "--eval-every",
        type=positive_int,
        metavar="N",
        help="evaluate at the first epoch end N steps after the last evaluation",
    )

    add = p.add_argument_group("checkpoints", "the run folder, its logs, checkpoints").add_argument
    add("--out", metavar="DIR", help="run folder (default runs/VARIANT-DATASET-TIME)")
    add(
        "--resume",
        action="store_true",
        help="continue the run in --out from its last checkpoint, with its config.json",
    )
    add(
        "--checkpoint-every",
        type=positive_int,
        metavar="N",
        help="also checkpoint every N steps within an epoch",
    )
    add(
        "--checkpoint-minutes",
        type=non_negative_float,
        default=1.0,
        metavar="M",
        help="checkpoint at an epoch's end when the last is M minutes old (%(default)s)",
    )
    add(
        "--log-every",
        type=positive_int,
        default=10,
        metavar="N",
        help="steps between progress and TensorBoard updates (%(default)s)",
    )

    add = p.add_argument_group(
        "hardware", "how the computation runs (precision changes the numbers slightly)"
    ).add_argument
    add(
        "--precision",
        choices=["bf16", "fp16", "fp32", "fp8"],
        help="autocast dtype (default bf16 on a GPU and a CPU with bf16 units, else fp32)",
    )
    add("--compile", action="store_true", help="wrap the model in torch.compile")
    add(
        "--grad-checkpointing",
        action="store_true",
        help="recompute each block's activations in the backward pass (ViTs)",
    )
    add(
        "--data-placement",
        choices=["auto", "device", "stream"],
        default="auto",
        help="keep decoded images on the device, or decode them each epoch (%(default)s)",
    )
    add(
        "--workers",
        type=non_negative_int,
        default=default_workers(),
        metavar="N",
        help="DataLoader processes decoding images (%(default)s)",
    )
    add("--verify-images", action="store_true", help="check every image file before training")
    return p


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The options; with --config FILE, the file's settings are the defaults they override."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.config:
        settings = experiment_settings(args.config, parser)
        if args.epochs or args.steps:  # a length given replaces the file's, in epochs or steps
            settings = {k: v for k, v in settings.items() if k not in ("epochs", "steps")}
        parser.set_defaults(**settings)
        args = parser.parse_args(argv)
    return args


def experiment_settings(path: Path, parser: argparse.ArgumentParser) -> dict[str, Any]:
    """The settings of an experiment file's get_config(), each held to its option's checks; a
    setting that is no option is an error naming it."""
    import runpy

    if not path.is_file():
        raise FileNotFoundError(f"no experiment file {path}")
    get_config = runpy.run_path(str(path)).get("get_config")
    if not callable(get_config):
        raise ValueError(f"{path} defines no get_config(); it should return the settings, "
                         "e.g. def get_config(): return dict(image_size=32)")  # fmt: skip
    settings = get_config()
    actions = {a.dest: a for a in parser._actions if a.dest not in ("help", "config", "resume")}
    unknown = sorted(set(settings) - set(actions))
    if unknown:
        raise ValueError(
            f"{path} sets {', '.join(unknown)}, which python -m replicate.train has no option "
            "for; name settings as the options are, with underscores (image_size, model_arg)"
        )
    return {name: checked(actions[name], value, path) for name, value in settings.items()}


def checked(action: argparse.Action, value: Any, path: Path) -> Any:
    """An experiment file's value, held to its option's checks as if typed on the command line
    (`--steps -5` fails there, so `steps=-5` fails here)."""
    problem = None
    if isinstance(action, argparse._StoreTrueAction):
        problem = None if isinstance(value, bool) else "must be True or False"
    elif action.type is not None and value is not None and not isinstance(value, list | tuple):
        try:
            value = action.type(str(value))
        except (argparse.ArgumentTypeError, ValueError) as error:
            problem = str(error)
    if problem is None and action.choices is not None and value not in action.choices:
        problem = f"must be one of {', '.join(map(str, action.choices))}"
    if problem:
        raise ValueError(f"{path} sets {action.dest}={value!r}: {problem}")
    return value


def given_options(args: argparse.Namespace) -> list[str]:
    """The options whose value is not the parser's default: what the command line set."""
    parser = build_parser()
    return [name for name, value in vars(args).items() if value != parser.get_default(name)]


def resolve_config(args: argparse.Namespace) -> TrainConfig:
    """The run's settings: the options, the recipe applied once, the rest implied."""
    if args.resume:
        return resumed_config(args)
    # A checkpoint of this trainer knows its model: --pretrained alone fine-tunes it.
    own = run_checkpoint_info(args.pretrained) if args.pretrained else None
    variant = args.variant or (own.variant if own else "vit_b16")
    entry = models.get_model_entry(variant)  # fails early on an unknown name
    spec = get_dataset_spec(args.dataset)
    preset = RECIPES[args.recipe or default_recipe(entry.name, bool(args.pretrained))]
    rule = None
    if preset.by_dataset_size:  # BiT-HyperRule: length, resolution, MixUp from the data
        rule = bit_hyperrule(*training_set_shape(spec, args.data_dir))
    batch_size = args.batch_size or preset.batch_size or spec.batch_size
    recipe = apply_recipe(args, rule.apply(preset) if rule else preset, batch_size)
    model_overrides = dict(parse_model_arg(a) for a in args.model_arg or ())
    if own and own.variant == variant:  # its shape (depth, patch size) unless --model-arg says
        model_overrides = {**own.model_overrides, **model_overrides}
    patch = patch_size(variant, model_overrides)
    epochs, steps = args.epochs, args.steps
    if epochs is None and steps is None:
        if rule:
            steps = rule.steps
        elif args.pretrained and recipe.paper_finetune_steps:
            steps = spec.finetune_steps
        epochs = None if steps else spec.epochs
    dataset = spec.name.replace(IMAGEFOLDER, "imagefolder-").rstrip("/").replace("/", "-")
    out = args.out or f"runs/{variant}-{dataset}-{datetime.now():%Y%m%d-%H%M%S}"
    refuse_out_inside_data(Path(out), spec.name)
    return TrainConfig(
        variant=variant,
        dataset=spec.name,
        data_dir=args.data_dir,
        pretrained=args.pretrained,
        recipe=recipe,
        model_overrides=model_overrides,
        image_size=check_resolution(
            image_size(args, entry, spec, recipe, patch, rule), patch, variant
        ),
        batch_size=batch_size,
        epochs=epochs,
        steps=steps,
        precision=args.precision or default_precision()[0],
        compile=args.compile,
        seed=args.seed,
        out=out,
        data_placement=args.data_placement,
        workers=args.workers,
        log_every=args.log_every,
        verify_images=args.verify_images,
        checkpoint_every=args.checkpoint_every,
        checkpoint_minutes=args.checkpoint_minutes,
        micro_batch=args.micro_batch or default_micro_batch(recipe),
        val_fraction=args.val_fraction,
        train_fraction=args.train_fraction,
        ema=check_decay(args.ema) if args.ema is not None else None,
        final_eval_only=args.final_eval_only,
        grad_checkpointing=args.grad_checkpointing,
        eval_every=args.eval_every,
        early_stopping=early_stopping(args),
        patience=patience(args),
        **normalisation(args),
    )


def apply_recipe(args: argparse.Namespace, recipe: Recipe, batch_size: int) -> Recipe:
    """The recipe with the options given, its rate scaled to the run's global batch unless
    --lr was given (`Recipe.at_batch`)."""
    changes = {f: v for f in RECIPE_OPTIONS if (v := getattr(args, f)) is not None}
    recipe = replace(recipe, **changes, warmup_capped=args.warmup_steps is None)
    if args.crop_scale is not None:
        if not 0 < args.crop_scale <= 1:
            raise ValueError(f"--crop-scale must be in (0, 1], got {args.crop_scale}")
        recipe = replace(recipe, crop_scale=(args.crop_scale, 1.0))
    return recipe if args.lr is not None else recipe.at_batch(batch_size)


def refuse_out_inside_data(out: Path, dataset: str) -> None:
    """A run folder inside an image-folder data set would be read back as images (a confusion
    matrix in a class folder) or as a class of its own."""
    folder = image_folder(dataset)
    root = Path(dataset.removeprefix(WDS)) if dataset.startswith(WDS) else None
    root = folder[0] if folder else root
    if root and out.expanduser().resolve().is_relative_to(root.expanduser().resolve()):
        raise ValueError(
            f"--out {out} lies inside the data set {root}, whose folders are read as classes; "
            "choose an --out outside it"
        )


def early_stopping(args: argparse.Namespace) -> bool:
    if args.early_stopping and not args.val_fraction:
        raise ValueError("--early-stopping chooses on the dev split: add --val-fraction, e.g. 0.02")
    return bool(args.early_stopping)


def patience(args: argparse.Namespace) -> int | None:
    if args.patience and not args.early_stopping:
        raise ValueError("--patience counts evaluations of the dev split: add --early-stopping")
    return args.patience


def normalisation(args: argparse.Namespace) -> dict[str, tuple[float, ...] | None]:
    if (args.mean is None) != (args.std is None):
        raise ValueError("--mean and --std go together: give both, three values each")
    if args.mean is not None and (len(args.mean), len(args.std)) != (3, 3):
        raise ValueError("--mean and --std take three values each, one per channel (R G B)")
    if args.std is not None and min(args.std) <= 0:
        raise ValueError(f"--std must be positive, got {' '.join(map(str, args.std))}")
    return {k: tuple(v) if v else None for k, v in (("mean", args.mean), ("std", args.std))}


def default_micro_batch(recipe: Recipe) -> int | None:
    """Accumulate the finetune recipes' batch of 512 in micro-batches that fit the device."""
    if recipe.batch_size is None:
        return None
    return FINETUNE_MICRO_BATCH["cuda" if torch.cuda.is_available() else "cpu"]


RECIPE_OPTIONS = (
    "lr",
    "weight_decay",
    "warmup_steps",
    "schedule",
    "grad_clip",
    "dropout",
    "crop",
    "label_smoothing",
)


def option_name(setting: str) -> str:
    return "--" + setting.replace("_", "-")


def image_size(
    args: argparse.Namespace,
    entry: models.ModelEntry,
    spec: DatasetSpec,
    recipe: Recipe,
    patch: int | None,
    rule: HyperRule | None,
) -> int:
    """The training resolution, the first given of: --image-size; BiT-HyperRule's crop for the
    training images (128 or 384); the recipe's for a pretrained ViT (finetune: 384, Appendix
    B.1.1, rounded to a multiple of the patch size by `replicate.training.resolution`: 378 for
    /14); the dataset's (e.g. 32 for digits); the model's default (224 for a ViT, 64 for
    TinyVGG)."""
    if args.image_size:
        return args.image_size
    if rule:
        return rule.image_size
    if args.pretrained and entry.family == "vit" and recipe.image_size:
        return nearest_multiple(recipe.image_size, patch) if patch else recipe.image_size
    return spec.image_size or entry.default_image_size


SHOWN = ("variant", "dataset", "recipe", *RECIPE_OPTIONS, "image_size", "batch_size", "length",
         "precision")  # fmt: skip


def settings_table(config: TrainConfig, used: dict[str, Any] | None = None) -> str:
    """The resolved settings a run prints first; `used`: the values only the running trainer
    knows (a capped warm-up, the data placement "auto" chose), in place of what was asked."""
    values = {f: getattr(config.recipe, f) for f in RECIPE_OPTIONS}
    values.update(asdict(config), recipe=config.recipe.name)
    values["length"] = f"{config.epochs} epochs" if config.epochs else f"{config.steps} steps"
    values.update(used or {})
    names = [*SHOWN, *(used or {})]
    width = max(map(len, names))
    return "\n".join(["settings:", *(f"  {n:<{width}}  {values[n]}" for n in dict.fromkeys(names))])


def resumed_config(args: argparse.Namespace) -> TrainConfig:
    if not args.out:
        raise ValueError("--resume needs --out, the folder of the run to continue")
    config_path = Path(args.out) / CONFIG
    if not config_path.is_file():
        raise FileNotFoundError(f"no run to resume in {args.out}: {CONFIG} is missing")
    try:
        config = TrainConfig.from_dict(json.loads(config_path.read_text()))
    except (TypeError, KeyError, json.JSONDecodeError) as error:  # edited, or another version's
        raise ValueError(f"cannot read the run configuration {config_path}: {error}") from error
    given = given_options(args)
    refused = [k for k in given if k not in ("resume", "out", *RESUMABLE_OPTIONS)]
    if refused:
        raise ValueError(
            f"--resume continues the run as {config_path} configures it; drop "
            f"{', '.join(map(option_name, refused))} (to change them, start a new run)"
        )
    changes = {k: getattr(args, k) for k in RESUMABLE_OPTIONS if k in given}
    inexact = [k for k in INEXACT_ON_RESUME if k in changes and changes[k] != getattr(config, k)]
    if inexact:
        print(
            f"replicate.train: note: {', '.join(map(option_name, inexact))} changed on resume: "
            "the run continues, but its numbers will differ slightly from an uninterrupted run's",
            file=sys.stderr,
        )
    return replace(config, **changes, out=args.out)  # the run is where it is now


def default_recipes_help() -> str:
    """The default recipes by model: "vit_*: scratch / finetune; bit_*: ..."."""
    return "; ".join(f"{family}*: {scratch} / {pretrained}"
                     for family, (scratch, pretrained) in DEFAULTS.items())  # fmt: skip


def training_set_shape(spec: DatasetSpec, data_dir: str) -> tuple[int, int]:
    """The number of training images and the pixel area of the first: what BiT-HyperRule reads."""
    train = load_splits(spec, Path(data_dir)).train
    image = train[0][0]
    height, width = image.shape[-2:] if isinstance(image, torch.Tensor) else image.size[::-1]
    return len(train), height * width


def parse_model_arg(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise ValueError(f"--model-arg takes KEY=VALUE, e.g. depth=2; got {text!r}")
    try:
        return key, ast.literal_eval(value)  # numbers, True/False, None, quoted strings
    except (ValueError, SyntaxError):
        return key, value  # a bare word, e.g. pool=gap
