"""Datasets for `replicate.train`: each a `DatasetSpec` (its defaults as data) that builds a
train and a test split of (image, label) pairs.

    digits              scikit-learn's bundled 8x8 handwritten digits, upsampled to RGB (offline)
    imagefolder:PATH    PATH/train and PATH/val (or PATH/test), one subfolder per class (offline)
    wds:PATH            WebDataset-style tar shards PATH/train/*.tar and PATH/val/*.tar (offline)
    pizza_steak_sushi   the course's FoodVision Mini zip, an image folder
    cifar10, cifar100, food101, oxford_pets, flowers102   torchvision datasets

Downloads go to `--data-dir`, show progress and, where the source publishes checksums
(torchvision's datasets), verify them; `load_splits(verify=True)` (`--verify-images`) checks
every image file up front. The images themselves, their files and decoding: `replicate.data.images`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

import torch
from torch.utils.data import ConcatDataset, TensorDataset

from replicate.data.images import ImageFiles, Splits, matching_splits, test_folder, verify_files
from replicate.data.shards import wds_splits
from replicate.errors import DataError

PIZZA_STEAK_SUSHI_URL = (
    "https://github.com/mrdbourke/pytorch-deep-learning/raw/main/data/pizza_steak_sushi.zip"
)
IMAGEFOLDER = "imagefolder:"
WDS = "wds:"
DEFAULT_DATA_DIR = ".data"


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset and the defaults a run on it starts from (every one can be overridden)."""

    name: str
    build: Callable[[Path], Splits]  # data_dir -> splits, downloading when needed
    epochs: int = 10  # run length from scratch
    batch_size: int = 32  # the course's batch size; the paper's 4096/512 need accelerators
    image_size: int | None = None  # None: the model's own default (224 for the ViTs)
    finetune_steps: int | None = None  # Table 4's fine-tuning steps, where the paper gives them
    flip: bool = True  # random horizontal flips (not for digits: a mirrored 2 is no digit)
    crop_scale: tuple[float, float] = (0.05, 1.0)  # inception-crop area, as vit_jax trains
    offline: bool = False  # needs no download


def digits_splits(data_dir: Path) -> Splits:
    """scikit-learn's 1,797 digits (8x8, 17 grey levels) as uint8 RGB, split 80/20 with a fixed
    seed and stratified by class, so every run and every machine sees the same test set."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = torch.from_numpy(digits.images * (255 / 16)).round().to(torch.uint8)
    images = images[:, None].expand(-1, 3, -1, -1).contiguous()  # grey -> RGB, (N, 3, 8, 8)
    labels = torch.from_numpy(digits.target)
    train, test = train_test_split(
        torch.arange(len(labels)), test_size=0.2, random_state=0, stratify=labels
    )
    return Splits(
        TensorDataset(images[train], labels[train]),
        TensorDataset(images[test], labels[test]),
        classes=[str(d) for d in digits.target_names],
    )


def image_folder_splits(root: Path, classes: Sequence[str] = ()) -> Splits:
    """`root/train` and `root/val` (or `root/test`), each with one subfolder per class; with
    `classes`, those alone (pre-train on some of a data set's classes, transfer to the rest)."""
    test_dir = test_folder(root, "image folder", "one subfolder of images per class")
    train, test = (ImageFiles.scan(d, classes) for d in (root / "train", test_dir))
    return matching_splits(root, train, test, test_dir.name)


def pizza_steak_sushi_splits(data_dir: Path) -> Splits:
    """The course's FoodVision Mini: 3 Food-101 classes, 225 train and 75 test images."""
    from torchvision.datasets.utils import download_and_extract_archive

    root = data_dir / "pizza_steak_sushi"
    if not root.is_dir():  # GitHub publishes no checksum for the zip
        download_and_extract_archive(PIZZA_STEAK_SUSHI_URL, data_dir, extract_root=root)
    return image_folder_splits(root)


def torchvision_splits(name: str, data_dir: Path) -> Splits:
    """A torchvision dataset, downloaded and md5-checked by torchvision."""
    from torchvision import datasets

    root = data_dir / name
    if name in ("cifar10", "cifar100"):
        cls = datasets.CIFAR10 if name == "cifar10" else datasets.CIFAR100
        train, test = (cls(root, train=t, download=True) for t in (True, False))
    elif name == "food101":
        train, test = (datasets.Food101(root, split=s, download=True) for s in ("train", "test"))
    elif name == "oxford_pets":
        train, test = (
            datasets.OxfordIIITPet(root, split=s, download=True) for s in ("trainval", "test")
        )
    else:  # flowers102: train on train + val (1,020 + 1,020), test on the 6,149 test images
        train, val, test = (
            datasets.Flowers102(root, split=s, download=True) for s in ("train", "val", "test")
        )
        return Splits(ConcatDataset([train, val]), test, test.classes)
    return Splits(train, test, train.classes)


# CIFAR-10's customary per-channel statistics (kuangliu/pytorch-cifar and the CIFAR ViTs after
# it; the std is the mean of the images' own): `--mean`/`--std` for a model trained from scratch
# on it, whose inputs then have about unit variance (results/recipe-ablation: +3.8 points at 10
# epochs against pixels to [-1, 1]).
CIFAR10_MEAN, CIFAR10_STD = (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)

DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in [
        # The main job's: ViT-B/16 at 32x32 (a 2x2 grid of patches), 15 epochs of the 1,437
        # training digits in minutes on a 2-core CPU (results/runs/vit_b16-digits).
        DatasetSpec(
            "digits",
            digits_splits,
            epochs=15,
            batch_size=128,
            image_size=32,
            flip=False,
            crop_scale=(0.6, 1.0),
            offline=True,
        ),
        DatasetSpec("pizza_steak_sushi", pizza_steak_sushi_splits),
        DatasetSpec("cifar10", partial(torchvision_splits, "cifar10"), finetune_steps=10_000),
        DatasetSpec("cifar100", partial(torchvision_splits, "cifar100"), finetune_steps=10_000),
        DatasetSpec("food101", partial(torchvision_splits, "food101")),
        DatasetSpec("oxford_pets", partial(torchvision_splits, "oxford_pets"), finetune_steps=500),
        DatasetSpec("flowers102", partial(torchvision_splits, "flowers102"), finetune_steps=500),
    ]
}


