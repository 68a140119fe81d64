"""The paper's numbers as data: Table 1 (model variants), Table 2 and Table 5 (accuracies).

Typed in from the ICLR 2021 version (`shared/paper/vit-paper.txt`). Accuracies are top-1 in %,
after fine-tuning at 384 resolution: Table 5, "Top1 accuracy (in %) of Vision Transformer on
various datasets when pre-trained on ImageNet, ImageNet-21k or JFT300M"; Table 2, "mean and
standard deviation of the accuracies, averaged over three fine-tuning runs" (its ImageNet numbers
add Polyak averaging and 512 resolution, Table 5's do not).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

IMAGENET, IMAGENET_21K, JFT = "ImageNet", "ImageNet-21k", "JFT-300M"
CIFAR10, CIFAR100, REAL = "CIFAR-10", "CIFAR-100", "ImageNet ReaL"
PETS, FLOWERS, VTAB = "Oxford-IIIT Pets", "Oxford Flowers-102", "VTAB (19 tasks)"


@dataclass(frozen=True)
class PaperVariant:
    """A row of Table 1: "Details of Vision Transformer model variants"."""

    name: str  # "ViT-Base"
    layers: int
    hidden_size: int
    mlp_size: int
    heads: int
    params_millions: int


TABLE_1 = (
    PaperVariant("ViT-Base", 12, 768, 3072, 12, 86),
    PaperVariant("ViT-Large", 24, 1024, 4096, 16, 307),
    PaperVariant("ViT-Huge", 32, 1280, 5120, 16, 632),
)


@dataclass(frozen=True)
class PaperAccuracy:
    """One top-1 accuracy of the paper: `model` pre-trained on `pretraining`, fine-tuned on
    `dataset`."""

    model: str  # "ViT-B/16"
    pretraining: str  # IMAGENET, IMAGENET_21K or JFT
    dataset: str  # one of the dataset names above
    top1: float  # %
    std: float | None  # over three fine-tuning runs (Table 2 only)
    source: str  # "Table 2" or "Table 5"


_TABLE_5_MODELS = ("ViT-B/16", "ViT-B/32", "ViT-L/16", "ViT-L/32", "ViT-H/14")
# pre-training dataset -> fine-tuning dataset -> one accuracy per model above (None: "-")
_TABLE_5 = {
    IMAGENET: {
        CIFAR10: (98.13, 97.77, 97.86, 97.94, None),
        CIFAR100: (87.13, 86.31, 86.35, 87.07, None),
        IMAGENET: (77.91, 73.38, 76.53, 71.16, None),
        REAL: (83.57, 79.56, 82.19, 77.83, None),
        FLOWERS: (89.49, 85.43, 89.66, 86.36, None),
        PETS: (93.81, 92.04, 93.64, 91.35, None),
    },
    IMAGENET_21K: {
        CIFAR10: (98.95, 98.79, 99.16, 99.13, 99.27),
        CIFAR100: (91.67, 91.97, 93.44, 93.04, 93.82),
        IMAGENET: (83.97, 81.28, 85.15, 80.99, 85.13),
        REAL: (88.35, 86.63, 88.40, 85.65, 88.70),
        FLOWERS: (99.38, 99.11, 99.61, 99.19, 99.51),
        PETS: (94.43, 93.02, 94.73, 93.09, 94.82),
    },
    JFT: {
        CIFAR10: (99.00, 98.61, 99.38, 99.19, 99.50),
        CIFAR100: (91.87, 90.49, 94.04, 92.52, 94.55),
        IMAGENET: (84.15, 80.73, 87.12, 84.37, 88.04),
        REAL: (88.85, 86.27, 89.99, 88.28, 90.33),
        FLOWERS: (99.56, 99.27, 99.56, 99.45, 99.68),
        PETS: (95.80, 93.40, 97.11, 95.83, 97.56),
    },
}

# (model, pre-training) columns of Table 2 -> dataset -> (mean, std); the ViT columns only.
_TABLE_2 = {
    ("ViT-H/14", JFT): {
        IMAGENET: (88.55, 0.04),
        REAL: (90.72, 0.05),
        CIFAR10: (99.50, 0.06),
        CIFAR100: (94.55, 0.04),
        PETS: (97.56, 0.03),
        FLOWERS: (99.68, 0.02),
        VTAB: (77.63, 0.23),
    },
    ("ViT-L/16", JFT): {
        IMAGENET: (87.76, 0.03),
        REAL: (90.54, 0.03),
        CIFAR10: (99.42, 0.03),
        CIFAR100: (93.90, 0.05),
        PETS: (97.32, 0.11),
        FLOWERS: (99.74, 0.00),
        VTAB: (76.28, 0.46),
    },
    ("ViT-L/16", IMAGENET_21K): {
        IMAGENET: (85.30, 0.02),
        REAL: (88.62, 0.05),
        CIFAR10: (99.15, 0.03),
        CIFAR100: (93.25, 0.05),
        PETS: (94.67, 0.15),
        FLOWERS: (99.61, 0.02),
        VTAB: (72.72, 0.21),
    },
}

TABLE_5 = tuple(
    PaperAccuracy(model, pretraining, dataset, top1, None, "Table 5")
    for pretraining, rows in _TABLE_5.items()
    for dataset, row in rows.items()
    for model, top1 in zip(_TABLE_5_MODELS, row, strict=True)
    if top1 is not None
)
TABLE_2 = tuple(
    PaperAccuracy(model, pretraining, dataset, top1, std, "Table 2")
    for (model, pretraining), rows in _TABLE_2.items()
    for dataset, (top1, std) in rows.items()
)

# Spellings of the paper's datasets (lower case, letters and digits only) -> the paper's name.
_DATASET_ALIASES = {
    CIFAR10: ("cifar10",),
    CIFAR100: ("cifar100",),
    IMAGENET: ("imagenet", "imagenet1k", "in1k", "ilsvrc2012"),
    REAL: ("imagenetreal", "real"),
    PETS: ("pets", "oxfordiiitpet", "oxfordiiitpets", "oxfordpets"),
    FLOWERS: ("flowers", "flowers102", "oxfordflowers102", "oxfordflowers"),
    VTAB: ("vtab", "vtab1k"),
}
_DATASETS = {alias: name for name, aliases in _DATASET_ALIASES.items() for alias in aliases}


def paper_dataset(name: str) -> str | None:
    """The paper's name for a dataset ("cifar10", "CIFAR-10" -> "CIFAR-10"), None if the paper
    does not evaluate on it (e.g. "digits", "hymenoptera")."""
    return _DATASETS.get(re.sub(r"[^a-z0-9]", "", name.lower()))


def pretraining_dataset(spec: str | None, dataset: str) -> str | None:
    """The upstream dataset of a run, from its weights spec.

    No spec means training from scratch: the paper's equivalent is "pre-training" on the
    dataset itself (Table 5's ImageNet -> ImageNet row). Spec tags follow timm and torchvision
    ("..._in21k_ft_in1k", "IMAGENET1K_V1"); SWAG (Instagram) weights are not the paper's.
    """
    if not spec:
        return paper_dataset(dataset)
    tag = spec.lower()
    if "jft" in tag:
        return JFT
    if "swag" in tag:
        return None
    if "21k" in tag:
        return IMAGENET_21K
    if "in1k" in tag or "imagenet1k" in tag:
        return IMAGENET
    return None


def paper_accuracy(model: str, pretraining: str | None, dataset: str) -> PaperAccuracy | None:
    """The paper's accuracy for `model` (e.g. "ViT-B/16") pre-trained on `pretraining` and
    fine-tuned on `dataset` (any spelling `paper_dataset` knows), or None.

    Table 5 comes first: its protocol is the same for every model, while Table 2's ImageNet
    numbers add Polyak averaging and 512 resolution. Table 2 adds VTAB.
    """
    target = paper_dataset(dataset)
    for row in TABLE_5 + TABLE_2:
        if (row.model, row.pretraining, row.dataset) == (model, pretraining, target):
            return row
    return None


def paper_variant(model: str) -> PaperVariant | None:
    """Table 1's row for a model name like "ViT-L/16", None for sizes it lacks (Ti, S)."""
    size = model.removeprefix("ViT-").split("/")[0]  # "ViT-L/16" -> "L"
    name = {"B": "ViT-Base", "L": "ViT-Large", "H": "ViT-Huge"}.get(size)
    return next((row for row in TABLE_1 if row.name == name), None)
