"""Study 1, `data-size`: Figures 3 and 4 of the paper in miniature.

The scale's ViT (4x4 patches) and BiT ResNet (small-input stem) trained from scratch at 32x32 on
class-balanced subsets of CIFAR-10's training set with Adam for both ("including ResNets",
Appendix D.1), each with the learning rate, weight decay and crop the recipe study chose on the
dev split (`Scale.scratch`), and the same budget of optimiser steps on every subset.
As the paper does (Section 4.3: "we use early-stopping, and report the best validation
accuracy"), each run evaluates on a dev split held out of the training set and its best dev
checkpoint is tested once; test top-1 on the full CIFAR-10 test set is plotted against the
number of training images.

The hybrid (R50+ViT) is left out: its ResNet reduces 32x32 to a 2x2 feature map (stride 16), a
sequence of four tokens, which says nothing about the hybrids of Section 4.2.
"""

from __future__ import annotations

from pathlib import Path

from replicate.figures.studies import (
    MODEL_NAMES,
    Drawing,
    Summary,
    Table,
    Verdict,
    difference_verdict,
    model_label,
    plot_with_intervals,
    test_acc,
    trained_on,
    with_interval,
)
from replicate.runs.files import read_json
from replicate.runs.log import PUBLISHED_WEIGHTS
from replicate.study.definitions.common import percent, upstream
from replicate.study.spec import RunSpec, Scale, Study

NAME = "data-size"
MODELS = ("vit", "bit")


def model_name(scale: Scale, model: str) -> str:
    return scale.vit_name if model == "vit" else scale.bit_name


def run_name(model: str, fraction: float) -> str:
    return f"{model}-{percent(fraction)}"


def run_order(fractions: tuple[float, ...]) -> list[float]:
    """The largest subset first (the other studies start from its models), then the smallest
    (where the claim is decided), then the rest in order: the runs that matter most finish first
    when a long study is cut off."""
    largest, *rest = sorted(fractions, reverse=True)
    return [largest, *sorted(rest)]


def runs(scale: Scale) -> list[RunSpec]:
    return [
        RunSpec(
            run_name(model, fraction),
            "train",
            {
                **scale.models[model],
                **scale.scratch.get(model, {}),
                **upstream(scale),
                "train_fraction": fraction,
                "steps": scale.steps,
            },
            label=f"{model_name(scale, model)}, {percent(fraction)}% of the training set",
        )
        for fraction in run_order(scale.fractions)
        for model in MODELS
    ]


# The study's table, figure and rule, drawn from its study.json


def _data_size_points(summary: Summary) -> dict[str, list[tuple[int, float, int]]]:
    """model -> [(training images, test top-1, test images)], by increasing training images."""
    points: dict[str, list[tuple[int, float, int]]] = {}
    for run in summary["runs"]:
        model = run["run"].split("-", 1)[0]
        result = run["result"]
        test_images = result.get("test_images") or 10_000  # CIFAR-10's test split
        points.setdefault(model, []).append((result["train_images"], test_acc(run), test_images))
    return {model: sorted(p) for model, p in points.items()}


def data_size_verdict(summary: Summary) -> Verdict | None:
    """Section 4.3's claim as a number: the ResNet's lead over the ViT on the smallest subset
    minus its lead on the largest. Positive: the ViT closes the gap as the data grows."""
    points = {m: {n: (p, t) for n, p, t in pts} for m, pts in _data_size_points(summary).items()}
    if set(points) != {"vit", "bit"} or len(set(points["vit"]) & set(points["bit"])) < 2:
        return None
    shared = sorted(set(points["vit"]) & set(points["bit"]))
    small, large = shared[0], shared[-1]
    terms = [
        (1, *points["bit"][small]),
        (-1, *points["vit"][small]),
        (-1, *points["bit"][large]),
        (1, *points["vit"][large]),
    ]
    return difference_verdict(terms)


