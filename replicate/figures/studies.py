"""Each study's table and figure, drawn from its `study.json` (`replicate.study.runner`), so that
`python -m replicate.figures` redraws them from the committed results without running anything.

    study_<name>.md    the study's table, the paper's claim, the device and the scale
    study_<name>.png   its figure, the claim in the caption
"""

from __future__ import annotations

import json
import math
import shutil
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from replicate.figures.make import FIGURE_7_RIGHT_NUMBERS
from replicate.figures.plots import save
from replicate.runs.files import read_json
from replicate.runs.log import CONFUSION_MATRIX, PUBLISHED_WEIGHTS, STUDY_SUMMARY
from replicate.runs.paired import Z95, Difference, paired_difference, verdict

Summary = dict[str, Any]
STUDIES_DIR = Path("results/studies")  # what `python -m replicate.study` commits


@dataclass(frozen=True)
class Table:
    columns: list[str]
    rows: list[list[str]]

    def markdown(self) -> str:
        lines = [self.columns, ["---"] * len(self.columns), *self.rows]
        return "\n".join("| " + " | ".join(line) + " |" for line in lines) + "\n"


def percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def upstream(summary: Summary) -> str:
    """The data set the study's models were trained on, as titles name it; CIFAR-10, the cpu
    and gpu scales', where the summary does not say."""
    return summary.get("upstream", "CIFAR-10")


def runs_by_name(summary: Summary) -> dict[str, Summary]:
    return {run["run"]: run for run in summary["runs"]}


def test_acc(run: Summary | None) -> float | None:
    return None if run is None else run["result"].get("test_acc")


def wilson_interval(p: float, n: int) -> tuple[float, float]:
    """The 95% Wilson score interval of an accuracy p measured on n images."""
    centre = (p + Z95**2 / (2 * n)) / (1 + Z95**2 / n)
    half = Z95 * math.sqrt(p * (1 - p) / n + Z95**2 / (4 * n**2)) / (1 + Z95**2 / n)
    return centre - half, centre + half


def with_interval(p: float | None, n: int | None) -> str:
    if p is None or not n:
        return percent(p)
    low, high = wilson_interval(p, n)
    return f"{100 * p:.1f}% [{100 * low:.1f}, {100 * high:.1f}]"


@dataclass(frozen=True)
class Verdict:
    """A claim decided by a rule written down before the numbers: the measured effect, its 95%
    half-width, and "held" / "not held" / "within noise"."""

    effect: float
    half_width: float

    @property
    def word(self) -> str:
        if abs(self.effect) <= self.half_width:
            return "within noise"
        return "held" if self.effect > 0 else "not held"


def difference_verdict(terms: list[tuple[float, float, int]]) -> Verdict:
    """The verdict on sum(sign x accuracy): each term (sign, accuracy, test images) an
    independent binomial measurement, so the variances add."""
    effect = sum(sign * p for sign, p, _ in terms)
    variance = sum(p * (1 - p) / n for _, p, n in terms)
    return Verdict(effect, Z95 * math.sqrt(variance))


def tested(result: Summary, default_images: int = 10_000) -> tuple[float, int]:
    """(test top-1, test images) of a run's result; CIFAR-10's 10,000 where it has no count."""
    return result["test_acc"], result.get("test_images") or default_images


def rule_line(claim: str, verdict: Verdict) -> str:
    """One decided claim: the rule, the measured difference with its 95% half-width, the word."""
    return (
        f"Rule: {claim}, by the difference of the binomial test accuracies with a 95% interval. "
        f"Measured: {100 * verdict.effect:+.1f} points (± {100 * verdict.half_width:.1f}); "
        f"**{verdict.word}**.\n"
    )


# data-size: Figures 3 and 4


def _data_size_points(summary: Summary) -> dict[str, list[tuple[int, float, int]]]:
    """model -> [(training images, test top-1, test images)], by increasing training images."""
    points: dict[str, list[tuple[int, float, int]]] = {}
    for run in summary["runs"]:
        model = run["run"].split("-", 1)[0]
        result = run["result"]
        test_images = result.get("test_images") or 10_000  # CIFAR-10's test split
        points.setdefault(model, []).append((result["train_images"], test_acc(run), test_images))
    return {model: sorted(p) for model, p in points.items()}


