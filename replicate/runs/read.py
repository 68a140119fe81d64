"""Read the run folders that `replicate.train` writes.

    runs/<name>/config.json     the resolved run config: variant, dataset, recipe, pretrained,
                                image_size, epochs, ...
    runs/<name>/metrics.jsonl   one JSON object per epoch: epoch, step, train_loss, train_acc,
                                eval_split, test_loss, test_acc, test_top5 (dev_* when the run
                                evaluated on a dev split), images_per_s, wall_time_s

Accuracies are fractions in [0, 1]. Every key but `epoch` is optional, so older or partial runs
still load; a folder without metrics is skipped with a warning.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path, PurePath

from replicate.data.datasets import IMAGEFOLDER
from replicate.runs.log import read_metrics

log = logging.getLogger(__name__)
PROJECT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Run:
    name: str  # the folder's name
    config: dict
    metrics: tuple[dict, ...]  # one entry per epoch, in order

    def series(self, key: str) -> tuple[list[float], list[float]]:
        """(epochs, values) of one metric over the epochs that logged it."""
        rows = [row for row in self.metrics if row.get(key) is not None]
        return [row["epoch"] for row in rows], [float(row[key]) for row in rows]

    def final(self, key: str) -> float | None:
        """The metric's last logged value."""
        _, values = self.series(key)
        return values[-1] if values else None

    @property
    def eval_split(self) -> str:
        """What the per-epoch evaluation measured: "test", or "dev" (held out of the training
        split by --val-fraction); runs from before the field evaluated on the test split."""
        return next((r["eval_split"] for r in reversed(self.metrics) if "eval_split" in r), "test")

    @property
    def dataset(self) -> str:
        """The dataset, named as results name it (`portable_name`)."""
        return portable_name(str(self.config.get("dataset", "?")))

    @property
    def pretrained(self) -> str | None:
        """The weights spec training started from, a file named as `portable_name` does."""
        spec = self.config.get("pretrained")
        return portable_name(spec) if spec else None

    @property
    def label(self) -> str:
        """The run's name with what it trained and where it was evaluated:
        "b16-c10 (vit_b16, cifar10, scratch; eval: test split)"."""
        variant = self.config.get("variant", "?")
        weights = self.pretrained or "scratch"
        return f"{self.name} ({variant}, {self.dataset}, {weights}; eval: {self.eval_split} split)"


def portable_name(spec: str) -> str:
    """A dataset or weights spec without the machine that ran it: a path (alone, or after
    `imagefolder:`) becomes relative to the project when inside it, else its last part
    ("imagefolder:/data/hymenoptera_data" and "imagefolder:../shared/data/hymenoptera_data"
    -> "imagefolder:hymenoptera_data")."""
    prefix = IMAGEFOLDER if spec.startswith(IMAGEFOLDER) else ""
    path = PurePath(spec.removeprefix(prefix))
    if not path.is_absolute():
        return prefix + path.name if ".." in path.parts else spec
    inside = path.is_relative_to(PROJECT)
    return prefix + (path.relative_to(PROJECT).as_posix() if inside else path.name)


def load_run(folder: Path) -> Run | None:
    """One run folder, or None (with a warning) if it has no epochs to show."""
    metrics_path = folder / "metrics.jsonl"
    if not metrics_path.is_file():
        log.warning("skipping %s: no metrics.jsonl", folder)
        return None
    metrics = read_metrics(metrics_path)
    if not metrics:
        log.warning("skipping %s: metrics.jsonl has no epochs", folder)
        return None
    config_path = folder / "config.json"
    try:
        config = json.loads(config_path.read_text()) if config_path.is_file() else {}
    except json.JSONDecodeError as error:
        raise ValueError(f"{config_path} is not valid JSON: {error}") from None
    return Run(folder.name, config, metrics)


def load_runs(runs_dir: str | Path) -> list[Run]:
    """Every run under `runs_dir` (its sub-folders, in name order), or `runs_dir` itself if it
    is a run folder."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        raise ValueError(f"runs folder {str(runs_dir)!r} does not exist")
    if (runs_dir / "metrics.jsonl").is_file():
        folders = [runs_dir]
    else:
        folders = sorted(path for path in runs_dir.iterdir() if path.is_dir())
    runs = [run for run in map(load_run, folders) if run is not None]
    if not runs:
        raise ValueError(f"no run under {str(runs_dir)!r} has a metrics.jsonl")
    return runs
