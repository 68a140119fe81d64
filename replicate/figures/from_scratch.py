"""Models trained from scratch on CIFAR-10 on this project's CPU: each run's test accuracy after
each epoch beside public recipes' at equal epochs (ViTs' curves, airbench's CNN's end point), the
plain PyTorch loop's at the first run's budget, and kentaroy47's setup trained here beside its log.

    python -m replicate.figures --only from-scratch      # figures/cifar10_from_scratch.png
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from replicate.figures.plots import save
from replicate.runs.log import read_metrics

FIGURE = "cifar10_from_scratch.png"
RUN_COLOURS = ("C0", "C1", "C9", "C4", "C5")  # ours; the anchors keep grey, C2 and black
# KellerJordan/cifar10-airbench's README: airbench94, 94.01% in 0.36 PFLOPs, 9.9 epochs.
AIRBENCH94 = (9.9, 94.01)
# kentaroy47/vision-transformers-cifar10, log/log_vit_patch4.txt, its first run: test top-1 (%)
# by epoch of a ViT of 6 layers, D 512, 4x4 patches (about 9.5M parameters), Adam 1e-4, batch
# 64 (its script's default when the log was committed, October 2020), the padded crop and flip
# (epoch 9 is missing from the log).
KENTAROY47 = {
    1: 45.81, 2: 52.83, 3: 57.07, 4: 59.59, 5: 60.96, 6: 62.86, 7: 63.98, 8: 65.40, 10: 67.90,
    11: 68.80, 12: 69.83, 13: 70.81, 14: 71.04, 15: 70.56, 16: 72.95, 17: 73.32, 18: 73.51,
    19: 74.17, 20: 74.06, 25: 75.00, 30: 76.84, 35: 77.84, 40: 78.62, 45: 79.02, 50: 80.91,
}  # fmt: skip
# omihub777/ViT-CIFAR: 7 layers, D 384 (6.3M), Adam 1e-3, AutoAugment, label smoothing, a
# 200-epoch cosine; test top-1 (%) read off its README's curve (imgs/acc_c10.jpeg, steps of 128
# as epochs, about +-1 point) but the last, which its README states.
OMIHUB777 = {
    1: 39.8, 2: 49.3, 3: 53.2, 5: 57.4, 8: 63.5, 10: 67.0, 15: 74.0, 20: 76.8, 35: 82.1,
    40: 82.1, 50: 84.9, 80: 86.9, 100: 88.2, 150: 89.7, 200: 90.92,
}  # fmt: skip


def _curve(run: Path, note: str = "") -> tuple[list[int], list[float], str]:
    """(epochs, test top-1 in percent, label) of a run folder; `note` follows the recipe."""
    records = [r for r in read_metrics(run / "metrics.jsonl") if "test_acc" in r]
    config = json.loads((run / "config.json").read_text())
    model = " ".join(
        [config["variant"], *(f"{k}={v}" for k, v in config["model_overrides"].items())]
    )
    length = f"{config['epochs']} epochs" if config.get("epochs") else f"{config['steps']} steps"
    accuracy = [100 * r["test_acc"] for r in records]
    label = f"ours: {model}, --recipe {config['recipe']['name']}{note}, {length}: "
    label += f"{accuracy[-1]:.1f}%"
    return [r["epoch"] for r in records], accuracy, label


def draw(
    runs: Mapping[Path, str],
    plain_loop: Path | None,
    path: Path,
    controls: Mapping[str, Path] | None = None,
) -> Path:
    """Our `runs`' test top-1 by epoch (run: a note for its label), the anchors, the plain
    loop's final point beside the first run's last, and `controls` (label: run), kentaroy47's
    setup in this trainer, beside its log."""
    if len(runs) > len(RUN_COLOURS):
        raise ValueError(f"{len(runs)} runs but {len(RUN_COLOURS)} colours: add to RUN_COLOURS")
    curves = [_curve(run, note) for run, note in runs.items()]
    fig = Figure(figsize=(7.5, 7), layout="constrained")
    ax = fig.subplots()
    last = max(epochs[-1] for epochs, _, _ in curves)
    shown = [e for e in KENTAROY47 if e <= max(2 * last, 10)]
    ax.plot(shown, [KENTAROY47[e] for e in shown], "s--", ms=3, color="grey",
            label="kentaroy47 ViT (6 layers, D 512, ~9.5M), Adam 1e-4")  # fmt: skip
    for label, control in (controls or {}).items():
        epochs, accuracy, _ = _curve(control)
        marker = "X" if len(epochs) == 1 else "s-"  # a single epoch is a point
        ax.plot(epochs, accuracy, marker, ms=6, color="grey", label=f"{label}: {accuracy[-1]:.1f}%")
    omihub = [e for e in OMIHUB777 if e <= max(shown)]
    label = "omihub777 ViT (7 layers, D 384, 6.3M), AutoAugment, 200-epoch cosine"
    ax.plot(omihub, [OMIHUB777[e] for e in omihub], "^:", ms=3, color="C2", label=label)
    for colour, (epochs, ours, label) in zip(RUN_COLOURS, curves, strict=False):  # checked above
        ax.plot(epochs, ours, "o-", ms=4 if len(epochs) <= 20 else 2, color=colour, label=label)
    label = "airbench94's CNN (2M parameters), its own recipe: 94.0% at 9.9 epochs"
    ax.plot(*AIRBENCH94, "*", ms=10, color="black", label=label)
    if plain_loop and plain_loop.is_file():
        result = json.loads(plain_loop.read_text())
        final = 100 * result["test_top1"]["plain loop"]
        label = f"plain PyTorch loop, the first run's recipe and budget: {final:.1f}%"
        ax.plot([curves[0][0][-1]], [final], "D", color="C3", ms=7, label=label)
    ax.axhline(OMIHUB777[200], color="C2", ls=":", lw=1)
    ax.text(ax.get_xlim()[1], OMIHUB777[200] + 1, f"omihub777 ViT at 200 epochs: "
            f"{OMIHUB777[200]:.1f}%", color="C2", fontsize=8, ha="right")  # fmt: skip
    title = "From scratch on CIFAR-10, on a 2-core CPU, beside public recipes at equal epochs"
    ax.set(xlabel="epoch", ylabel="CIFAR-10 test top-1 (%)", ylim=(0, 100), title=title)
    ax.set_xticks(np.arange(0, max(shown) + 1, 2 if max(shown) <= 20 else 5))
    ax.grid(alpha=0.3)
    fig.legend(fontsize=8, loc="outside lower center")  # below the axes: no curve hidden
    return save(fig, path)