MODEL_NAMES = {"vit": "ViT", "bit": "ResNet (BiT)"}


def model_label(summary: Summary, model: str) -> str:
    """The name a study's runs give the model ("ViT-Ti/4 (5 layers), 3% of ..." -> its head)."""
    for run in summary["runs"]:
        if run["run"].startswith(f"{model}-") and run.get("label"):
            return run["label"].split(",", 1)[0]
    return MODEL_NAMES.get(model, model)


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


def plot_with_intervals(ax, x: Sequence[float], accuracy: Sequence[float],
                        tested: Sequence[int], **style) -> None:  # fmt: skip
    """Accuracies in percent with their 95% Wilson intervals as error bars."""
    low, high = zip(*map(wilson_interval, accuracy, tested), strict=True)
    errors = [
        [100 * (a - lo) for a, lo in zip(accuracy, low, strict=True)],
        [100 * (hi - a) for a, hi in zip(accuracy, high, strict=True)],
    ]
    ax.errorbar(x, [100 * a for a in accuracy], yerr=errors, marker="o", capsize=3, **style)


def data_size_figure(summary: Summary, ax, folder: Path | None = None) -> None:
    for model, points in _data_size_points(summary).items():
        images, accuracy, tested = zip(*points, strict=True)
        plot_with_intervals(ax, images, accuracy, tested, label=model_label(summary, model))
    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(NullFormatter())  # the minor labels overlap
    ax.set_xlabel(f"training images (class-balanced subsets of {upstream(summary)})")
    ax.set_ylabel(f"{upstream(summary)} test top-1 (%)")
    ax.legend()


# transfer: Tables 2 and 5


def transfer_table(summary: Summary, folder: Path | None = None) -> Table:
    runs = runs_by_name(summary)
    shots = sorted(
        {int(k) for r in summary["runs"] if r["tool"] == "fewshot" for k in r["result"]["shots"]}
    )
    rows = []
    for model in MODEL_NAMES:
        name = model_label(summary, model)
        finetune = runs.get(f"{model}-finetune")
        fewshot = runs.get(f"{model}-fewshot", {}).get("result", {}).get("shots", {})
        best_lr = finetune["result"].get("best_lr") if finetune else None
        tested = [
            with_interval(test_acc(runs.get(run)), _test_images(folder / run) if folder else None)
            for run in (f"{model}-finetune", f"{model}-scratch")
        ]
        rows.append(
            [
                name,
                tested[0],
                "-" if best_lr is None else f"{best_lr:g}",
                tested[1],
                *(percent(fewshot.get(str(k))) for k in shots),
            ]
        )
    columns = [
        "model",
        "fine-tuned (95% interval)",
        "lr (dev split)",
        "from scratch (95% interval)",
    ]
    return Table([*columns, *(f"{k}-shot linear" for k in shots)], rows)


def _test_images(run_folder: Path) -> int | None:
    """How many test images a run (or a sweep's final runs) was scored on: its confusion
    matrix's total."""
    matrix = next(iter(sorted(run_folder.rglob(CONFUSION_MATRIX))), None)
    return None if matrix is None else int(sum(map(sum, json.loads(matrix.read_text())["counts"])))


def transfer_notes(summary: Summary, folder: Path) -> str:
    """Section 4.2's claims on the photos: each pre-trained model fine-tuned beats the same
    model trained from scratch on them; and (Table 5, Figure 3 at ImageNet scale) the BiT
    ResNet transfers better than the ViT."""
    runs = runs_by_name(summary)

    def measured(name: str) -> tuple[float, int] | None:
        run = runs.get(name)
        images = _test_images(folder / name)
        return None if run is None or images is None else (test_acc(run), images)

    lines = []
    for model in MODEL_NAMES:
        finetuned, scratch = measured(f"{model}-finetune"), measured(f"{model}-scratch")
        if finetuned and scratch:
            lines.append(rule_line(
                f"{model_label(summary, model)} pre-trained on {upstream(summary)} and fine-tuned "
                "beats the "
                "same model trained from scratch on the photos",
                difference_verdict([(1, *finetuned), (-1, *scratch)]),
            ))  # fmt: skip
    bit, vit = measured("bit-finetune"), measured("vit-finetune")
    if bit and vit:
        lines.append(rule_line(
            "the BiT ResNet fine-tuned beats the ViT fine-tuned",
            difference_verdict([(1, *bit), (-1, *vit)]),
        ))  # fmt: skip
    return "".join(lines)


