"""Study 4, `self-supervision`: Section 4.6 and Appendix B.1.2, masked patch prediction.

The data-size study's ViT is pre-trained on CIFAR-10's training images without their labels
(50% of the patch embeddings corrupted, the 3-bit mean colour of each predicted) for two thirds
of the scale's steps, then fine-tuned for the last third on the data-size study's two smallest
label fractions, where pre-training can matter. Its baseline is the data-size study's run from
scratch on the same labels, which had the whole budget: both arms take the same number of
optimiser steps. Beside them, the data-size study's ViT trained on all of CIFAR-10's labels and
fine-tuned on the same subset: it has seen every label, so it is an upper bound, not the paper's
setting (supervised pre-training on a larger labelled set, JFT).
"""

from __future__ import annotations

from pathlib import Path

from replicate.figures.studies import (
    Drawing,
    Summary,
    Table,
    difference_verdict,
    grouped_bars,
    rule_line,
    runs_by_name,
    tested,
    trained_on,
    with_interval,
)
from replicate.runs.files import read_json
from replicate.study.definitions import data_size
from replicate.study.definitions.common import budget, finetune, percent, upstream
from replicate.study.spec import RunSpec, Scale, Study, weights_of

NAME = "self-supervision"
PRETRAIN = "pretrain-masked-patch"


LABELS = {
    "masked": "masked patch pre-training (no labels)",
    "supervised": "supervised pre-training on all labels (upper bound)",
}


def label_fractions(scale: Scale) -> tuple[float, ...]:
    """The data-size study's two smallest subsets: its runs there are the scratch baselines."""
    return tuple(sorted(scale.fractions)[:2])


def step_budget(scale: Scale) -> tuple[int, int]:
    """(pre-training, fine-tuning) steps: together the scratch baseline's `scale.steps`."""
    finetune = max(1, scale.steps // 3)
    return scale.steps - finetune, finetune


def runs(scale: Scale) -> list[RunSpec]:
    masked = weights_of(NAME, PRETRAIN)
    supervised = weights_of(data_size.NAME, data_size.run_name("vit", 1.0))
    pretrain_steps, finetune_steps = step_budget(scale)
    specs = [
        RunSpec(
            PRETRAIN,
            "train",
            {**scale.vit, **upstream(scale), "recipe": "masked-patch", "steps": pretrain_steps},
            label="masked patch prediction, no labels",
        )
    ]
    for fraction in label_fractions(scale):
        labels = {"train_fraction": fraction, **budget(finetune_steps)}
        for start, weights in (("masked", masked), ("supervised", supervised)):
            specs.append(
                RunSpec(
                    f"vit-{start}-{percent(fraction)}",
                    "train",
                    {
                        **scale.vit,
                        **upstream(scale),
                        **finetune(weights, scale.batch_size),
                        **labels,
                    },
                    label=f"{LABELS[start]}, fine-tuned on {percent(fraction)}% of the labels",
                )
            )
    return specs


# The study's table, figure and rule, drawn from its study.json


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
    grouped_bars(ax, [f"{fraction}% of the labels" for fraction in cells],
                 {label: [tested(row[start]) if start in row else None for row in cells.values()]
                  for start, label in SELF_SUPERVISION_STARTS.items()})  # fmt: skip
    ax.axhline(10, color="grey", ls="--", lw=1, label="chance (10 classes)")
    ax.set_ylabel(f"{trained_on(summary)} test top-1 (%, 95% interval)")
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


STUDY = Study(
    name=NAME,
    title="Masked patch prediction (Section 4.6)",
    claim=(
        'Section 4.6: "With self-supervised pre-training, our smaller ViT-B/16 model achieves '
        "79.9% accuracy on ImageNet, a significant improvement of 2% to training from scratch, "
        'but still 4% behind supervised pre-training."'
    ),
    runs=runs,
    drawing=Drawing(self_supervision_table, self_supervision_figure, self_supervision_notes),
)
