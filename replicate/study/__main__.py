"""python -m replicate.study NAME [NAME ...] [--scale cpu|gpu|smoke] [--out DIR]

Runs the named studies (or `all`), skipping runs that already finished and resuming one that
was cut off, then writes each study's study.json, its Markdown table and its figure.

    python -m replicate.study data-size                  # cpu scale: CIFAR-10, hours on 2 cores
    python -m replicate.study all --scale smoke --out /tmp/studies   # every study, CPU, seconds
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path

from replicate.cli_errors import ArgumentParser, run_cli
from replicate.study import STUDIES
from replicate.study.runner import Runner
from replicate.study.scales import SCALES
from replicate.training.checkpoint import run_folder_lock

RESULTS = Path("results/studies")
FIGURES = Path("figures")


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="python -m replicate.study",
        description="Run the paper's experiments in miniature and draw their figures.",
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "names", nargs="+", metavar="NAME", choices=[*STUDIES, "all"], help=", ".join(STUDIES)
    )
    parser.add_argument(
        "--scale",
        choices=list(SCALES),
        default="cpu",
        help="cpu: CIFAR-10 on this project's 2-core CPU, what results/studies holds (hours); "
        "gpu: the same larger, for one H100 (minutes); smoke: tiny models on digits, a few "
        "steps, seconds on a CPU (default cpu)",
    )
    parser.add_argument(
        "--out", type=Path, help=f"results folder (default {RESULTS}; smoke: runs/studies-smoke)"
    )
    parser.add_argument(
        "--summarise",
        action="store_true",
        help="run nothing: summarise and draw the runs that have finished (a study cut off)",
    )
    parser.add_argument(
        "--figures",
        type=Path,
        help=f"where tables and figures go (default {FIGURES}; smoke: --out)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> list[Path]:
    args = build_parser().parse_args(argv)
    from replicate.figures.studies import draw_study  # matplotlib: after --help has answered

    scale = SCALES[args.scale]
    smoke = scale.name == "smoke"
    out = args.out or (Path("runs/studies-smoke") if smoke else RESULTS)
    figures = args.figures or (out if smoke else FIGURES)
    names = list(STUDIES) if "all" in args.names else args.names
    runner = Runner(STUDIES, scale, out)
    written = []
    # One runner per --out: a second would remove the first's runs that have no checkpoint yet.
    with nullcontext() if args.summarise else run_folder_lock(out):
        for name in names:
            summary = runner.summarise_finished(STUDIES[name]) if args.summarise else None
            if not args.summarise:
                summary = runner.run(STUDIES[name])
            if summary is not None:
                written += draw_study(summary, out / name, figures, STUDIES[name].drawing)
    for path in written:
        print(f"wrote {path}")
    return written


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    raise SystemExit(run_cli("replicate.study", main))