def transfer_figure(summary: Summary, ax, folder: Path | None = None) -> None:
    table = transfer_table(summary)  # percentages alone: the bars' heights
    bars = [c for c in table.columns if c not in ("model", "lr (dev split)")]
    width = 0.8 / len(bars)
    for i, column in enumerate(bars):
        index = table.columns.index(column)
        values = [_as_number(row[index]) for row in table.rows]
        positions = [m + (i - (len(bars) - 1) / 2) * width for m in range(len(table.rows))]
        ax.bar(positions, values, width, label=column.removesuffix(" (95% interval)"))
    ax.set_xticks(range(len(table.rows)), [row[0] for row in table.rows])
    ax.set_ylabel("ants vs bees test top-1 (%)")
    ax.set_ylim(0, 100)
    ax.legend(fontsize="small")


def _as_number(cell: str) -> float:
    return float("nan") if cell == "-" else float(cell.rstrip("%"))


# resolution: Section 3.2


def resolution_table(summary: Summary, folder: Path | None = None) -> Table:
    rows = [
        [f"{run['result']['image_size']}", run["label"], with_interval(*tested(run["result"]))]
        for run in summary["runs"]
    ]
    return Table(["resolution", "run", f"{upstream(summary)} test top-1 (95% interval)"], rows)


def resolution_notes(summary: Summary, folder: Path) -> str:
    """Section 3.2's claim as a number: the highest fine-tuning resolution's test top-1 minus
    the pre-training resolution's, at the same number of fine-tuning steps."""
    runs = sorted(summary["runs"], key=lambda run: run["result"]["image_size"])
    if len(runs) < 2:
        return ""
    low, high = runs[0]["result"], runs[-1]["result"]
    verdict = difference_verdict([(1, *tested(high)), (-1, *tested(low))])
    return rule_line(
        f"fine-tuning at {high['image_size']}x{high['image_size']} beats fine-tuning at the "
        f"pre-training {low['image_size']}x{low['image_size']} for the same steps",
        verdict,
    )


def resolution_figure(summary: Summary, ax, folder: Path | None = None) -> None:
    sizes = [run["result"]["image_size"] for run in summary["runs"]]
    accuracy, test_images = zip(*(tested(run["result"]) for run in summary["runs"]), strict=True)
    plot_with_intervals(ax, sizes, accuracy, test_images)
    ax.set_xticks(sizes, [f"{s}x{s}" for s in sizes])
    ax.set_xlabel("fine-tuning resolution (patch size kept, E_pos interpolated)")
    ax.set_ylabel(f"{upstream(summary)} test top-1 (%)")


# self-supervision: Section 4.6

SELF_SUPERVISION_STARTS = {
    "scratch": "from scratch",
    "masked": "masked patch pre-training",
    "supervised": "supervised pre-training",
}


def _self_supervision_cells(summary: Summary, folder: Path) -> dict[str, dict]:
    """label fraction ("3", "10") -> start -> the run's result; the scratch baselines are the
    data-size study's runs on the same labels, beside this study's folder."""
    cells: dict[str, dict] = {}
    for name, run in runs_by_name(summary).items():
        parts = name.split("-")  # vit-masked-10
        if len(parts) == 3 and parts[0] == "vit" and parts[1] in SELF_SUPERVISION_STARTS:
            cells.setdefault(parts[2], {})[parts[1]] = run["result"]
    for fraction, row in cells.items():
        scratch = folder.parent / "data-size" / f"vit-{fraction}" / "summary.json"
        if scratch.is_file():
            row["scratch"] = read_json(scratch)["result"]
    return dict(sorted(cells.items(), key=lambda item: float(item[0])))


