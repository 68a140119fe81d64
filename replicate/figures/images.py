"""Input images for Figure 1, Figure 6 and the attention statistics of Figure 7.

From a folder of images (`--images DIR`, e.g. an ImageFolder split; by default the test split of
a run's `imagefolder:PATH` dataset), or else scikit-learn's bundled handwritten digits, which
every install has: 8x8 grey digits scaled up to the model's resolution, not photographs, so the
titles say so. Images are resized to S x S as `replicate.data.images` shows them to the model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, Subset

from replicate.data.datasets import digits_splits, image_folder
from replicate.data.images import SquareImages, load_image

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


@dataclass(frozen=True)
class ImageSet:
    images: torch.Tensor  # (n, 3, S, S) in [0, 1], not normalised: what is shown
    label: str  # for titles: "8 images from val/", "8 scikit-learn digits (8x8 -> 224x224)"
    classes: tuple[str, ...] = ()  # each image's true class: its folder's name, or the digit

    def normalised(self, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
        """The model's input: (image - mean) / std per channel."""
        from torchvision.transforms import functional as TF

        return TF.normalize(self.images, list(mean), list(std))

    def batches(
        self, mean: tuple[float, ...], std: tuple[float, ...], size: int = 8
    ) -> tuple[torch.Tensor, ...]:
        """The normalised images in batches of `size`."""
        return self.normalised(mean, std).split(size)


def _spread(count: int, num: int) -> np.ndarray:
    """`num` indices spread evenly over `count` items, so that sorted class folders all show."""
    return np.unique(np.linspace(0, count - 1, num=min(num, count)).round().astype(int))


def folder_images(
    folder: str | Path, num: int, image_size: int, classes: Sequence[str] = ()
) -> ImageSet:
    """Up to `num` images found under `folder` (recursively; with `classes`, in those class
    folders alone), resized to image_size x image_size."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"image folder {str(folder)!r} does not exist")
    paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES
                   and (not classes or p.parent.name in classes))  # fmt: skip
    if not paths:
        raise ValueError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) under {folder}")
    spread = [paths[i] for i in _spread(len(paths), num)]
    images = as_shown_to_the_model([(load_image(str(path)), 0) for path in spread], image_size)
    classes = tuple(path.parent.name for path in spread)  # an ImageFolder's class folders
    return ImageSet(images, f"{len(images)} images from {folder.name}/", classes)


def run_dataset_folder(dataset: str | None) -> tuple[Path, tuple[str, ...]] | None:
    """The test images of a run's `imagefolder:PATH` dataset (PATH/val or PATH/test), if they
    are on this machine, and the classes the run kept (none: all)."""
    found = image_folder(dataset) if dataset else None
    if found is None:
        return None
    root, classes = found
    test = next((root / split for split in ("val", "test") if (root / split).is_dir()), None)
    return (test, classes) if test else None


def digit_images(num: int, image_size: int) -> ImageSet:
    """`num` of scikit-learn's 8x8 test digits as RGB, scaled up to the model's size."""
    test = digits_splits(Path()).test
    chosen = Subset(test, _spread(len(test), num).tolist())
    images = as_shown_to_the_model(chosen, image_size)
    label = f"{len(images)} scikit-learn digits (8x8 -> {image_size}x{image_size})"
    return ImageSet(images, label, tuple(str(int(chosen[i][1])) for i in range(len(chosen))))


def as_shown_to_the_model(images: Dataset, image_size: int) -> torch.Tensor:
    """(image, label) pairs -> (n, 3, S, S) in [0, 1], resized as `SquareImages` does it."""
    square = SquareImages(images, image_size)
    return torch.stack([square[i][0] for i in range(len(square))]).float() / 255