def named_classes(name: str) -> tuple[str, tuple[str, ...]]:
    """`NAME[dog,cat]` -> (NAME, ("dog", "cat")): the data set and the classes it is cut to;
    (NAME, ()) for all of them."""
    base, _, listed = name.partition("[")
    classes = tuple(c.strip() for c in listed.removesuffix("]").split(",") if c.strip())
    if listed and (not listed.endswith("]") or not classes):
        raise DataError(f"{name!r}: name the classes as NAME[class,class,...], e.g. digits[3,7]")
    return base, classes


def image_folder(name: str) -> tuple[Path, tuple[str, ...]] | None:
    """`imagefolder:PATH` -> (PATH, ()); `imagefolder:PATH[dog,cat]` -> (PATH, those classes
    alone); None for any other dataset."""
    if not name.startswith(IMAGEFOLDER):
        return None
    path, classes = named_classes(name)
    return Path(path.removeprefix(IMAGEFOLDER)).expanduser(), classes


def only_classes(splits: Splits, classes: Sequence[str]) -> Splits:
    """An in-memory data set (digits) cut to `classes`, labelled from 0 in the order given."""
    unknown = sorted(set(classes) - set(splits.classes))
    if unknown:
        raise DataError(
            f"the data set has no class {', '.join(unknown)}; its classes: "
            + ", ".join(splits.classes)
        )
    old = torch.tensor([splits.classes.index(c) for c in classes])

    def cut(split: TensorDataset) -> TensorDataset:
        images, labels = split.tensors
        kept = torch.isin(labels, old)
        new = (labels[kept, None] == old).int().argmax(dim=1)  # old label -> its place in `old`
        return TensorDataset(images[kept], new)

    return Splits(cut(splits.train), cut(splits.test), list(classes))


def get_dataset_spec(name: str) -> DatasetSpec:
    """The spec of a named dataset, of `imagefolder:PATH` or of `wds:PATH`; `NAME[dog,cat]`
    keeps those classes alone (image folders and digits)."""
    if folder := image_folder(name):
        return DatasetSpec(name, lambda _: image_folder_splits(*folder), offline=True)
    if name.startswith(WDS):
        path = Path(name.removeprefix(WDS)).expanduser()
        return DatasetSpec(name, lambda _: wds_splits(path), offline=True)
    base, classes = named_classes(name)
    if base not in DATASETS:
        raise DataError(
            f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}, imagefolder:PATH "
            "or wds:PATH"
        )
    spec = DATASETS[base]
    if not classes:
        return spec
    if base != "digits":
        raise DataError(f"{name!r}: classes are chosen in image folders and digits only")
    return replace(
        spec, name=name, build=lambda data_dir: only_classes(spec.build(data_dir), classes)
    )


def load_splits(spec: DatasetSpec, data_dir: Path, verify: bool = False) -> Splits:
    """Build the splits; a dataset that is neither in `data_dir` nor downloadable is a DataError.
    `verify`: open and check every image file now rather than skip bad ones while training."""
    try:
        splits = spec.build(data_dir)
    except (OSError, RuntimeError) as error:  # URLError offline; torchvision's "not found"
        offline = ", ".join(s.name for s in DATASETS.values() if s.offline)
        raise DataError(
            f"dataset {spec.name!r} is not in --data-dir {data_dir} and could not be downloaded "
            f"({error}); copy it into --data-dir, or use a dataset that needs no network: "
            f"{offline}, imagefolder:PATH or wds:PATH"
        ) from error
    if verify:
        for split in (splits.train, splits.test):
            if isinstance(split, ImageFiles):
                verify_files(split.paths())
    return splits
