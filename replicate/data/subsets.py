"""Class-balanced subsets of a training split: the dev split of Appendix B.1.1 and the smaller
training sets of a data-size study.

    "we use small sub-splits from the training set (10% for Pets and Flowers, 2% for CIFAR,
    1% ImageNet) as development set and train on the remaining data" (Appendix B.1.1)

Every class is shuffled once with a fixed seed (`SPLIT_SEED`, not the run's `--seed`, so that
every candidate of a sweep and every seed of a study sees the same dev images). The dev split is
the head of each class's order; a `--train-fraction` takes the head of what remains. So the
subsets are nested (5% inside 10% inside 20% ...) and the dev split never changes with them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import ConcatDataset, Dataset, Subset, TensorDataset

from replicate.data.images import Splits

SPLIT_SEED = 0


@dataclass(frozen=True)
class TrainingSubsets:
    train: list[int]  # indices into the training split that the run trains on
    dev: list[int]  # indices held out as the dev split (empty without --val-fraction)


MAX_VAL_FRACTION = 0.5  # a dev split larger than the training split is a typo, not a protocol


def stratified_subsets(
    labels: Sequence[int], val_fraction: float = 0.0, train_fraction: float = 1.0
) -> TrainingSubsets:
    """Per class: `val_fraction` of its images held out as dev, then `train_fraction` of the
    rest kept for training; each at least one image of every class, rounded to the nearest."""
    _check_fraction("--val-fraction", val_fraction, low_inclusive=True, high_inclusive=False)
    _check_fraction("--train-fraction", train_fraction, low_inclusive=False, high_inclusive=True)
    if val_fraction > MAX_VAL_FRACTION:
        raise ValueError(
            f"--val-fraction {val_fraction:g} holds out more of the training set than it leaves "
            "to train on; Appendix B.1.1 holds out 0.02 (CIFAR) or 0.1 (small datasets)"
        )
    labels = np.asarray(labels)
    rng = np.random.default_rng(SPLIT_SEED)
    train: list[int] = []
    dev: list[int] = []
    for label in np.unique(labels):
        order = rng.permutation(np.flatnonzero(labels == label))
        held = max(1, round(val_fraction * len(order))) if val_fraction else 0
        kept = max(1, round(train_fraction * (len(order) - held)))
        if held + 1 > len(order):
            raise ValueError(
                f"class {label} has {len(order)} training image(s): too few to hold out a dev "
                "split and train on the rest; lower --val-fraction or add images"
            )
        dev += order[:held].tolist()
        train += order[held : held + kept].tolist()
    return TrainingSubsets(sorted(train), sorted(dev))


def _check_fraction(
    option: str, value: float, *, low_inclusive: bool, high_inclusive: bool
) -> None:
    above = value >= 0 if low_inclusive else value > 0
    below = value <= 1 if high_inclusive else value < 1
    if not (above and below):
        interval = f"{'[' if low_inclusive else '('}0, 1{']' if high_inclusive else ')'}"
        raise ValueError(f"{option} must be in {interval}, got {value}")


def dataset_labels(dataset: Dataset) -> list[int]:
    """The label of every item, read from the dataset's own label list where it keeps one
    (ImageFolder and CIFAR `targets`, Pets/Flowers/Food `_labels`), so no image is decoded."""
    if isinstance(dataset, TensorDataset):
        return dataset.tensors[1].tolist()
    if isinstance(dataset, Subset):
        labels = dataset_labels(dataset.dataset)
        return [labels[i] for i in dataset.indices]
    if isinstance(dataset, ConcatDataset):
        return [label for part in dataset.datasets for label in dataset_labels(part)]
    for attribute in ("targets", "_labels"):
        labels = getattr(dataset, attribute, None)
        if labels is not None:
            return [int(label) for label in labels]
    return [int(dataset[i][1]) for i in range(len(dataset))]


def subset(dataset: Dataset, indices: list[int]) -> Dataset:
    """`Subset`, but a tensor dataset stays a (smaller) tensor dataset."""
    if isinstance(dataset, TensorDataset):
        index = torch.as_tensor(indices, dtype=torch.long)
        return TensorDataset(*(tensor[index] for tensor in dataset.tensors))
    return Subset(dataset, indices)


def protocol_splits(splits: Splits, val_fraction: float, train_fraction: float) -> Splits:
    """The splits a run uses: the training split cut to `train_fraction`, and for evaluation the
    dev split held out of it when `val_fraction` > 0, else the test split."""
    if not val_fraction and train_fraction == 1:
        return splits
    chosen = stratified_subsets(dataset_labels(splits.train), val_fraction, train_fraction)
    test = subset(splits.train, chosen.dev) if val_fraction else splits.test
    return Splits(subset(splits.train, chosen.train), test, splits.classes)


def eval_split_name(val_fraction: float) -> str:
    """What the per-epoch evaluation measures: "dev" (held out of training) or "test"."""
    return "dev" if val_fraction else "test"
