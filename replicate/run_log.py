"""What a training run leaves in its `--out` folder, besides the checkpoints.

    config.json                the full resolved configuration (`--resume` reads it back)
    metrics.jsonl              one `EpochRecord` per line; its `eval_split` says what the
                               evaluation columns measure: `test_*` on the test split, or
                               `dev_*` on the dev split held out by --val-fraction
    events.out.tfevents.*      TensorBoard: loss, accuracy, learning rate, throughput
    confusion_matrix.{png,json} the final test-set confusion matrix, as a picture and as counts

Only rank 0 writes; on the other ranks a `RunLog` is built with `enabled=False` and does nothing.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from torch import Tensor
from torch.utils.tensorboard import SummaryWriter

CONFIG = "config.json"
METRICS = "metrics.jsonl"
MAX_ANNOTATED_CLASSES = 20  # beyond this the counts in the cells become unreadable


@dataclass(frozen=True)
class EpochRecord:
    epoch: int  # epochs completed
    step: int  # optimiser steps completed
    train_loss: float
    train_acc: float
    images_per_s: float  # training throughput over all ranks, evaluation excluded
    wall_time_s: float  # since the run (or its resumption) started
    lr: float
    train_images: int  # the training images of the run (after --val-fraction, --train-fraction)
    eval_split: str  # "test", or "dev" (held out of the training split): what `evaluation` is on
    # `evaluation_fields` of the weights (and of their Polyak average, "ema_"); empty for an
    # epoch that was not evaluated (--final-eval-only)
    evaluation: dict[str, float]
    skipped_images: int = 0  # unreadable images met so far (named in the run's warnings)

    def to_json(self) -> dict[str, Any]:
        """One flat object: the evaluation's keys beside the others."""
        fields = asdict(self)
        return {**fields, **fields.pop("evaluation")}


def evaluation_fields(split: str, loss: float, top1: float, top5: float, prefix: str = "") -> dict:
    """{"test_loss", "test_acc", "test_top5"} (or "dev_...", "ema_test_...")."""
    name = f"{prefix}{split}"
    return {f"{name}_loss": loss, f"{name}_acc": top1, f"{name}_top5": top5}


class RunLog:
    def __init__(self, out: Path, enabled: bool, epoch: int = 0, step: int = 0) -> None:
        """Logs from `epoch` and `step` on: a resumed run drops what the interrupted one logged
        after its last checkpoint, so nothing appears twice."""
        self.out = out
        self.writer = SummaryWriter(out, purge_step=step or None) if enabled else None
        metrics = out / METRICS
        if self.writer and metrics.exists():
            kept = [
                line
                for line in metrics.read_text().splitlines(keepends=True)
                if json.loads(line)["epoch"] <= epoch
            ]
            metrics.write_text("".join(kept))

    def config(self, config: dict[str, Any]) -> None:
        if self.writer:
            (self.out / CONFIG).write_text(json.dumps(config, indent=2) + "\n")
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

        (self.out / "confusion_matrix.json").write_text(
            json.dumps({"classes": classes, "counts": counts.tolist()}) + "\n"
        )
        annotate = len(classes) <= MAX_ANNOTATED_CLASSES
        figure, _ = MulticlassConfusionMatrix(len(classes)).plot(
            counts, add_text=annotate, labels=classes if annotate else None
        )
        figure.savefig(self.out / "confusion_matrix.png", dpi=120, bbox_inches="tight")
        self.writer.add_figure("test/confusion_matrix", figure)

    def close(self) -> None:
        if self.writer:
            self.writer.close()
