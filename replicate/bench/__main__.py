"""`python -m replicate.bench`: time this project's ViT against timm's and torchvision's.

    python -m replicate.bench --variant vit_b16                    # eager, bf16 on a GPU
    python -m replicate.bench --variant vit_b16 --compile          # torch.compile, default mode
    python -m replicate.bench --variant vit_b16 --compile max-autotune --explain
    python -m replicate.bench --variant vit_l16 --find-max-batch --batch-size 64
    python -m replicate.bench --variant vit_ti16 --image-size 32 --batch-size 4 \\
        --steps 2 --warmup 1 --out /tmp/bench                     # a CPU smoke run
    python -m replicate.bench --loader --dataset imagefolder:PATH  # the data loader instead

Writes `<out>/<variant>-<device>-<precision>-<mode>.json` and `.md` (default out: results/bench).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from replicate import loader_bench
from replicate.bench.contenders import CONTENDERS
from replicate.bench.report import to_markdown, write_report
from replicate.bench.runner import BenchConfig, BenchReport, run_bench
from replicate.cli_errors import ArgumentParser
from vit.registry import list_models


def parse_args(argv: list[str] | None = None) -> tuple[BenchConfig, Path]:
    defaults = BenchConfig()
    parser = ArgumentParser(
        prog="python -m replicate.bench",
        description="Training and inference throughput, MFU and peak memory of this project's "
        "ViT beside timm's and torchvision's, in one process on one synthetic batch.",
    )
    parser.add_argument("--variant", default=defaults.variant, choices=list_models("vit"))
    parser.add_argument(
        "--models",
        default=",".join(defaults.models),
        type=_contenders,
        help=f"comma-separated subset of {','.join(CONTENDERS)}",
    )
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--image-size", type=int, default=defaults.image_size)
    parser.add_argument("--num-classes", type=int, default=defaults.num_classes)
    parser.add_argument(
        "--precision", choices=["bf16", "fp32"], help="default: bf16 on CUDA, fp32 on CPU"
    )
    parser.add_argument(
        "--compile",
        nargs="?",
        const="default",
        metavar="MODE",
        help="torch.compile the models; MODE: default, reduce-overhead, max-autotune, "
        "max-autotune-no-cudagraphs (CUDA graphs come with reduce-overhead and max-autotune)",
    )
    parser.add_argument("--warmup", type=int, default=defaults.warmup, help="untimed steps")
    parser.add_argument("--steps", type=int, default=defaults.steps, help="steps per block")
    parser.add_argument("--repeats", type=int, default=defaults.repeats, help="timed blocks")
    parser.add_argument(
        "--find-max-batch",
        action="store_true",
        help="time each model at its largest training batch, found by doubling from "
        "--batch-size until out of memory, then bisecting (GPU only)",
    )
    parser.add_argument(
        "--explain", action="store_true", help="count graph breaks in our model (dynamo)"
    )
    parser.add_argument("--device", help="default: cuda when available, else cpu")
    parser.add_argument("--out", type=Path, default=Path("results/bench"))
    args = parser.parse_args(argv)
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
        find_max_batch=args.find_max_batch,
        explain=args.explain,
        device=args.device,
    )
    return config, args.out


def _contenders(value: str) -> tuple[str, ...]:
    models = tuple(value.split(","))
    unknown = [m for m in models if m not in CONTENDERS]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown model(s) {unknown}; choose from {','.join(CONTENDERS)}"
        )
    return models


def main(argv: list[str] | None = None) -> BenchReport | dict:
    argv = sys.argv[1:] if argv is None else argv
    if "--loader" in argv:  # replicate.loader_bench, with its own options
        return loader_bench.main([a for a in argv if a != "--loader"])
    config, out = parse_args(argv)
    report = run_bench(config)
    json_path, md_path = write_report(report, out)
    print(to_markdown(report))
    print(f"wrote {json_path} and {md_path}")
    return report


if __name__ == "__main__":
    main()
