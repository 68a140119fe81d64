"""Study 3, `resolution`: Section 3.2, fine-tuning at a higher resolution.

The best-trained CIFAR-10 ViT the project has (`Scale.best_vit`; at the smoke scale the data-size
study's all-data ViT) is fine-tuned for the same number of steps at 32x32 (its pre-training
resolution) and at higher resolutions, with the patch size kept and E_pos interpolated in 2-D,
so the sequence grows from 8x8 to 12x12 and 16x16 patches: Appendix B.1.1's protocol at each
resolution, the rate from Table 4's grid on the 2% dev split, the choice trained with three seeds
and tested once. Upsampled CIFAR images carry no new detail: what a higher resolution can add
here is a longer sequence, i.e. finer patches relative to the object.

The rule, fixed before the runs: the highest resolution beats the pre-training resolution by at
least `MINIMUM`, paired on the test images with the seeds' spread.
"""

from __future__ import annotations

from pathlib import Path

from replicate.figures.studies import (
    Drawing,
    Summary,
    Table,
    paired_rule_line,
    percent_cell,
    plot_with_intervals,
    sweep_scores,
    trained_on,
)
from replicate.runs.log import METRICS, read_metrics
from replicate.runs.paired import Difference, paired_difference, verdict
from replicate.study.definitions import data_size
from replicate.study.definitions.common import budget, finetune
from replicate.study.spec import RunSpec, Scale, Study, weights_of

NAME = "resolution"
MINIMUM = 0.01  # "often beneficial": a point on CIFAR-10's test set
# By scale: the resolutions fine-tuned at beyond the pre-training one, and the steps at each.
SIZES = {"cpu": (48, 64), "gpu": (48, 64), "smoke": (24,)}
STEPS = {"cpu": 100, "gpu": 250, "smoke": 2}


def runs(scale: Scale) -> list[RunSpec]:
    pretrained = scale.best_vit or weights_of(data_size.NAME, data_size.run_name("vit", 1.0))
    return [
        RunSpec(
            f"vit-{size}px",
            "sweep",
            {
                "lrs": scale.learning_rates,
                "val_fraction": scale.dev_fraction,
                "seeds": scale.finetune_seeds,
            },  # fmt: skip
            label=f"fine-tuned at {size}x{size}",
            train={
                **scale.vit,
                "dataset": scale.upstream,
                "image_size": size,
                "batch_size": scale.batch_size,
                "workers": scale.workers,
                "eval_every": scale.eval_every,
                **finetune(pretrained, scale.batch_size),
                **budget(STEPS[scale.name]),
            },
        )
        for size in (scale.image_size, *SIZES[scale.name])
    ]


# The study's table, figure and rule, drawn from its study.json


def _by_size(summary: Summary) -> list[tuple[int, Summary]]:
    """(resolution, run) in increasing resolution; "vit-64px" -> 64."""
    return sorted((int(run["run"][4:-2]), run) for run in summary["runs"])


def resolution_table(summary: Summary, folder: Path | None = None) -> Table:
    rows = []
    for size, run in _by_size(summary):
        result = run["result"]
        seeds = ", ".join(f"{100 * a:.1f}" for a in result["test_accs"])
        rows.append([f"{size}x{size}", f"{percent_cell(result['test_acc'])} ({seeds})",
                     f"{result['best_lr']:g}"])  # fmt: skip
    return Table(["resolution", f"{trained_on(summary)} test top-1, mean (seeds)", "lr"], rows)


def resolution_verdict(summary: Summary, folder: Path) -> tuple[str, Difference, str] | None:
    """Section 3.2's claim: the highest resolution's runs against the pre-training one's."""
    runs = _by_size(summary)
    if len(runs) < 2:
        return None
    (low, low_run), (high, high_run) = runs[0], runs[-1]
    difference = paired_difference(sweep_scores(folder, high_run), sweep_scores(folder, low_run))
    rule = (f"fine-tuning at {high}x{high} beats fine-tuning at the pre-training {low}x{low} "
            f"for the same steps by at least {100 * MINIMUM:.0f} point")  # fmt: skip
    return rule, difference, verdict(difference, MINIMUM)


def resolution_notes(summary: Summary, folder: Path) -> str:
    decided = resolution_verdict(summary, folder)
    return paired_rule_line(*decided) if decided else ""


def base_accuracy(summary: Summary) -> float | None:
    """The last test top-1 logged by the run whose weights every resolution starts from."""
    args = summary["runs"][0]["args"]
    metrics = Path(args[args.index("--pretrained") + 1]).parent / METRICS
    return read_metrics(metrics)[-1].get("test_acc") if metrics.is_file() else None


def resolution_figure(summary: Summary, ax, folder: Path) -> None:
    runs = _by_size(summary)
    sizes = [size for size, _ in runs]
    images = [len(sweep_scores(folder, run)[0]) for _, run in runs]
    plot_with_intervals(ax, sizes, [run["result"]["test_acc"] for _, run in runs], images)
    base = base_accuracy(summary)
    if base is not None:  # what fine-tuning starts from: its head reset
        ax.axhline(100 * base, color="grey", ls="--", lw=1,
                   label=f"the weights before fine-tuning: {base:.1%}")  # fmt: skip
        ax.legend(fontsize=8)
    ax.set_xticks(sizes, [f"{s}x{s}" for s in sizes])
    ax.set_xlabel("fine-tuning resolution (patch size kept, E_pos interpolated)")
    ax.set_ylabel(f"{trained_on(summary)} test top-1 (%, mean of the seeds)")


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