def self_supervision_table(summary: Summary, folder: Path) -> Table:
    rows = [
        [
            f"{fraction}%",
            *(with_interval(*tested(row[s])) if s in row else "-" for s in SELF_SUPERVISION_STARTS),
        ]  # fmt: skip
        for fraction, row in _self_supervision_cells(summary, folder).items()
    ]
    return Table(["labels used", *(f"{s} (95% interval)" for s in
                                   SELF_SUPERVISION_STARTS.values())], rows)  # fmt: skip


def self_supervision_figure(summary: Summary, ax, folder: Path) -> None:
    cells = _self_supervision_cells(summary, folder)
    width = 0.8 / len(SELF_SUPERVISION_STARTS)
    for i, (start, label) in enumerate(SELF_SUPERVISION_STARTS.items()):
        positions = [m + (i - 1) * width for m in range(len(cells))]
        values = [100 * row[start]["test_acc"] if start in row else float("nan")
                  for row in cells.values()]  # fmt: skip
        ax.bar(positions, values, width, label=label)
    ax.set_xticks(range(len(cells)), [f"{fraction}% of the labels" for fraction in cells])
    ax.set_ylabel(f"{upstream(summary)} test top-1 (%)")
    ax.legend(fontsize="small", loc="lower right")


def self_supervision_notes(summary: Summary, folder: Path) -> str:
    """Section 4.6's two claims on the smallest label fraction that has all three arms: masked
    patch pre-training beats training from scratch, and stays behind supervised pre-training."""
    complete = [(f, row) for f, row in _self_supervision_cells(summary, folder).items()
                if len(row) == len(SELF_SUPERVISION_STARTS)]  # fmt: skip
    if not complete:
        return ""
    fraction, row = complete[0]
    masked, scratch, supervised = (tested(row[s]) for s in ("masked", "scratch", "supervised"))
    return rule_line(
        f"on {fraction}% of the labels, masked patch pre-training beats training from scratch "
        "for the same total steps",
        difference_verdict([(1, *masked), (-1, *scratch)]),
    ) + rule_line(
        f"on {fraction}% of the labels, supervised pre-training beats masked patch pre-training",
        difference_verdict([(1, *supervised), (-1, *masked)]),
    )


# attention: Figures 6, 7 and 11, drawn by the run itself

ATTENTION_FIGURES = (
    "fig1_patch_embedding.png",
    "fig6_attention_rollout.png",
    "fig7_left_embedding_filters.png",
    "fig7_centre_position_similarity.png",
    "fig7_right_attention_distance.png",
)


# The rules, fixed before the runs. Distances are in pixels; an effect must reach a tenth of
# the uniform distance to count. Position structure: random embeddings score about 0
# (tests/test_study.py), a sine-cosine grid more than 0.3.
MINIMUM_SHARE_OF_UNIFORM = 0.1
POSITION_STRUCTURE_HELD = 0.1


def depth_growth(attention: Summary) -> Difference:
    """How much more the model's mean distance (over heads) grows from the first layer to the
    last than the untrained control's does, paired by image."""

    def growth(side: Summary) -> np.ndarray:
        by_image = np.array(side["per_image_px"]).mean(axis=-1)  # (images, L)
        return by_image[:, -1] - by_image[:, 0]

    return paired_difference([growth(attention["model"])], [growth(attention["control"])])


def nearest_head_gap(attention: Summary) -> Difference:
    """How much nearer the model's most local first-layer head attends than the control's,
    paired by image (each side's head with the least mean distance over the images)."""

    def nearest(side: Summary) -> np.ndarray:
        first = np.array(side["per_image_px"])[:, 0, :]  # (images, heads)
        return first[:, first.mean(axis=0).argmin()]

    return paired_difference([nearest(attention["control"])], [nearest(attention["model"])])


def _layer_range(values: list[float]) -> str:
    return f"{statistics.fmean(values):.1f} ({min(values):.1f}-{max(values):.1f})"