def data_size_table(summary: Summary, folder: Path | None = None) -> Table:
    points = _data_size_points(summary)
    models = list(points)
    images = sorted({n for p in points.values() for n, _, _ in p})
    by_model = {m: {n: (p, t) for n, p, t in points[m]} for m in models}
    rows = [
        [f"{n:,}", *(with_interval(*by_model[m].get(n, (None, None))) for m in models)]
        for n in images
    ]
    columns = ["training images", *(f"{model_label(summary, m)} (95% interval)" for m in models)]
    return Table(columns, rows)


def model_costs(summary: Summary, folder: Path) -> str:
    """Each model's parameters and forward GFLOPs per image, from a run's config.json: Section
    4.3 compares models "with comparable computational cost"."""
    import torch

    from replicate.flops import forward_flops
    from replicate.models import create_model
    from replicate.training.checkpoint import read_weights

    lines = []
    for model in MODEL_NAMES:
        runs = sorted(folder.glob(f"{model}-*/config.json"))
        if not runs:
            continue
        config = read_json(runs[0])
        overrides = config["model_overrides"]
        weights = runs[0].parent / PUBLISHED_WEIGHTS  # with what the run added (the head's layer)
        if weights.is_file():
            overrides = read_weights(weights)[1].model_overrides
        shape = dict(overrides, image_size=config["image_size"], num_classes=10)
        with torch.device("meta"):
            params = sum(p.numel() for p in create_model(config["variant"], **shape).parameters())
        flops = forward_flops(config["variant"], **shape)
        lines.append(
            f"{model_label(summary, model)}: {params / 1e6:.2f}M parameters, "
            f"{flops / 1e9:.2f} GFLOPs per {config['image_size']}x{config['image_size']} image"
        )
    return "Models: " + "; ".join(lines) + ".\n" if lines else ""


def data_size_notes(summary: Summary, folder: Path) -> str:
    costs = model_costs(summary, folder)
    verdict = data_size_verdict(summary)
    if verdict is None:
        return costs + "\nVerdict: not decided (both models need at least two subsets).\n"
    return (
        costs
        + "\n"
        + (
            "Rule (written before the runs): the ResNet's lead over the ViT on the smallest subset "
            "minus its lead on the largest, with a 95% interval from the four binomial test "
            f"accuracies. Measured: {100 * verdict.effect:+.1f} points "
            f"(± {100 * verdict.half_width:.1f}); **{verdict.word}**.\n"
        )
    )


def data_size_figure(summary: Summary, ax, folder: Path | None = None) -> None:
    for model, points in _data_size_points(summary).items():
        images, accuracy, tested = zip(*points, strict=True)
        plot_with_intervals(ax, images, accuracy, tested, label=model_label(summary, model))
    from matplotlib.ticker import NullLocator

    sizes = sorted({n for points in _data_size_points(summary).values() for n, _, _ in points})
    ax.set_xscale("log")
    ax.xaxis.set_minor_locator(NullLocator())  # a tick and a label at each subset's size
    ax.set_xticks(sizes, [f"{n:,}" for n in sizes])
    ax.set_xlabel(f"training images (class-balanced subsets of {trained_on(summary)})")
    ax.set_ylabel(f"{trained_on(summary)} test top-1 (%)")
    ax.legend()


STUDY = Study(
    name=NAME,
    title="Pre-training data requirements, in miniature (Figures 3 and 4)",
    claim=(
        'Section 4.3: "Vision Transformers overfit more than ResNets with comparable '
        "computational cost on smaller datasets ... the convolutional inductive bias is useful "
        "for smaller datasets, but for larger ones, learning the relevant patterns directly from "
        'data is sufficient, even beneficial." Expected here: the ResNet ahead on small '
        "subsets, the gap shrinking as the data grows."
    ),
    runs=runs,
    drawing=Drawing(data_size_table, data_size_figure, data_size_notes),
)
