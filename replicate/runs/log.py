"""What a training run leaves in its `--out` folder, besides the checkpoints.

    config.json                the full resolved configuration (`--resume` reads it back)
    metrics.jsonl              one `EpochRecord` per line; its `eval_split` says what the
                               evaluation columns measure: `test_*` on the test split, or
                               `dev_*` on the dev split held out by --val-fraction
    events.out.tfevents.*      TensorBoard: loss, accuracy, learning rate, throughput
    confusion_matrix.{png,json} the final test-set confusion matrix, as a picture and as counts
    predictions.json           the final evaluation image by image: each image's true and
                               predicted class, so two runs compare on the same images (paired)

Only rank 0 writes; on the other ranks a `RunLog` is built with `enabled=False` and does nothing.
"""

from __future__ import annotations

import json
import logging
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any, TypeVar

from torch import Tensor

from replicate.runs.files import atomic_path, write_json

log = logging.getLogger(__name__)

CONFIG = "config.json"
METRICS = "metrics.jsonl"
CONFUSION_MATRIX = "confusion_matrix.json"  # {"classes", "counts"} of the final evaluation
PREDICTIONS = "predictions.json"  # {"split", "true", "predicted"} of the final evaluation
# A study's folder (`replicate.study`): each run's summary.json beside its files, the study's
# study.json, and the bf16 weights a run publishes for the runs that start from it (committed).
SUMMARY = "summary.json"
STUDY_SUMMARY = "study.json"
PUBLISHED_WEIGHTS = "model-bf16.safetensors"
MAX_ANNOTATED_CLASSES = 20  # beyond this the counts in the cells become unreadable


@dataclass(frozen=True)
class EpochRecord:
    epoch: int  # epochs completed
    step: int  # optimiser steps completed
    train_loss: float  # the mean over this epoch's `train_steps`
    train_acc: float
    images_per_s: float  # training throughput over all ranks, evaluation excluded
    wall_time_s: float  # since the run (or its resumption) started
    lr: float
    train_images: int  # the training images of the run (after --val-fraction, --train-fraction)
    eval_split: str  # "test", or "dev" (held out of the training split): what `evaluation` is on
    # `evaluation_fields` of the weights (and of their Polyak average, "ema_"); empty for an
    # epoch that was not evaluated (--final-eval-only)
    evaluation: dict[str, float]
    skipped_images: int = 0  # unreadable images met so far (named on the run's stderr)
    # the steps train_loss and train_acc average: the epoch's, or in the epoch a resumed run
    # re-enters only those after the resume
    train_steps: int | None = None
    phase_s: dict[str, float] = field(default_factory=dict)  # `PhaseTimer.seconds` of the epoch

    def to_json(self) -> dict[str, Any]:
        """One flat object: the evaluation's keys beside the others."""
        fields = asdict(self)
        return {**fields, **fields.pop("evaluation")}


T = TypeVar("T")


