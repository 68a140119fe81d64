"""Study 1, `data-size`: Figures 3 and 4 of the paper in miniature.

The scale's ViT (4x4 patches) and BiT ResNet (small-input stem) trained from scratch at 32x32 on
class-balanced subsets of CIFAR-10's training set, each with its own from-scratch recipe (the
dev-split ablation's, `Scale.recipes`) and the same settings on every subset, as Section 4.3
does ("the same hyper-parameters for all settings"): at most `STEPS` steps, stopped once the
dev split has not improved for `PATIENCE` evaluations, the best dev checkpoint tested once ("we
use early-stopping, and report the best validation accuracy").
Beside each, Figure 4's measure: the frozen model's few-shot linear accuracy on CIFAR-10.

The rule, fixed before the runs: the ResNet's lead over the ViT on the smallest subset minus its
lead on all the data, paired on the test images, at least `MINIMUM` (the ViT closes the gap);
"not testable here" unless both all-data runs converged (stopped by patience, or their best dev
accuracy rose by less than `CONVERGED` in the last fifth of their evaluations): otherwise the
large-data end would measure the budget, not the data.

The hybrid (R50+ViT) is left out: its ResNet reduces 32x32 to a 2x2 feature map (stride 16), a
sequence of four tokens, which says nothing about the hybrids of Section 4.2.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from replicate.figures.studies import (
    MODEL_NAMES,
    Drawing,
    Summary,
    Table,
    model_label,
    paired_rule_line,
    percent_cell,
    plot_with_intervals,
    runs_by_name,
    trained_on,
    with_interval,
)
from replicate.runs.files import read_json
from replicate.runs.log import PUBLISHED_WEIGHTS, read_metrics
from replicate.runs.paired import Difference, correct, paired_difference, verdict
from replicate.study.definitions.common import percent, upstream
from replicate.study.spec import RunSpec, Scale, Study, weights_of

NAME = "data-size"
MINIMUM = 0.02  # points of the ResNet's lead the ViT recovers
CONVERGED = 0.01  # best dev accuracy's rise over the last fifth of a run's evaluations
# By scale: Figures 3 and 4's subsets of JFT (9M, 30M, 90M and 300M images) as fractions of
# CIFAR-10; every subset's most steps (cpu: about 40 epochs of all the data, as the flagship
# trains; gpu: about 200, omihub777's length); dev evaluations without a better top-1 that stop
# a run (cpu: 3,000 steps, 8 epochs of all the data, 270 of the smallest subset).
FRACTIONS = {"cpu": (0.03, 0.1, 0.3, 1.0), "gpu": (0.03, 0.1, 0.3, 1.0), "smoke": (0.1, 1.0)}
STEPS = {"cpu": 15_000, "gpu": 40_000, "smoke": 3}
PATIENCE = {"cpu": 20, "gpu": 20, "smoke": 1}


def run_name(model: str, fraction: float) -> str:
    return f"{model}-{percent(fraction)}"


def run_order(fractions: tuple[float, ...]) -> list[float]:
    """The largest subset first (the other studies start from its models), then the smallest
    (where the claim is decided), then the rest in order: the runs that matter most finish first
    when a long study is cut off."""
    largest, *rest = sorted(fractions, reverse=True)
    return [largest, *sorted(rest)]


def runs(scale: Scale) -> list[RunSpec]:
    specs = []
    for fraction in run_order(FRACTIONS[scale.name]):
        for model, settings in scale.models.items():
            name = run_name(model, fraction)
            label = f"{scale.names[model]}, {percent(fraction)}% of the training set"
            specs += [
                RunSpec(
                    name,
                    "train",
                    {
                        **settings,
                        "recipe": scale.recipes[model],
                        **upstream(scale),
                        "train_fraction": fraction,
                        "steps": STEPS[scale.name],
                        "patience": PATIENCE[scale.name],
                    },
                    label=label,
                ),
                RunSpec(
                    f"{name}-fewshot",
                    "fewshot",
                    {
                        "checkpoint": weights_of(NAME, name),
                        "dataset": scale.upstream,
                        "shots": scale.shots,
                    },  # fmt: skip
                    label=f"{label}, frozen: few-shot linear",
                ),
            ]
    return specs


# The study's table, figure and rule, drawn from its study.json


def _trained(summary: Summary) -> dict[str, dict[int, Summary]]:
    """model -> training images -> its training run (few-shot runs apart)."""
    runs: dict[str, dict[int, Summary]] = {}
    for run in summary["runs"]:
        if run["tool"] == "train":
            runs.setdefault(run["run"].split("-", 1)[0], {})[run["result"]["train_images"]] = run
    return {model: dict(sorted(by_size.items())) for model, by_size in runs.items()}


def converged(run_folder: Path) -> bool:
    """Stopped by patience, or its best dev accuracy rose by less than `CONVERGED` over the
    last fifth of its evaluations."""
    records = [r for r in read_metrics(run_folder / "metrics.jsonl") if "dev_acc" in r]
    if not records:
        return False
    dev, last = [r["dev_acc"] for r in records], max(1, len(records) // 5)
    stopped = records[-1]["step"] < read_json(run_folder / "config.json")["steps"]
    return stopped or max(dev) - max(dev[:-last] or [0.0]) < CONVERGED


def data_size_verdict(summary: Summary, folder: Path) -> tuple[str, Difference, str] | None:
    """Section 4.3's claim: the ResNet's lead over the ViT on the smallest subset minus its lead
    on the largest, per image: (bit small + vit large) - (vit small + bit large)."""
    runs = _trained(summary)
    if set(runs) != set(MODEL_NAMES):
        return None
    shared = sorted(set(runs["vit"]) & set(runs["bit"]))
    if len(shared) < 2:
        return None
    small, large = shared[0], shared[-1]

    def scores(model: str, size: int) -> np.ndarray:
        return correct(folder / runs[model][size]["run"], "test")

    arm = scores("bit", small) + scores("vit", large)
    control = scores("vit", small) + scores("bit", large)
    difference = paired_difference([arm], [control])
    testable = all(converged(folder / runs[m][large]["run"]) for m in MODEL_NAMES)
    rule = (f"the ResNet's lead over the ViT on {small:,} training images minus its lead on "
            f"{large:,}, at least {100 * MINIMUM:.0f} points (the ViT closes the gap; testable "
            "when both all-data runs converged)")  # fmt: skip
    return rule, difference, verdict(difference, MINIMUM, testable)


def _fewshot(summary: Summary, model: str, size: int) -> dict[str, float]:
    """The frozen model's few-shot accuracies by shots ("10": ...), of the run on `size`."""
    run = _trained(summary).get(model, {}).get(size)
    fewshot = runs_by_name(summary).get(f"{run['run']}-fewshot") if run else None
    return fewshot["result"]["shots"] if fewshot else {}


