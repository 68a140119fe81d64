"""Datasets, device augmentation and batching for `replicate.train`."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import torch
from PIL import Image

from replicate.augment import Augmentation, resample
from replicate.data import (
    SquareImages,
    digits_splits,
    get_dataset_spec,
    image_folder_splits,
    load_splits,
)
from replicate.errors import DataError
from replicate.loader import ResidentImages, StreamedImages, epoch_indices


def write_image_folder(root: Path, per_class: int = 4, size: int = 20) -> Path:
    """Two classes a CNN separates at once: dark and bright images of random sizes, some grey."""
    generator = torch.Generator().manual_seed(0)
    for split in ("train", "val"):
        for label, name in enumerate(("dark", "bright")):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(per_class):
                base = 40 + 170 * label
                pixels = torch.randint(base, base + 40, (size + i, size, 3), generator=generator)
                image = Image.fromarray(pixels.to(torch.uint8).numpy())
                image = image.convert("L") if i % 2 else image  # grey images become RGB
                image.save(folder / f"{i}.png")
    return root


def test_digits_split_is_fixed_stratified_rgb() -> None:
    splits, again = digits_splits(Path()), digits_splits(Path())
    assert (len(splits.train), len(splits.test)) == (1437, 360)
    assert splits.classes == [str(d) for d in range(10)]
    image, label = splits.test[0]
    assert image.shape == (3, 8, 8) and image.dtype == torch.uint8
    assert torch.equal(image[0], image[2])  # grey as RGB
    assert torch.equal(splits.test.tensors[0], again.test.tensors[0])
    test_counts = torch.bincount(splits.test.tensors[1])
    all_counts = test_counts + torch.bincount(splits.train.tensors[1])
    assert torch.all((test_counts - all_counts * 0.2).abs() <= 1)  # stratified


def test_square_images_decodes_pil_and_tensors_to_uint8_rgb(tmp_path: Path) -> None:
    splits = image_folder_splits(write_image_folder(tmp_path))
    for dataset in (splits.train, digits_splits(Path()).train):
        image, label = SquareImages(dataset, 24)[1]
        assert image.shape == (3, 24, 24) and image.dtype == torch.uint8
        assert isinstance(label, int)


def test_image_folder_classes_and_splits(tmp_path: Path) -> None:
    splits = image_folder_splits(write_image_folder(tmp_path))
    assert splits.classes == ["bright", "dark"]
    assert (len(splits.train), len(splits.test)) == (8, 8)


def test_image_folder_reports_a_corrupt_image_by_path(tmp_path: Path) -> None:
    root = write_image_folder(tmp_path)
    bad = root / "train" / "dark" / "broken.jpg"
    bad.write_bytes(b"not a jpeg at all")
    with pytest.raises(DataError, match="broken.jpg"):
        image_folder_splits(root)


@pytest.mark.parametrize("layout", ["nothing", "no_val", "empty_classes"])
def test_image_folder_without_images_is_a_data_error(tmp_path: Path, layout: str) -> None:
    if layout == "no_val":
        write_image_folder(tmp_path)
        for path in sorted((tmp_path / "val").rglob("*"), reverse=True):
            path.unlink() if path.is_file() else path.rmdir()
        (tmp_path / "val").rmdir()
    elif layout == "empty_classes":
        (tmp_path / "train" / "a").mkdir(parents=True)
        (tmp_path / "val" / "a").mkdir(parents=True)
    with pytest.raises(DataError, match="train|images"):
        image_folder_splits(tmp_path)


def test_unknown_dataset_names_the_choices() -> None:
    with pytest.raises(DataError, match="digits.*imagefolder:PATH"):
        get_dataset_spec("mnist")


def test_missing_dataset_offline_names_data_dir_and_offline_datasets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_network(*args, **kwargs):
        raise socket.gaierror("Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    with pytest.raises(DataError, match=f"--data-dir {tmp_path}.*digits"):
        load_splits(get_dataset_spec("cifar10"), tmp_path)


def test_identity_warp_is_the_evaluation_view() -> None:
    images = torch.randint(0, 256, (4, 3, 16, 16), dtype=torch.uint8)
    augmentation = Augmentation((0.5, 0.4, 0.3), (0.25, 0.2, 0.1))
    identity = torch.eye(2, 3).expand(4, 2, 3)
    torch.testing.assert_close(resample(images, identity), images.float(), atol=1e-3, rtol=0)
    expected = (images[1, 2].float() / 255 - 0.3) / 0.1
    torch.testing.assert_close(augmentation.eval(images)[1, 2], expected)


def test_crops_keep_their_area_stay_inside_and_half_are_mirrored() -> None:
    augmentation = Augmentation((0.0,) * 3, (1.0,) * 3, flip=True, crop_scale=(0.25, 0.5))
    theta = augmentation.crop_transforms(64, torch.Generator().manual_seed(0))
    mirrored = theta[:, 0, 0] < 0
    assert 10 < mirrored.sum() < 54  # about half
    area = theta[:, 0, 0].abs() * theta[:, 1, 1]
    assert torch.all(area <= 0.5 + 1e-6)
    assert torch.all(theta[:, 0, 2].abs() <= 1 - theta[:, 0, 0].abs() + 1e-6)  # inside


def test_augmentation_depends_on_the_generator_only() -> None:
    images = torch.randint(0, 256, (8, 3, 16, 16), dtype=torch.uint8)
    augmentation = Augmentation((0.5,) * 3, (0.5,) * 3)
    first = augmentation.train(images, torch.Generator().manual_seed(3))
    torch.manual_seed(123)  # the global generator plays no part
    assert torch.equal(first, augmentation.train(images, torch.Generator().manual_seed(3)))
    assert not torch.equal(first, augmentation.train(images, torch.Generator().manual_seed(4)))


def test_epoch_indices_shuffle_by_seed_and_epoch_and_shard_without_overlap() -> None:
    def indices(**kw):
        return epoch_indices(10, **{"seed": 0, "epoch": 0, "rank": 0, "world_size": 1, **kw})

    assert indices(shuffle=True) == indices(shuffle=True)
    assert indices(shuffle=True) != indices(shuffle=True, epoch=1)
    assert sorted(indices(shuffle=True)) == list(range(10))
    shards = [indices(shuffle=True, rank=r, world_size=2) for r in (0, 1)]
    assert sorted(shards[0] + shards[1]) == list(range(10))
    assert indices(shuffle=False, rank=1, world_size=3) == [1, 4, 7]


def test_resident_and_streamed_batches_are_the_same(tmp_path: Path) -> None:
    dataset = SquareImages(image_folder_splits(write_image_folder(tmp_path)).train, 16)
    order = [5, 0, 7, 2, 3]
    resident = ResidentImages.decode(dataset, torch.device("cpu"), workers=0)
    streamed = StreamedImages(dataset, torch.device("cpu"), workers=1)
    pairs = zip(resident.batches(order, 2), streamed.batches(order, 2), strict=True)
    for (a, la), (b, lb) in pairs:
        assert torch.equal(a, b) and torch.equal(la, lb)
