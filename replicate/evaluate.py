"""Test-set evaluation: loss, top-1 and top-5 accuracy and the confusion matrix (torchmetrics).

    python -m replicate.evaluate --checkpoint runs/vit_b16-digits-.../model.safetensors
    python -m replicate.evaluate --checkpoint timm:vit_base_patch16_224.orig_in21k_ft_in1k \\
        --dataset imagefolder:path/to/imagenet

The model, its classes, resolution and input normalisation come from the checkpoint's metadata
(or the weights', `replicate.sources`); the dataset is the one it was trained on unless
`--dataset` names another with the same classes.
Used by `replicate.train` after every epoch too; under torchrun each rank evaluates a shard and
torchmetrics sums the counts over the ranks.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from replicate.cli_errors import ArgumentParser, positive_int, run_cli
from replicate.data.augment import Augmentation
from replicate.data.datasets import DEFAULT_DATA_DIR, get_dataset_spec, load_splits
from replicate.data.loader import ImageSource, default_workers, place
from replicate.errors import DataError
from replicate.runtime import Runtime
from replicate.sources import Source, add_source_arguments, load_source
from replicate.training.metrics import accuracy_metrics
from replicate.training.objectives import Classification, Objective


@dataclass(frozen=True)
class Evaluation:
    loss: float
    top1: float
    top5: float  # top-min(5, K): every class is in the top 5 of a 5-class problem
    confusion: Tensor  # (K, K) counts, rows the true class, columns the predicted one
    true: Tensor  # (N,) each image's class, in the order of `indices` (this rank's share)
    predicted: Tensor  # (N,) the top-1 class the model gave it: runs compare image by image


@torch.no_grad()
def evaluate(
    model: nn.Module,
    images: ImageSource,
    indices: Sequence[int],
    augmentation: Augmentation,
    batch_size: int,
    num_classes: int,
    autocast=nullcontext,
    objective: Objective | None = None,
) -> Evaluation:
    """objective: what is scored (`replicate.training.objectives`); default the classification."""
    from torchmetrics.classification import MulticlassAccuracy, MulticlassConfusionMatrix

    objective = objective or Classification(num_classes)
    device = next(model.parameters()).device
    metrics = accuracy_metrics(num_classes, device)
    top5 = MulticlassAccuracy(num_classes, top_k=min(5, num_classes), average="micro").to(device)
    confusion = MulticlassConfusionMatrix(num_classes).to(device)
    was_training = model.training
    model.eval()
    true, predicted = [], []
    for batch, labels in images.batches(indices, batch_size):
        with autocast():
            logits, targets = objective(model, augmentation.eval(batch), labels)
            logits = logits.float()
        true.append(targets.flatten().cpu())
        predicted.append(logits.argmax(-1).flatten().cpu())
        metrics["loss"].update(F.cross_entropy(logits, targets, reduction="none"))
        metrics["top1"].update(logits, targets)
        top5.update(logits, targets)
        confusion.update(logits, targets)
    model.train(was_training)
    if not len(images) or (len(indices) and not sum(map(len, true))):  # resident; streamed
        raise DataError(
            f"none of the evaluation images could be read ({len(images.skipped)} skipped; the "
            f"first: {min(images.skipped, default='?')}); check the files"
        )
    results = metrics.compute()  # sums over ranks under torchrun
    return Evaluation(
        loss=results["loss"].item(),
        top1=results["top1"].item(),
        top5=top5.compute().item(),
        confusion=confusion.compute().cpu(),
        true=torch.cat(true) if true else torch.empty(0, dtype=torch.long),
        predicted=torch.cat(predicted) if predicted else torch.empty(0, dtype=torch.long),
    )


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="python -m replicate.evaluate",
        description="Evaluate a checkpoint of replicate.train on a test set.",
    )
    add_source_arguments(parser)
    parser.add_argument(
        "--dataset",
        help="dataset whose test split to use (default: the one the checkpoint was trained on; "
        "needed for weights by spec); its classes must be the model's",
    )
    parser.add_argument("--data-dir", type=Path, default=Path(DEFAULT_DATA_DIR), help="datasets")
    parser.add_argument(
        "--batch-size", type=positive_int, default=256, help="images per forward pass"
    )
    return parser


def check_classes(dataset: str, classes: list[str], source: Source) -> None:
    """A run's checkpoint needs its own classes; weights by spec as many classes as they have."""
    if source.dataset is not None and classes != list(source.classes):
        raise DataError(
            f"{dataset} has classes {classes[:5]}..., the checkpoint {list(source.classes[:5])}..."
        )
    if len(classes) != len(source.classes):
        raise DataError(
            f"{dataset} has {len(classes)} classes, the weights {len(source.classes)}: fine-tune "
            "them first (python -m replicate.train --pretrained SPEC --dataset ...)"
        )


def main(argv: Sequence[str] | None = None) -> Evaluation:
    args = build_parser().parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    source = load_source(args.checkpoint, args.variant, args.image_size, device)
    dataset = args.dataset or source.dataset
    if dataset is None:
        raise ValueError(f"--dataset: which test set to evaluate {args.checkpoint} on?")
    splits = load_splits(get_dataset_spec(dataset), args.data_dir)
    check_classes(dataset, splits.classes, source)
    runtime = Runtime(device, rank=0, world_size=1, precision="fp32")
    test = place(splits.test, source.image_size, runtime, "auto", default_workers())
    result = evaluate(
        source.model,
        test,
        range(len(test)),
        Augmentation(source.mean, source.std),
        args.batch_size,
        len(source.classes),
    )
    summary = {"test_loss": result.loss, "test_acc": result.top1, "test_top5": result.top5}
    print(json.dumps({"checkpoint": str(args.checkpoint), "dataset": dataset, **summary}))
    return result


if __name__ == "__main__":
    raise SystemExit(run_cli("replicate.evaluate", main))