def data_size_table(summary: Summary, folder: Path | None = None) -> Table:
    runs = _trained(summary)
    sizes = sorted({n for by_size in runs.values() for n in by_size})
    shots = max((int(k) for m in runs for n in sizes for k in _fewshot(summary, m, n)), default=0)
    rows = []
    for n in sizes:
        row = [f"{n:,}"]
        for model in runs:
            run = runs[model].get(n)
            row.append(with_interval(run["result"]["test_acc"], run["result"]["test_images"])
                       if run else "-")  # fmt: skip
        row += [percent_cell(_fewshot(summary, m, n).get(str(shots))) for m in runs] * bool(shots)
        rows.append(row)
    columns = ["training images", *(f"{model_label(summary, m)} (95% interval)" for m in runs)]
    linear = [f"{model_label(summary, m)}, frozen: {shots}-shot linear" for m in runs]
    columns += linear * bool(shots)
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
    decided = data_size_verdict(summary, folder)
    verdict_line = (
        paired_rule_line(*decided)
        if decided
        else "Verdict: not decided (both models need at least two subsets).\n"
    )
    return model_costs(summary, folder) + "\n" + verdict_line


def data_size_figure(summary: Summary, ax, folder: Path | None = None) -> None:
    """Test top-1 against training images (Figure 3), and dashed the frozen model's few-shot
    linear accuracy with the most shots (Figure 4)."""
    from matplotlib.ticker import NullLocator

    runs = _trained(summary)
    for i, (model, by_size) in enumerate(runs.items()):
        sizes = list(by_size)
        accuracy = [run["result"]["test_acc"] for run in by_size.values()]
        tested = [run["result"]["test_images"] for run in by_size.values()]
        plot_with_intervals(ax, sizes, accuracy, tested, label=model_label(summary, model),
                            color=f"C{i}")  # fmt: skip
        fewshot = [_fewshot(summary, model, n) for n in sizes]
        shots = max((int(k) for f in fewshot for k in f), default=0)
        if shots:
            linear = [100 * f.get(str(shots), np.nan) for f in fewshot]
            label = f"{model_label(summary, model)}, frozen: {shots}-shot linear"
            ax.plot(sizes, linear, "--", color=f"C{i}", label=label)
    sizes = sorted({n for by_size in runs.values() for n in by_size})
    ax.set_xscale("log")
    ax.xaxis.set_minor_locator(NullLocator())  # a tick and a label at each subset's size
    ax.set_xticks(sizes, [f"{n:,}" for n in sizes])
    ax.set_xlabel(f"training images (class-balanced subsets of {trained_on(summary)})")
    ax.set_ylabel(f"{trained_on(summary)} test top-1 (%)")
    ax.legend(fontsize="small")


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
