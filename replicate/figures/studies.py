"""What every study's table and figure share (the tables, the intervals, the verdicts, the
drawing), drawn from its `study.json` (`replicate.study.runner`): `python -m replicate.study
NAME --summarise` redraws them from the committed results without running anything. Each
study's own table, figure and rule are in its definition, `replicate/study/definitions/`.

    study_<name>.md    the study's table, the paper's claim, the device and the scale
    study_<name>.png   its figure, the claim in the caption
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from replicate.runs.log import STUDY_SUMMARY
from replicate.runs.paired import Z95, Difference, correct

Summary = dict[str, Any]


@dataclass(frozen=True)
class Table:
    columns: list[str]
    rows: list[list[str]]

    def markdown(self) -> str:
        lines = [self.columns, ["---"] * len(self.columns), *self.rows]
        return "\n".join("| " + " | ".join(line) + " |" for line in lines) + "\n"


def percent_cell(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def trained_on(summary: Summary) -> str:
    """The data set the study's models were trained on, as titles name it; CIFAR-10, the cpu
    and gpu scales', where the summary does not say."""
    return summary.get("upstream", "CIFAR-10")


def runs_by_name(summary: Summary) -> dict[str, Summary]:
    return {run["run"]: run for run in summary["runs"]}


def wilson_interval(p: float, n: int) -> tuple[float, float]:
    """The 95% Wilson score interval of an accuracy p measured on n images."""
    centre = (p + Z95**2 / (2 * n)) / (1 + Z95**2 / n)
    half = Z95 * math.sqrt(p * (1 - p) / n + Z95**2 / (4 * n**2)) / (1 + Z95**2 / n)
    return centre - half, centre + half


def with_interval(p: float | None, n: int | None) -> str:
    if p is None or not n:
        return percent_cell(p)
    low, high = wilson_interval(p, n)
    return f"{100 * p:.1f}% [{100 * low:.1f}, {100 * high:.1f}]"


def sweep_scores(folder: Path, sweep: Summary) -> list:
    """Right (1) or wrong (0) on each test image, one array per final seed of a sweep's run in
    the study folder `folder`: what `replicate.runs.paired` compares."""
    return [
        correct(folder / sweep["run"] / final, "test") for final in sweep["result"]["final_runs"]
    ]


def paired_rule_line(rule: str, difference: Difference | None, word: str) -> str:
    """One claim decided by `replicate.runs.paired`: the rule, the difference in points with its
    95% half-width and the runs behind each side, the word."""
    measured = (
        f" Measured, paired by image: {100 * difference.effect:+.1f} points "
        f"(± {100 * difference.half_width:.1f}; seeds {difference.seeds[0]} and "
        f"{difference.seeds[1]})."
        if difference
        else ""
    )
    return f"Rule: {rule}.{measured} **{word}**.\n\n"


MODEL_NAMES = {"vit": "ViT", "bit": "ResNet (BiT)"}


def model_label(summary: Summary, model: str) -> str:
    """The name a study's runs give the model ("ViT-Ti/4 (5 layers), 3% of ..." -> its head)."""
    for run in summary["runs"]:
        if run["run"].startswith(f"{model}-") and run.get("label"):
            return run["label"].split(",", 1)[0]
    return MODEL_NAMES.get(model, model)


def plot_with_intervals(ax, x: Sequence[float], accuracy: Sequence[float],
                        tested: Sequence[int], **style) -> None:  # fmt: skip
    """Accuracies in percent with their 95% Wilson intervals as error bars."""
    low, high = zip(*map(wilson_interval, accuracy, tested), strict=True)
    errors = [
        [100 * (a - lo) for a, lo in zip(accuracy, low, strict=True)],
        [100 * (hi - a) for a, hi in zip(accuracy, high, strict=True)],
    ]
    ax.errorbar(x, [100 * a for a in accuracy], yerr=errors, marker="o", capsize=3, **style)


Measured = tuple[float, int] | None  # (accuracy, images scored), or None: not run


def grouped_bars(ax, groups: Sequence[str], series: dict[str, Sequence[Measured]]) -> None:
    """One group of bars per `groups` entry, one bar per series, each accuracy in percent with
    its 95% Wilson interval as an error bar; a missing measurement leaves a gap."""
    width = 0.8 / len(series)
    for i, (label, measured) in enumerate(series.items()):
        positions = [g + (i - (len(series) - 1) / 2) * width for g in range(len(groups))]
        heights, errors = [], [[], []]
        for m in measured:
            low, high = wilson_interval(*m) if m else (float("nan"),) * 2
            heights.append(100 * m[0] if m else float("nan"))
            errors[0].append(100 * (m[0] - low) if m else 0)
            errors[1].append(100 * (high - m[0]) if m else 0)
        ax.bar(positions, heights, width, yerr=errors, capsize=3, label=label)
    ax.set_xticks(range(len(groups)), groups)


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


@dataclass(frozen=True)
class Drawing:
    """How a study is drawn from its summary and folder: its table, its figure (None: the runs
    draw their own, `run_figures`, copied beside the table), the notes below the table."""

    table: Callable[[Summary, Path], Table]
    figure: Callable[[Summary, Any, Path], None] | None = None
    notes: Callable[[Summary, Path], str] | None = None
    run_figures: tuple[str, ...] = ()


def draw_study(summary: Summary, folder: Path, out: Path, drawing: Drawing) -> list[Path]:
    """Write the study's table (Markdown) and figure (PNG) to `out`; returns the files."""
    try:
        return _draw_study(summary, folder, out, drawing)
    except (KeyError, TypeError, AttributeError) as error:  # a field gone, or of another type
        raise ValueError(
            f"cannot draw {folder / STUDY_SUMMARY}: {error!r} is missing or malformed (edited, "
            "or written by another version); python -m replicate.study NAME --summarise "
            "writes it again from the runs"
        ) from error


def _draw_study(summary: Summary, folder: Path, out: Path, drawing: Drawing) -> list[Path]:
    from matplotlib.figure import Figure  # matplotlib: where a figure is drawn

    from replicate.figures.plots import save

    name = summary["study"]
    commits = sorted({run["commit"] for run in summary["runs"] if run.get("commit")})
    planned = summary.get("planned_runs", [])
    done = {run["run"] for run in summary["runs"]}
    missing = [name for name in planned if name not in done]
    header = (
        f"# {summary['title']}\n\n{summary['claim']}\n\n"
        f"Scale `{summary['scale']}`, on {machines(summary)}; "
        f"{summary['device_time_s'] / 60:.1f} minutes of wall time"
        + (f" ({summary['cpu_time_s'] / 60:.0f} CPU-minutes)" if summary.get("cpu_time_s") else "")
        + (
            f" in the sessions that finished its runs, {trained / 60:.1f} minutes of training "
            "logged over all sessions"
            if (trained := summary.get("training_time_s"))
            else ""
        )
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
    for run in folder.iterdir():
        for figure in drawing.run_figures:
            if (run / figure).is_file():
                written.append(Path(shutil.copy2(run / figure, out / figure)))
    return written
