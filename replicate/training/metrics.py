"""The metrics a run reports, from torchmetrics: training and evaluation share one definition."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from torchmetrics import MetricCollection


def accuracy_metrics(num_classes: int, device: torch.device) -> MetricCollection:
    """Mean loss and top-1 accuracy over the samples seen, from per-sample losses. NaN losses are
    kept, not dropped, so a diverged run shows (and "disable" would ignore a `weight=`, so there
    is none); the label checks are off, as they cost a device sync per batch."""
    from torchmetrics import MeanMetric, MetricCollection  # imported when used: --help is fast
    from torchmetrics.classification import MulticlassAccuracy

    return MetricCollection(
        {
            "loss": MeanMetric(nan_strategy="disable"),
            "top1": MulticlassAccuracy(num_classes, top_k=1, average="micro", validate_args=False),
        }
    ).to(device)