ATTENTION_COLUMNS = [
    "model",
    "position structure: neighbours, rows, columns (cosine)",
    "attention distance, first layer (px; heads' mean, min-max)",
    "last layer",
    "entropy, first and last layer (nats; uniform: log N)",
]


def attention_table(summary: Summary, folder: Path | None = None) -> Table:
    rows = []
    for run in summary["runs"]:
        position, attention = run["result"]["position"], run["result"]["attention"]
        for side in ("model", "control"):
            p, a = position[side], attention[side]
            distance, entropy = a["by_layer_px"], a["by_layer_entropy"]
            rows.append([
                p["label"],
                f"{p['neighbours_minus_distant']:.2f}, {p['rows']:.2f}, {p['columns']:.2f}",
                _layer_range(distance[0]),
                _layer_range(distance[-1]),
                f"{statistics.fmean(entropy[0]):.2f}, {statistics.fmean(entropy[-1]):.2f}",
            ])  # fmt: skip
        rows.append([f"uniform attention ({attention['images']})", "-",
                     f"{attention['uniform_px']:.1f}", f"{attention['uniform_px']:.1f}",
                     f"{attention['uniform_entropy']:.2f}"])  # fmt: skip
    return Table(ATTENTION_COLUMNS, rows)


def attention_verdicts(
    result: Summary, attention: Summary
) -> list[tuple[str, Difference | None, str]]:
    """(rule, measured difference or None, verdict) for each claim of Section 4.5, from the
    run's summary and its Figure 7 right numbers (`attention`, each image's)."""
    position = result["position"]
    minimum = MINIMUM_SHARE_OF_UNIFORM * attention["uniform_px"]
    model, control = position["model"], position["control"]
    grid_known = all(control[axis] < POSITION_STRUCTURE_HELD for axis in ("rows", "columns"))
    encoded = all(model[axis] > POSITION_STRUCTURE_HELD for axis in ("rows", "columns"))
    growth, nearest = depth_growth(attention), nearest_head_gap(attention)
    return [
        (f"attention distance grows with depth more than the untrained control's, by at least "
         f"{minimum:.1f} px (a tenth of uniform), paired by image", growth,
         verdict(growth, minimum)),
        (f"some heads attend locally in the lowest layer: the model's nearest first-layer head "
         f"at least {minimum:.1f} px nearer than the control's, paired by image", nearest,
         verdict(nearest, minimum)),
        (f"E_pos encodes rows and columns: each axis's structure above "
         f"{POSITION_STRUCTURE_HELD} (one model, no interval), the control's below it", None,
         "not testable here" if not grid_known else "held" if encoded else "not held"),
    ]  # fmt: skip


def attention_notes(summary: Summary, folder: Path) -> str:
    notes = ""
    for run in summary["runs"]:
        attention = read_json(folder / run["run"] / FIGURE_7_RIGHT_NUMBERS)
        for rule, difference, word in attention_verdicts(run["result"], attention):
            measured = (
                f" Measured: {difference.effect:+.1f} px (± {difference.half_width:.1f})."
                if difference
                else ""
            )
            notes += f"Rule: {rule}.{measured} **{word}**.\n\n"
    return notes


# recipe: the search on the dev split and the sanity runs


def recipe_candidates(summary: Summary) -> dict[str, list[Summary]]:
    """model -> its sweep's candidates (lr, weight_decay, crop_scale, dev_acc, run)."""
    runs = runs_by_name(summary)
    return {
        model: runs[f"{model}-search"]["result"]["candidates"]
        for model in MODEL_NAMES
        if f"{model}-search" in runs
    }


def recipe_choice(summary: Summary) -> tuple[float, dict[str, Summary]] | None:
    """The crop floor whose best candidates score highest over both models together, and each
    model's best candidate at that floor: the recipe the studies take."""
    candidates = recipe_candidates(summary)
    if len(candidates) < len(MODEL_NAMES):
        return None
    floors = sorted({c["crop_scale"] for found in candidates.values() for c in found})

    def best(model: str, floor: float) -> Summary:
        return max((c for c in candidates[model] if c["crop_scale"] == floor),
                   key=lambda c: c["dev_acc"])  # fmt: skip

    floor = max(floors, key=lambda f: sum(best(m, f)["dev_acc"] for m in candidates))
    return floor, {model: best(model, floor) for model in candidates}


