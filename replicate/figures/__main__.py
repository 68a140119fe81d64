"""python -m replicate.figures: write the paper's tables and figures for this project's runs
and models. See `python -m replicate.figures --help`."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from pathlib import Path

from replicate.cli_errors import ArgumentParser, run_cli
from replicate.fewshot import read_results as read_fewshot_results
from replicate.fewshot import results_markdown as fewshot_markdown
from replicate.figures.images import ImageSet, digit_images, folder_images, run_dataset_folder
from replicate.runs.log import PUBLISHED_WEIGHTS
from replicate.runs.read import load_runs
from replicate.sources import Source, from_weights, load_source, untrained
from vit import VisionTransformer
from vit.variants import VARIANTS

log = logging.getLogger("replicate.figures")

PARTS = ("table1", "fig1", "fig6", "fig7", "curves", "results", "from-scratch")
TABLE_1 = "table1_variants.md"
RESULTS = "results.md"
UNTRAINED = "untrained"  # sub-folder for Figures 1, 6 and 7 of an untrained model
RESULTS_DIR = Path(__file__).resolve().parents[2] / "results"
# The default model of Figures 1, 6 and 7: the flagship CIFAR-10 ViT trained from scratch by
# configs/cifar10_vit_ti4_flagship.py (committed in bf16, 4.5 MB); an untrained one where a
# checkout lacks it or --variant asks for another. The from-scratch figure draws both runs.
CIFAR10_VIT = RESULTS_DIR / "cifar10-vit_ti4"
ABLATION = RESULTS_DIR / "recipe-ablation"
# configs/cifar10_vit_ti4.py, its inputs normalised by CIFAR-10's mean and std
CIFAR10_VIT_NORMALISED = ABLATION / "vit-cifar-stats-10-epochs"
CIFAR10_FLAGSHIP = RESULTS_DIR / "cifar10-vit_ti4-flagship"  # configs/cifar10_vit_ti4_flagship.py
CIFAR10_HOUR = RESULTS_DIR / "cifar10-vit_ti4-hour"  # configs/cifar10_vit_ti4_hour.py
CIFAR10_RESNET = RESULTS_DIR / "cifar10-bit_r14"  # configs/cifar10_bit_r14.py
PLAIN_LOOP = RESULTS_DIR / "plain-loop" / "vit.json"
# kentaroy47's setup in this trainer (configs/cifar10_vit_kentaroy47.py), by its inputs' scale
KENTAROY47_HERE = {
    "kentaroy47's setup here, pixels to [-1, 1]": ABLATION / "vit-kentaroy47-3-epochs",
    "the same, CIFAR-10's mean and std as the log's": ABLATION
    / "vit-kentaroy47-cifar-stats-1-epoch",
}
USER_FIGURES = Path("runs/figures")  # the figures of a model you name: beside your runs
# Your own runs (where runs/ holds any) first, else the runs committed with the project
# (metrics and configs only).
DEFAULT_RUNS = (Path("runs"), Path("results/runs"))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = ArgumentParser(
        prog="python -m replicate.figures",
        description="Regenerate the paper's Table 1, Figures 1, 6 and 7, training curves and a "
        "results table. Without --checkpoint or --pretrained, Figures 1, 6 and 7 show the "
        "CIFAR-10 ViT trained from scratch (results/cifar10-vit_ti4-flagship/); with --variant "
        "alone, an "
        "untrained (randomly initialised) model, whose titles say so, in OUT/untrained/, never "
        "over a trained model's.",
    )
    parser.add_argument(
        "--runs",
        type=Path,
        help="folder of run folders (default: runs/ if it holds a run, else results/runs/)",
    )
    model = parser.add_mutually_exclusive_group()
    model.add_argument("--checkpoint", help="a model.safetensors written by replicate.train")
    model.add_argument(
        "--pretrained",
        metavar="SPEC",
        help="weights spec: timm:NAME, torchvision:WEIGHTS, google:NAME or a file",
    )
    parser.add_argument(
        "--variant",
        choices=sorted(VARIANTS),
        help="ViT variant for --pretrained (read from timm/google names) or for the untrained "
        "model (default vit_b16)",
    )
    parser.add_argument("--image-size", type=int, help="model resolution (default: the weights')")
    parser.add_argument(
        "--num-classes", type=int, help="head size for --pretrained (default: the weights' own)"
    )
    parser.add_argument(
        "--images",
        type=Path,
        help="folder of images for Figures 1, 6 and 7 right (default: the checkpoint run's "
        "imagefolder dataset, else scikit-learn digits)",
    )
    parser.add_argument(
        "--num-images",
        type=int,
        default=32,
        help="images averaged for the attention distance (default 32; the paper used 128)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        help="output folder (default: figures/, the project's own, for its own models; "
        f"{USER_FIGURES}/ for --checkpoint or --pretrained, so yours never overwrite them)",
    )
    parser.add_argument("--only", nargs="+", choices=PARTS, help="write only these parts")
    args = parser.parse_args(argv)
    if args.out is None:
        args.out = USER_FIGURES if args.checkpoint or args.pretrained else Path("figures")
    return args


def load_subject(args: argparse.Namespace) -> Source:
    """The ViT the figures are of: --checkpoint, --pretrained, the project's CIFAR-10 ViT, or
    (--variant alone, titled as such) an untrained one."""
    weights = CIFAR10_FLAGSHIP / PUBLISHED_WEIGHTS
    if args.checkpoint:
        subject = load_source(args.checkpoint)
    elif args.pretrained:
        subject = from_weights(args.pretrained, args.variant, args.image_size,
                               num_classes=args.num_classes)  # fmt: skip
    elif args.variant is None and args.image_size is None and weights.is_file():
        log.info("no --checkpoint or --pretrained: drawing the CIFAR-10 ViT, %s", weights)
        subject = load_source(weights)
    else:
        log.info("no --checkpoint or --pretrained: drawing an untrained model")
        subject = untrained(args.variant or "vit_b16", args.image_size)
    if not isinstance(subject.model, VisionTransformer):
        raise ValueError(f"{subject.label} is a {subject.variant}, not a ViT: the figures need one")
    return subject


def load_images(args: argparse.Namespace, subject: Source) -> ImageSet:
    size = subject.model.config.image_size
    if args.images:
        return folder_images(args.images, args.num_images, size)
    if found := run_dataset_folder(subject.dataset):  # the run's test images, its classes
        folder, classes = found
        return folder_images(folder, args.num_images, size, classes)
    if subject.dataset not in (None, "digits"):  # a model's figures show its own data
        raise ValueError(
            f"Figures 1, 6 and 7 of {subject.label} show test images of {subject.dataset}, "
            "which are not on this machine: unpack them where the run had them, or pass "
            "--images DIR"
        )
    return digit_images(args.num_images, size)


def run(args: argparse.Namespace) -> list[Path]:
    """Write the requested parts; return the files written. Inputs are all read before
    anything is computed, so that a bad path fails at once."""
    # matplotlib and the models: after --help has answered
    from replicate.figures import from_scratch, make
    from replicate.figures.tables import results_markdown, table1_markdown

    parts = set(args.only or PARTS)
    if args.num_images < 1:
        raise ValueError(f"--num-images must be at least 1, not {args.num_images}")
    subject = images = None
    if parts & {"fig1", "fig6", "fig7"}:
        subject = load_subject(args)
        images = load_images(args, subject)
    runs_dir = args.runs or next((d for d in DEFAULT_RUNS if any(d.glob("*/metrics.jsonl"))), None)
    runs = None
    if parts & {"curves", "results"}:
        if runs_dir is None:
            log.info(
                "no run in runs/ or results/runs/: skipping training curves and results "
                "(pass --runs)"
            )
        else:
            runs = load_runs(runs_dir)

    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    written = []
    if "table1" in parts:
        written.append(out / TABLE_1)
        written[-1].write_text(table1_markdown())
    if runs and "curves" in parts:
        written.append(make.training_curves(runs, out, f"{runs_dir}/"))
    if runs and "results" in parts:
        written.append(out / RESULTS)
        fewshot = fewshot_markdown(read_fewshot_results(runs_dir))  # replicate.fewshot's folders
        written[-1].write_text(results_markdown(runs) + fewshot)
    if "from-scratch" in parts and CIFAR10_VIT.is_dir():
        normalised = ", CIFAR-10's mean and std"
        runs = {CIFAR10_VIT: "", CIFAR10_VIT_NORMALISED: normalised, CIFAR10_HOUR: normalised,
                CIFAR10_FLAGSHIP: normalised, CIFAR10_RESNET: ""}  # fmt: skip
        runs = {run: note for run, note in runs.items() if run.is_dir()}
        figure = out / from_scratch.FIGURE
        controls = {label: run for label, run in KENTAROY47_HERE.items() if run.is_dir()}
        written.append(from_scratch.draw(runs, PLAIN_LOOP, figure, controls))
    if subject is None:
        return written
    if not subject.trained:  # never over the figures of a trained model
        out = out / UNTRAINED
        out.mkdir(exist_ok=True)
    if "fig1" in parts:
        written += _unless_not_applicable(make.figure_1, subject, images, out)
    if "fig7" in parts:
        written += _unless_not_applicable(make.figure_7_filters, subject, out)
        written += make.figure_7_position_similarity(subject, out)
        written += make.figure_7_attention_distance(subject, images, out)
    if "fig6" in parts:
        written.append(make.figure_6_rollout(subject, images, out))
    return written


def _unless_not_applicable(figure: Callable[..., Path], *args) -> list[Path]:
    """The figure's file, or none, with the reason logged, where the model cannot have it."""
    from replicate.figures.make import FigureNotApplicable

    try:
        return [figure(*args)]
    except FigureNotApplicable as reason:
        log.warning("skipped: %s", reason)
        return []


def main(argv: list[str] | None = None) -> list[Path]:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    written = run(parse_args(argv))
    for path in written:
        print(f"wrote {path}")
    return written


if __name__ == "__main__":
    raise SystemExit(run_cli("replicate.figures", main))
