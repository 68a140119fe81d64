"""Study 3, `resolution`: Section 3.2, fine-tuning at a higher resolution.

The CIFAR-10 ViT of the data-size study (all of the training set) is fine-tuned for the same
number of extra steps at 32x32 (its pre-training resolution) and at higher resolutions, with the
patch size kept and E_pos interpolated in 2-D, so the sequence grows from 8x8 to 12x12 and 16x16
patches. Upsampled CIFAR images carry no new detail: what a higher resolution can add here is a
longer sequence, i.e. finer patches relative to the object.
"""

from __future__ import annotations

from pathlib import Path

from replicate.figures.studies import (
    Drawing,
    Summary,
    Table,
    difference_verdict,
    plot_with_intervals,
    rule_line,
    tested,
    trained_on,
    with_interval,
)
from replicate.study.definitions import data_size
from replicate.study.definitions.common import budget, finetune, upstream
from replicate.study.spec import RunSpec, Scale, Study, weights_of

NAME = "resolution"


def runs(scale: Scale) -> list[RunSpec]:
    pretrained = weights_of(data_size.NAME, data_size.run_name("vit", 1.0))
    return [
        RunSpec(
            f"vit-{size}px",
            "train",
            {
                **scale.vit,
                **upstream(scale, image_size=size),
                **finetune(pretrained, scale.batch_size),
                **budget(scale.finetune_steps),
            },
            label=f"fine-tuned at {size}x{size}",
        )
        for size in (scale.image_size, *scale.finetune_sizes)
    ]


# The study's table, figure and rule, drawn from its study.json


def resolution_table(summary: Summary, folder: Path | None = None) -> Table:
    rows = [
        [f"{run['result']['image_size']}", run["label"], with_interval(*tested(run["result"]))]
        for run in summary["runs"]
    ]
    return Table(["resolution", "run", f"{trained_on(summary)} test top-1 (95% interval)"], rows)


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
    ax.set_ylabel(f"{trained_on(summary)} test top-1 (%)")


STUDY = Study(
    name=NAME,
    title="Fine-tuning at higher resolution (Section 3.2)",
    claim=(
        'Section 3.2: "It is often beneficial to fine-tune at higher resolution than '
        'pre-training"; the position embeddings are interpolated in 2-D to the longer '
        "sequence."
    ),
    runs=runs,
    drawing=Drawing(resolution_table, resolution_figure, resolution_notes),
)