class PhaseTimer:
    """Where a training epoch's wall time goes, on the host: "data" (waiting for the next batch),
    "step" (augmentation, forward, backward, optimiser), "log" (metrics, which sync the
    device), "eval", and "checkpoint" for the saves of `--checkpoint-every`. It adds no device
    syncs: work the host queues in one phase is paid where the host next waits for the device,
    so a GPU-bound loop shows its time under "step" and "log", a loop starved by its data under
    "data"."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    @contextmanager
    def __call__(self, phase: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[phase] += time.perf_counter() - start

    def iterate(self, items: Iterable[T], phase: str = "data") -> Iterator[T]:
        """`items`, with the time spent waiting for each counted under `phase`."""
        iterator = iter(items)
        while True:
            with self(phase):
                item = next(iterator, _END)
            if item is _END:
                return
            yield item


_END = object()


def evaluation_fields(split: str, loss: float, top1: float, top5: float, prefix: str = "") -> dict:
    """{"test_loss", "test_acc", "test_top5"} (or "dev_...", "ema_test_...")."""
    name = f"{prefix}{split}"
    return {f"{name}_loss": loss, f"{name}_acc": top1, f"{name}_top5": top5}


def read_metrics(path: Path) -> tuple[dict, ...]:
    """The epochs of a metrics.jsonl, in order; a line that is not a JSON object with an
    `epoch` (a run killed mid-write tears its last line) is dropped with a warning naming the
    file and line."""
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            row = None
        if not isinstance(row, dict) or "epoch" not in row:
            log.warning("%s:%d: not a JSON object with an 'epoch', dropped", path, number)
            continue
        rows.append(row)
    return tuple(sorted(rows, key=lambda row: row["epoch"]))


def training_seconds(folder: Path) -> float | None:
    """The wall time of the training logged below `folder` (a sweep's every candidate), summed
    over the sessions each run was resumed in: a row's `wall_time_s` counts from its session's
    start, so a session ends where it drops and adds its last row's (one that logged less than
    its successor's first row would be missed). None where nothing was trained."""
    total, found = 0.0, False
    for metrics in folder.rglob(METRICS):
        times = [row["wall_time_s"] for row in read_metrics(metrics)]
        total += sum(a for a, b in pairwise(times) if b < a) + sum(times[-1:])
        found = found or bool(times)
    return total if found else None  # unrounded: a run of 0.05 s trained for more than 0


def last_epoch(folder: Path) -> dict:
    """The last epoch a run folder logged; a one-line error naming the file when none is."""
    rows = read_metrics(folder / METRICS) if (folder / METRICS).is_file() else ()
    if not rows:
        raise ValueError(f"{folder / METRICS} holds no finished epoch")
    return rows[-1]


class RunLog:
    def __init__(self, out: Path, enabled: bool, epoch: int = 0, step: int = 0) -> None:
        """Logs from `epoch` and `step` on: a resumed run drops what the interrupted one logged
        after its last checkpoint, so nothing appears twice."""
        from torch.utils.tensorboard import SummaryWriter  # imported when used: --help is fast

        self.out = out
        self.writer = SummaryWriter(out, purge_step=step or None) if enabled else None
        metrics = out / METRICS
        if self.writer and metrics.exists():
            kept = [row for row in read_metrics(metrics) if row["epoch"] <= epoch]
            with atomic_path(metrics) as tmp:
                tmp.write_text("".join(json.dumps(row) + "\n" for row in kept))

    def config(self, config: dict[str, Any]) -> None:
        if self.writer:
            write_json(self.out / CONFIG, config)  # atomically: a full disk leaves no empty file
            self.writer.add_text("config", f"```\n{json.dumps(config, indent=2)}\n```")

    def step(self, step: int, loss: float, accuracy: float, lr: float) -> None:
        if self.writer:
            self.writer.add_scalar("train/loss", loss, step)
            self.writer.add_scalar("train/accuracy", accuracy, step)
            self.writer.add_scalar("train/lr", lr, step)

    def epoch(self, record: EpochRecord) -> None:
        if not self.writer:
            return
        with open(self.out / METRICS, "a") as f:
            f.write(json.dumps(record.to_json()) + "\n")
        scalars = {
            "/".join(key.rsplit("_", 1)): value for key, value in record.evaluation.items()
        }  # test/acc, dev/loss, ema_test/top5, ...
        scalars["train/epoch_accuracy"] = record.train_acc
        scalars["train/images_per_s"] = record.images_per_s
        for tag, value in scalars.items():
            self.writer.add_scalar(tag, value, record.step)
        self.writer.flush()

    def confusion_matrix(self, counts: Tensor, classes: list[str]) -> None:
        if not self.writer:
            return
        from torchmetrics.classification import MulticlassConfusionMatrix

        write_json(self.out / CONFUSION_MATRIX, {"classes": classes, "counts": counts.tolist()})
        annotate = len(classes) <= MAX_ANNOTATED_CLASSES
        figure, _ = MulticlassConfusionMatrix(len(classes)).plot(
            counts, add_text=annotate, labels=classes if annotate else None
        )
        with atomic_path(self.out / "confusion_matrix.png") as tmp:
            figure.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
        self.writer.add_figure("test/confusion_matrix", figure)

    def predictions(self, split: str, true: Tensor, predicted: Tensor) -> None:
        if self.writer:
            record = {"split": split, "true": true.tolist(), "predicted": predicted.tolist()}
            with atomic_path(self.out / PREDICTIONS) as tmp:  # one line: 10,000 images, 40 kB
                tmp.write_text(json.dumps(record, separators=(",", ":")) + "\n")

    def close(self) -> None:
        if self.writer:
            self.writer.close()