def recipe_table(summary: Summary, folder: Path) -> Table:
    choice = recipe_choice(summary)
    chosen = {m: c["run"] for m, c in choice[1].items()} if choice else {}
    rows = []
    for model, candidates in recipe_candidates(summary).items():
        for c in candidates:
            images = _test_images(folder / f"{model}-search" / c["run"])
            dev = with_interval(c["dev_acc"], images)
            mark = " **(chosen)**" if chosen.get(model) == c["run"] else ""
            rows.append([model_label(summary, model) + mark, f"{c['lr']:g}",
                         f"{c['weight_decay']:g}", f"{c['crop_scale']:g}", dev])  # fmt: skip
    return Table(["model", "lr", "weight decay", "crop floor", "dev top-1 [95%]"], rows)


# What a sound run reaches on all of CIFAR-10 from scratch within the cpu budget (test top-1).
SANITY_TARGETS = {"vit": 0.65, "bit": 0.85}


def recipe_notes(summary: Summary, folder: Path) -> str:
    """The recipe the studies take, and the sanity rule: each model's own best candidate
    trained on the whole training set reaches its target (95% interval above it)."""
    lines = []
    choice = recipe_choice(summary)
    if choice:
        floor, best = choice
        each = "; ".join(
            f"{model_label(summary, m)}: lr {c['lr']:g}, weight decay {c['weight_decay']:g}"
            for m, c in best.items()
        )
        lines.append(f"Chosen for the studies: the inception crop with a {floor:g} area floor "
                     f"for both models (the higher sum of each model's best dev accuracy); "
                     f"{each}.\n\n")  # fmt: skip
    runs = runs_by_name(summary)
    for model, target in SANITY_TARGETS.items():
        result = runs.get(f"{model}-search", {}).get("result", {})
        if result.get("test_acc") is None:  # the search's final run has not finished
            continue
        images = _test_images(folder / f"{model}-search" / result["final_runs"][0])
        if images is None:
            continue
        measured = difference_verdict([(1, result["test_acc"], images)])
        verdict = Verdict(measured.effect - target, measured.half_width)
        lines.append(
            f"Sanity: {model_label(summary, model)} with its best candidate "
            f"(lr {result['best_lr']:g}, weight decay {result['best_weight_decay']:g}, crop "
            f"floor {result['best_crop_scale']:g}) on all {result['train_images']:,} training "
            f"images for {result['final_steps']:,} steps: test top-1 "
            f"{with_interval(result['test_acc'], images)} against the target "
            f"{100 * target:.0f}%: {100 * verdict.effect:+.1f} points "
            f"(± {100 * verdict.half_width:.1f}); **{verdict.word}**.\n\n"
        )
    return "".join(lines)


def recipe_figure(summary: Summary, ax, folder: Path) -> None:
    """Each model's dev accuracy by candidate, with 95% intervals."""
    for offset, (model, candidates) in zip(
        (-0.15, 0.15), recipe_candidates(summary).items(), strict=False
    ):
        accuracy = [c["dev_acc"] for c in candidates]
        images = [_test_images(folder / f"{model}-search" / c["run"]) or 1 for c in candidates]
        x = [i + offset for i in range(len(candidates))]
        plot_with_intervals(ax, x, accuracy, images, linestyle="none",
                            label=model_label(summary, model))  # fmt: skip
        ax.set_xticks(range(len(candidates)), [
            f"lr {c['lr']:g}\nwd {c['weight_decay']:g}\ncrop {c['crop_scale']:g}"
            for c in candidates], fontsize=7)  # fmt: skip
    ax.set_ylabel(f"{upstream(summary)} dev top-1 (%)")
    ax.legend()


@dataclass(frozen=True)
class Drawing:
    table: Callable[[Summary, Path], Table]
    figure: Callable[[Summary, Any, Path], None] | None  # None: the run draws its own figures
    notes: Callable[[Summary, Path], str] | None = None  # below the table: costs, verdict


