"""`python -m replicate.bench`: time this project's ViT against timm's and torchvision's.

    python -m replicate.bench --variant vit_b16                    # eager, bf16 on a GPU
    python -m replicate.bench --variant vit_b16 --compile          # torch.compile, default mode
    python -m replicate.bench --variant vit_b16 --precision fp8 --compile --models ours,timm
    python -m replicate.bench --variant vit_h14 --image-size 518 --grad-checkpointing \\
        --batch-size 8
    python -m replicate.bench --train-run runs/vit_b16-cifar10-...  # the loop against the bench
    python -m replicate.bench --variant vit_ti16 --image-size 32 --batch-size 4 \\
        --steps 2 --warmup 1 --out /tmp/bench                     # a CPU smoke run

Writes `<out>/<variant>-<size>-<device>-<precision>-<mode>.json` and `.md` (default out:
results/bench).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from replicate.bench.contenders import CONTENDERS, BenchConfig
from replicate.bench.measure import run_bench
from replicate.bench.report import BenchReport, to_markdown, train_loop, write_report
from replicate.bench.suites import SUITES, run_suite
from replicate.cli_errors import ArgumentParser, positive_int, run_cli
from replicate.runs.log import CONFIG, CONFUSION_MATRIX
from replicate.training.config import TrainConfig, parse_model_arg
from vit.registry import list_models


def build_parser() -> argparse.ArgumentParser:
    defaults = BenchConfig()
    parser = ArgumentParser(
        prog="python -m replicate.bench",
        description="Training and inference throughput, MFU and peak memory of this project's "
        "ViT beside timm's and torchvision's, in one process on one "
        "synthetic batch.",
    )
    add = parser.add_argument
    add("--variant", default=defaults.variant, choices=list_models("vit"))
    add(
        "--models",
        default=",".join(defaults.models),
        type=_contenders,
        help=f"comma-separated subset of {','.join(CONTENDERS)} (default: all)",
    )
    add("--batch-size", type=positive_int, default=defaults.batch_size)
    add("--image-size", type=positive_int, default=defaults.image_size)
    add("--num-classes", type=positive_int, default=defaults.num_classes)
    add(
        "--precision",
        choices=["bf16", "fp32", "fp8"],
        help="default: bf16 on CUDA, fp32 on CPU; fp8: torchao's float8 training (a GPU of "
        "compute capability 8.9+, best with --compile)",
    )
    add(
        "--compile",
        nargs="?",
        const="default",
        metavar="MODE",
        help="torch.compile the PyTorch models; MODE: default, reduce-overhead, max-autotune, "
        "max-autotune-no-cudagraphs (CUDA graphs come with reduce-overhead and max-autotune)",
    )
    add("--warmup", type=positive_int, default=defaults.warmup, help="untimed steps")
    add("--steps", type=positive_int, default=defaults.steps, help="steps per block")
    add("--repeats", type=positive_int, default=defaults.repeats, help="timed blocks")
    add(
        "--grad-checkpointing",
        action="store_true",
        help="recompute each encoder block's activations in the backward pass (ours, timm)",
    )
    add(
        "--model-arg",
        action="append",
        metavar="KEY=VALUE",
        help="override a field of our model, e.g. patch_size=4 (the other contenders skip)",
    )
    add(
        "--train-run",
        type=Path,
        metavar="DIR",
        help="a finished replicate.train run: bench our model with its variant, batch, "
        "resolution, model arguments, precision and compile mode, and report its training "
        "loop's img/s against the bench's (the options above are ignored but --out, --warmup, "
        "--steps and --repeats)",
    )
    add(
        "--suite",
        choices=list(SUITES),
        help="time a fixed set of configurations in fp32 and bf16, eager and compiled "
        "(replicate.bench.suites; cpu: the studies' models and ViT inference at 224)",
    )
    add("--device", help="default: cuda when available, else cpu")
    add("--out", type=Path, default=Path("results/bench"))
    return parser


def parse_args(argv: Sequence[str] | None = None) -> tuple[BenchConfig, argparse.Namespace]:
    args = build_parser().parse_args(argv)
    config = BenchConfig(
        variant=args.variant,
        models=args.models,
        batch_size=args.batch_size,
        image_size=args.image_size,
        num_classes=args.num_classes,
        precision=args.precision,
        compile_mode=args.compile,
        warmup=args.warmup,
        steps=args.steps,
        repeats=args.repeats,
        grad_checkpointing=args.grad_checkpointing,
        device=args.device,
        model_overrides=dict(parse_model_arg(a) for a in args.model_arg or ()),
    )
    return config, args


def config_of_run(run: Path, config: BenchConfig) -> BenchConfig:
    """`config` with the model and the settings of the training run in `run`, for ours alone."""
    path = run / CONFIG
    if not path.is_file():
        raise FileNotFoundError(f"--train-run {run}: no {CONFIG}; is it a replicate.train run?")
    trained = TrainConfig.from_dict(json.loads(path.read_text()))
    confusion = json.loads((run / CONFUSION_MATRIX).read_text())
    return BenchConfig(
        variant=trained.variant,
        models=("ours",),
        batch_size=trained.batch_size,
        image_size=trained.image_size,
        num_classes=len(confusion["classes"]),
        precision=trained.precision,
        compile_mode="default" if trained.compile else None,
        warmup=config.warmup,
        steps=config.steps,
        repeats=config.repeats,
        grad_checkpointing=trained.grad_checkpointing,
        model_overrides={"dropout": trained.recipe.dropout, **trained.model_overrides},
    )


def _contenders(value: str) -> tuple[str, ...]:
    models = tuple(value.split(","))
    unknown = [m for m in models if m not in CONTENDERS]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown model(s) {unknown}; choose from {','.join(CONTENDERS)}"
        )
    return models


def main(argv: Sequence[str] | None = None) -> BenchReport | dict:
    config, args = parse_args(argv)
    if args.suite:
        reports, table = run_suite(args.suite, args.out)
        print(table.read_text())
        print(f"wrote {table} and {len(reports)} reports")
        return {"table": str(table)}
    if args.train_run:
        config = config_of_run(args.train_run, config)
    report = run_bench(config)
    if args.train_run:
        ours = report.results[0]
        if ours.skipped:
            raise ValueError(f"--train-run: our model was not timed ({ours.skipped})")
        loop = train_loop(args.train_run, ours.train.images_per_s)
        report = replace(report, train_loop=loop)
    json_path, md_path = write_report(report, args.out)
    print(to_markdown(report))
    print(f"wrote {json_path} and {md_path}")
    return report


if __name__ == "__main__":
    raise SystemExit(run_cli("replicate.bench", main))
