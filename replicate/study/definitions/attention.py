"""Study 5, `attention`: Figures 6, 7 and 11 drawn from the best-trained ViT the project has
(`Scale.best_vit`: at the cpu scale the flagship's, configs/cifar10_vit_ti4_flagship.py, else
the data-size study's ViT
trained on all of CIFAR-10), each measure beside the same architecture untrained (seed 0), the
control: random weights already attend at a distance and have position embeddings.

The figures command records, for the model and the control, each head's attention distance and
entropy on every image (Figure 7 right) and the position embeddings' structure (Figure 7
centre): neighbours against distant patches, and rows and columns each on their own. The rules
that decide the claims are below (`attention_verdicts`), fixed before the runs.
"""

from __future__ import annotations

import statistics
from pathlib import Path

import numpy as np

from replicate.figures.studies import Drawing, Summary, Table
from replicate.runs.files import read_json
from replicate.runs.paired import Difference, paired_difference, verdict
from replicate.study.definitions import data_size
from replicate.study.spec import RunSpec, Scale, Study, weights_of

NAME = "attention"
IMAGES = 1_000  # test images the distances and entropies are measured on (Figure 11: 128)


def runs(scale: Scale) -> list[RunSpec]:
    checkpoint = scale.best_vit or weights_of(data_size.NAME, data_size.run_name("vit", 1.0))
    trained = scale.best_vit or f"trained on all of {scale.upstream_name}"
    return [
        RunSpec(
            "vit",
            "figures",
            {"checkpoint": checkpoint, "only": ("fig1", "fig6", "fig7"), "num_images": IMAGES},
            label=f"{scale.vit_name}, {trained}",
        )
    ]


# The study's table, figure and rule, drawn from its study.json


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
    from replicate.figures.make import FIGURE_7_RIGHT_NUMBERS  # torch: when drawn

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


STUDY = Study(
    name=NAME,
    title="What the ViT learned: Figures 6, 7 and 11",
    claim=(
        'Section 4.5: the embedding filters resemble plausible basis functions; "the model '
        'learns to encode distance within the image in the similarity of position embeddings", '
        "with row-column structure; some heads attend globally already in the lowest layers, "
        "and attention distance grows with depth."
    ),
    runs=runs,
    drawing=Drawing(attention_table, None, attention_notes, ATTENTION_FIGURES),
)