DRAWINGS = {
    "recipe": Drawing(recipe_table, recipe_figure, recipe_notes),
    "data-size": Drawing(data_size_table, data_size_figure, data_size_notes),
    "transfer": Drawing(transfer_table, transfer_figure, transfer_notes),
    "resolution": Drawing(resolution_table, resolution_figure, resolution_notes),
    "attention": Drawing(attention_table, None, attention_notes),
    "self-supervision": Drawing(
        self_supervision_table, self_supervision_figure, self_supervision_notes
    ),
}


def machines(summary: Summary) -> str:
    """Where the runs ran, with each machine's cores and precision, and which runs when they
    ran on more than one: "AMD EPYC (2 cores, fp32)"."""
    groups: dict[str, list[str]] = {}
    for run in summary["runs"]:
        precision = run["result"].get("precision")
        where = f"{run['device']} ({run.get('cores', '?')} cores" + (
            f", {precision})" if precision else ")"
        )
        groups.setdefault(where, []).append(run["run"])
    if len(groups) == 1:
        return next(iter(groups))
    return "; ".join(f"{where}: {', '.join(runs)}" for where, runs in groups.items())


def draw_study(summary: Summary, folder: Path, out: Path) -> list[Path]:
    """Write the study's table (Markdown) and figure (PNG) to `out`; returns the files."""
    try:
        return _draw_study(summary, folder, out)
    except (KeyError, TypeError, AttributeError) as error:  # a field gone, or of another type
        raise ValueError(
            f"cannot draw {folder / STUDY_SUMMARY}: {error!r} is missing or malformed (edited, "
            "or written by another version); python -m replicate.study NAME --summarise "
            "writes it again from the runs"
        ) from error


def _draw_study(summary: Summary, folder: Path, out: Path) -> list[Path]:
    name = summary["study"]
    drawing = DRAWINGS[name]
    commits = sorted({run["commit"] for run in summary["runs"] if run.get("commit")})
    planned = summary.get("planned_runs", [])
    done = {run["run"] for run in summary["runs"]}
    missing = [name for name in planned if name not in done]
    header = (
        f"# {summary['title']}\n\n{summary['claim']}\n\n"
        f"Scale `{summary['scale']}`, on {machines(summary)}; "
        f"{summary['device_time_s'] / 60:.1f} minutes of wall time"
        + (f" ({summary['cpu_time_s'] / 60:.0f} CPU-minutes)" if summary.get("cpu_time_s") else "")
        + (f"; runs from commit {', '.join(c[:12] for c in commits)}" if commits else "")
        + ".\n\n"
        + (f"**Incomplete**: not yet run: {', '.join(missing)}.\n\n" if missing else "")
    )
    markdown = out / f"study_{name}.md"
    out.mkdir(parents=True, exist_ok=True)
    notes = drawing.notes(summary, folder) if drawing.notes else ""
    table = drawing.table(summary, folder).markdown()
    markdown.write_text(header + table + ("\n" + notes if notes else ""))
    written = [markdown]
    if drawing.figure is not None:
        fig = Figure(figsize=(7, 4.5), layout="constrained")
        ax = fig.add_subplot()
        drawing.figure(summary, ax, folder)
        ax.grid(alpha=0.3)
        devices = ", ".join(sorted({run["device"] for run in summary["runs"]}))
        ax.set_title(f"{summary['title']}\n({summary['scale']} scale, {devices})")
        written.append(save(fig, out / f"study_{name}.png"))
    if name == "attention":
        written += _copy_attention_figures(folder, out)
    return written


def _copy_attention_figures(folder: Path, out: Path) -> list[Path]:
    written = []
    for run in folder.iterdir():
        for name in ATTENTION_FIGURES:
            if (run / name).is_file():
                written.append(Path(shutil.copy2(run / name, out / name)))
    return written


def redraw_studies(studies_dir: Path, out: Path) -> list[Path]:
    """Every committed study's table and figure, from its study.json."""
    written = []
    for summary_path in sorted(studies_dir.glob(f"*/{STUDY_SUMMARY}")):
        written += draw_study(read_json(summary_path), summary_path.parent, out)
    return written
