"""Datasets, device augmentation and batching for `replicate.train`."""

from __future__ import annotations

import io
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import time
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import SHARED_DATA, needs_shared_data
from PIL import Image
from PIL.JpegImagePlugin import JpegImageFile
from torch.utils.data import TensorDataset
from torchvision.transforms.v2 import functional as TF

from replicate.data import images as images_module
from replicate.data.augment import (
    Augmentation,
    Crop,
    InceptionCrop,
    crop_resize,
    crop_resize_batch,
    crop_seeds,
    pad_crop,
)
from replicate.data.datasets import (
    digits_splits,
    get_dataset_spec,
    image_folder_splits,
    load_splits,
)
from replicate.data.images import (
    SquareImages,
    decode_crop,
    decode_file,
    load_image,
    verify_files,
)
from replicate.data.loader import (
    Crops,
    ResidentImages,
    StreamedImages,
    epoch_indices,
    place,
    remove_orphaned_files,
    stored_side,
)
from replicate.errors import DataError
from replicate.runtime import Runtime

REPO = Path(__file__).resolve().parents[1]


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


def test_an_image_folder_can_keep_some_of_its_classes(tmp_path: Path) -> None:
    """`imagefolder:PATH[bright]` reads that class alone, labelled from 0 in the order given;
    an unknown class or an unclosed list is one line naming it."""
    root = write_image_folder(tmp_path)
    for extra in ("grey", "red"):
        for split in ("train", "val"):
            shutil.copytree(root / split / "dark", root / split / extra)
    splits = load_splits(get_dataset_spec(f"imagefolder:{root}[red, bright]"), tmp_path)
    assert splits.classes == ["red", "bright"]
    assert sorted(set(splits.train.targets)) == [0, 1] and len(splits.test) == 8
    assert all(Path(path).parent.name in ("red", "bright") for path, _ in splits.train.samples)
    with pytest.raises(DataError, match="has no class blue; its classes: bright, dark, grey, red"):
        load_splits(get_dataset_spec(f"imagefolder:{root}[blue]"), tmp_path)
    with pytest.raises(DataError, match=r"imagefolder:.*\[red': name the classes as NAME\[class"):
        get_dataset_spec(f"imagefolder:{root}[red")


def test_digits_can_keep_some_of_their_classes(tmp_path: Path) -> None:
    """`digits[7,3]`: those digits alone, relabelled 0 and 1 in the order given."""
    full = load_splits(get_dataset_spec("digits"), tmp_path)
    spec = get_dataset_spec("digits[7,3]")
    splits = load_splits(spec, tmp_path)
    assert spec.name == "digits[7,3]" and splits.classes == ["7", "3"]
    for cut, whole in ((splits.train, full.train), (splits.test, full.test)):
        images, labels = cut.tensors
        kept = torch.isin(whole.tensors[1], torch.tensor([7, 3]))
        assert torch.equal(images, whole.tensors[0][kept])
        assert torch.equal(labels, (whole.tensors[1][kept] == 3).long())  # 7 -> 0, 3 -> 1
    with pytest.raises(DataError, match="has no class 12; its classes: 0, 1, 2"):
        load_splits(get_dataset_spec("digits[12]"), tmp_path)
    with pytest.raises(DataError, match="image folders and digits only"):
        get_dataset_spec("cifar10[cat]")


def test_verify_images_reports_a_corrupt_image_by_path(tmp_path: Path) -> None:
    root = write_image_folder(tmp_path)
    bad = root / "train" / "dark" / "broken.jpg"
    bad.write_bytes(b"not a jpeg at all")
    spec = get_dataset_spec(f"imagefolder:{root}")
    with pytest.raises(DataError, match="broken.jpg"):
        load_splits(spec, tmp_path, verify=True)


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
    with pytest.raises(DataError, match="digits.*imagefolder:PATH or wds:PATH"):
        get_dataset_spec("mnist")


def test_missing_dataset_offline_names_data_dir_and_offline_datasets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_network(*args, **kwargs):
        raise socket.gaierror("Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    with pytest.raises(DataError, match=f"--data-dir {tmp_path}.*digits"):
        load_splits(get_dataset_spec("cifar10"), tmp_path)


def test_inception_crop_follows_the_reference_rule() -> None:
    """sample_distorted_bounding_box: area in (0.05, 1) of the original, aspect (width/height)
    in (0.75, 1.33), inside the image; a seed gives one crop; half are mirrored."""
    policy = InceptionCrop()
    crops = [policy.sample(375, 500, seed) for seed in range(400)]
    areas = torch.tensor([c.height * c.width / (375 * 500) for c in crops])
    aspects = torch.tensor([c.width / c.height for c in crops])
    assert areas.min() >= 0.05 - 1e-3 and areas.max() <= 1 and areas.min() < 0.1
    assert aspects.min() >= 0.75 - 0.01 and aspects.max() <= 1.33 + 0.01
    assert all(c.top + c.height <= 375 and c.left + c.width <= 500 for c in crops)
    assert 150 < sum(c.mirror for c in crops) < 250
    assert policy.sample(375, 500, 7) == policy.sample(375, 500, 7) != policy.sample(375, 500, 8)
    assert not any(c.mirror for c in (InceptionCrop(flip=False).sample(9, 9, s) for s in range(20)))
    whole = InceptionCrop(area=(0.9, 1.0)).sample(1, 1, 0)  # no box fits: the whole image
    assert (whole.top, whole.left, whole.height, whole.width) == (0, 0, 1, 1)


def test_crop_is_cut_from_the_original_then_resized() -> None:
    image = torch.arange(40 * 60, dtype=torch.float32).view(1, 40, 60).expand(3, -1, -1)
    image = (image * 255 / image.max()).to(torch.uint8)
    crop = Crop(top=10, left=20, height=20, width=30, mirror=False)
    out = crop_resize(image, crop, 10)
    expected = TF.resize(image[:, 10:30, 20:50], [10, 10], antialias=False)
    assert out.shape == (3, 10, 10) and torch.equal(out, expected)
    mirrored = crop_resize(image, Crop(10, 20, 20, 30, mirror=True), 10)
    assert torch.equal(mirrored, expected.flip(-1))


@pytest.mark.parametrize("mirror", [False, True])
@pytest.mark.parametrize("box", [(4, 6, 20, 30), (0, 0, 40, 60)])  # smaller, larger than S x S
def test_crops_come_out_channels_last_from_a_decoder_s_layout(box, mirror: bool) -> None:
    """Decoders give (3, H, W) views of (H, W, 3) memory; the crop of such a view, mirrored or
    not, has the values of the planar image's crop and comes out in channels-last memory, which
    the loader stacks without transposing."""
    planar = torch.randint(0, 256, (3, 40, 60), generator=torch.Generator().manual_seed(0))
    planar = planar.to(torch.uint8)
    decoded = planar.permute(1, 2, 0).contiguous().permute(2, 0, 1)
    crop = Crop(*box, mirror=mirror)
    out = crop_resize(decoded, crop, 24)
    assert torch.equal(out, crop_resize(planar, crop, 24))
    assert out.permute(1, 2, 0).is_contiguous()


def test_batched_crops_of_a_stored_copy_match_the_crops_of_the_originals() -> None:
    """Where the stored copy is the original (R = H = W), the device's one grid_sample over the
    batch cuts the same box as the workers' slice-and-resize; only the box's border pixels
    differ (grid_sample reads beyond the box, the slice cannot)."""
    ramp = torch.linspace(0, 255, 24)
    images = torch.stack([(ramp[:, None] * 0.5 + ramp[None, :] * 0.5 * k / 4).expand(3, 24, 24)
                          for k in range(4)]).round().to(torch.uint8)  # fmt: skip
    policy = InceptionCrop(area=(0.3, 1.0))
    crops = [policy.sample(24, 24, seed) for seed in range(4)]
    sizes = torch.tensor([[24, 24]] * 4)
    batched = crop_resize_batch(images, crops, sizes, 16).int()
    single = torch.stack([crop_resize(i, c, 16) for i, c in zip(images, crops, strict=True)]).int()
    assert (batched - single)[..., 1:-1, 1:-1].abs().max() <= 1
    assert (batched - single).abs().float().mean() < 1


def test_a_large_jpeg_is_decoded_at_a_reduced_scale_when_the_crop_allows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ramp = torch.linspace(0, 255, 800)
    pixels = torch.stack([ramp[:, None].expand(800, 600), ramp[None, :600].expand(800, 600),
                          torch.full((800, 600), 128.0)], dim=-1)  # fmt: skip
    path = tmp_path / "large.jpg"
    Image.fromarray(pixels.round().to(torch.uint8).numpy()).save(path, quality=95)
    drafts = []
    draft = JpegImageFile.draft
    monkeypatch.setattr(
        JpegImageFile, "draft", lambda self, *a: drafts.append(a) or draft(self, *a)
    )
    policy = InceptionCrop(area=(0.5, 1.0))
    data = path.read_bytes()
    full = decode_file(str(path))
    for seed in range(3):
        reduced = decode_crop(data, "large.jpg", policy, seed, 64).int()
        exact = crop_resize(full, policy.sample(800, 600, seed), 64).int()
        assert reduced.shape == (3, 64, 64) and (reduced - exact).abs().float().mean() < 3
    assert len(drafts) == 3  # 1/4 or 1/2 scale, never below 64 pixels a side of the box
    assert decode_crop(data, "large.jpg", policy, 0, 300).shape == (3, 300, 300)
    assert len(drafts) == 3  # a box under 600 pixels a side: decoded whole


def test_every_decode_path_turns_an_image_as_its_exif_orientation_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A phone photo held upright (orientation 6): TorchCodec, torchvision, PIL's `load_image`
    and the reduced-scale crop of a large JPEG all see the same upright pixels."""
    pixels = torch.randint(0, 256, (600, 800, 3), dtype=torch.uint8).numpy()
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to view
    path = tmp_path / "phone.jpg"
    Image.fromarray(pixels).save(path, quality=95, exif=exif)
    data = path.read_bytes()
    upright = decode_file(str(path))
    assert upright.shape == (3, 800, 600)  # turned: taller than wide
    torch.testing.assert_close(images_module._torchvision_decode(data), upright, atol=2, rtol=0)
    assert load_image(str(path)).size == (600, 800)
    policy = InceptionCrop(area=(0.9, 1.0), flip=False)
    crop = decode_crop(data, "phone.jpg", policy, seed=0, size=64)  # a 1/4-scale decode if not
    exact = crop_resize(upright, policy.sample(800, 600, 0), 64)
    assert (crop.int() - exact.int()).abs().float().mean() < 1


def test_one_pixel_limit_on_every_decode_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PIL's decompression-bomb limit, which load_image and --verify-images apply, holds for
    TorchCodec's and torchvision's decodes too: a huge PNG in a class folder is refused, named."""
    path = tmp_path / "huge.png"
    Image.new("RGB", (40, 30)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 500)  # 1,200 pixels > 2 x 500
    for read in (decode_file, load_image):
        with pytest.raises(DataError, match="cannot read image .*huge.png.*exceeds limit"):
            read(str(path))
    with pytest.raises(DataError, match="huge.png"):
        verify_files([str(path)])


def test_crop_seeds_depend_on_the_generator_only() -> None:
    first = crop_seeds(torch.Generator().manual_seed(3), 8)
    torch.manual_seed(123)  # the global generator plays no part
    assert first == crop_seeds(torch.Generator().manual_seed(3), 8)
    assert first != crop_seeds(torch.Generator().manual_seed(4), 8)


def test_pad_crop_cuts_windows_of_the_zero_padded_images_mirrored_half_the_time() -> None:
    """Against the plain reading of He et al.'s crop: pad by 4, slice a 32x32 window, flip."""
    images = torch.randint(1, 256, (64, 3, 32, 32), dtype=torch.uint8)
    out = pad_crop(images, torch.Generator().manual_seed(0))
    padded = torch.nn.functional.pad(images, (4, 4, 4, 4))
    windows = padded.unfold(2, 32, 1).unfold(3, 32, 1)  # (B, 3, 9, 9, 32, 32): every offset
    mirrored = 0
    for image, window in zip(out, windows.permute(0, 2, 3, 1, 4, 5).flatten(1, 2), strict=True):
        plain = (window == image).flatten(1).all(1)
        flipped = (window.flip(-1) == image).flatten(1).all(1)
        assert plain.any() or flipped.any()
        mirrored += bool(flipped.any() and not plain.any())
    assert 16 < mirrored < 48  # about half of 64
    again = pad_crop(images, torch.Generator().manual_seed(0))
    assert torch.equal(out, again) and not torch.equal(out, pad_crop(images, torch.Generator()))
    unflipped = pad_crop(images, torch.Generator().manual_seed(0), flip=False)
    assert (unflipped == 0).sum() > 0 and out.shape == images.shape


def test_normalisation() -> None:
    images = torch.randint(0, 256, (4, 3, 16, 16), dtype=torch.uint8)
    augmentation = Augmentation((0.5, 0.4, 0.3), (0.25, 0.2, 0.1))
    expected = (images[1, 2].float() / 255 - 0.3) / 0.1
    torch.testing.assert_close(augmentation.normalise(images)[1, 2], expected)


def test_epoch_indices_shuffle_by_seed_and_epoch_and_shard_without_overlap() -> None:
    def indices(**kw):
        return epoch_indices(10, **{"seed": 0, "epoch": 0, "rank": 0, "world_size": 1, **kw})

    assert indices(shuffle=True) == indices(shuffle=True)
    assert indices(shuffle=True) != indices(shuffle=True, epoch=1)
    assert sorted(indices(shuffle=True)) == list(range(10))
    shards = [indices(shuffle=True, rank=r, world_size=2) for r in (0, 1)]
    assert sorted(shards[0] + shards[1]) == list(range(10))
    assert indices(shuffle=False, rank=1, world_size=3) == [1, 4, 7]


def cpu() -> Runtime:
    return Runtime(torch.device("cpu"), rank=0, world_size=1, precision="fp32")


def test_evaluation_batches_are_the_same_resident_and_streamed(tmp_path: Path) -> None:
    test = image_folder_splits(write_image_folder(tmp_path)).test
    order = [5, 0, 7, 2, 3]
    resident = place(test, 16, cpu(), "device", workers=0)
    streamed = place(test, 16, cpu(), "stream", workers=1)
    assert isinstance(resident, ResidentImages) and isinstance(streamed, StreamedImages)
    pairs = zip(resident.batches(order, 2), streamed.batches(order, 2), strict=True)
    for (a, la), (b, lb) in pairs:
        assert a.shape == (len(la), 3, 16, 16) and torch.equal(a, b) and torch.equal(la, lb)
        assert b.is_contiguous(memory_format=torch.channels_last)  # stacked as (B, S, S, 3)


def test_training_crops_resident_and_streamed_share_their_boxes(tmp_path: Path) -> None:
    """Same seeds, same boxes: the resident copy (stored at the originals' size here) and the
    streamed originals give crops that differ by resampling at the box borders only."""
    ramp = torch.linspace(0, 255, 24)
    images = torch.stack([(ramp[:, None] * k / 6 + ramp[None, :] * (6 - k) / 6).expand(3, 24, 24)
                          for k in range(6)]).round().to(torch.uint8)  # fmt: skip
    dataset = TensorDataset(images, torch.arange(6))
    policy = InceptionCrop(area=(0.3, 1.0))
    resident = place(dataset, 16, cpu(), "device", workers=0, policy=policy)
    streamed = place(dataset, 16, cpu(), "stream", workers=0, policy=policy)
    assert resident.images.shape == (6, 3, 24, 24)  # R = min(2 S, 24)
    crops = Crops(policy, crop_seeds(torch.Generator().manual_seed(0), 6))
    order = [4, 1, 5, 0, 2, 3]
    (a, la), (b, lb) = (next(s.batches(order, 6, crops)) for s in (resident, streamed))
    assert torch.equal(la, lb) and torch.equal(la, torch.tensor(order))
    assert (a.int() - b.int())[..., 1:-1, 1:-1].abs().max() <= 1


def test_resident_training_images_are_stored_at_twice_the_size_at_most(tmp_path: Path) -> None:
    train = image_folder_splits(write_image_folder(tmp_path, size=40)).train  # 40-43 x 40
    assert stored_side(train, 16, workers=0) == 32
    assert stored_side(train, 32, workers=0) == 43
    resident = place(train, 16, cpu(), "device", workers=0, policy=InceptionCrop())
    assert resident.images.shape == (8, 3, 32, 32)
    assert resident.sizes.tolist()[1] == [41, 40]


@pytest.mark.parametrize("placement", ["device", "stream"])
def test_an_unreadable_image_is_skipped_and_named(
    tmp_path: Path, placement: str, caplog: pytest.LogCaptureFixture
) -> None:
    root = write_image_folder(tmp_path)
    (root / "train" / "dark" / "broken.jpg").write_bytes(b"not a jpeg at all")
    train = load_splits(get_dataset_spec(f"imagefolder:{root}"), tmp_path).train  # no error
    assert len(train) == 9
    source = place(train, 16, cpu(), placement, workers=0, policy=InceptionCrop())
    order = list(range(len(source)))  # 8 resident, 9 streamed
    batches = list(source.batches(order, 4, Crops(InceptionCrop(), order)))
    assert [r.message for r in caplog.records if "broken.jpg" in r.message] == [
        f"skipped an unreadable image: {next(iter(source.skipped))}"
    ]
    assert sum(len(labels) for _, labels in batches) == 8
    assert len(source.skipped) == 1 and "broken.jpg" in next(iter(source.skipped))


@needs_shared_data
def test_wds_shards_of_the_photos(tmp_path: Path) -> None:
    """ants and bees photos written as WebDataset shards (key.jpg + key.cls), read back by
    seek and read: the same images and labels as the files."""
    photos = SHARED_DATA / "hymenoptera_data"
    classes = ["ants", "bees"]
    files: dict[str, list[tuple[Path, int]]] = {"train": [], "val": []}
    for split in files:
        for label, name in enumerate(classes):
            files[split] += [(p, label) for p in sorted((photos / split / name).glob("*"))[:3]]
        (tmp_path / split).mkdir()
        for shard in range(2):  # two shards per split, three samples each
            with tarfile.open(tmp_path / split / f"{split}-{shard:06d}.tar", "w") as tar:
                for i, (path, label) in enumerate(files[split][shard::2]):
                    key = f"{shard:03d}{i:03d}"
                    tar.add(path, arcname=f"{key}.jpg")
                    info = tarfile.TarInfo(f"{key}.cls")
                    info.size = len(str(label))
                    tar.addfile(info, io.BytesIO(str(label).encode()))
    (tmp_path / "classes.txt").write_text("ants\nbees\n")
    splits = load_splits(get_dataset_spec(f"wds:{tmp_path}"), tmp_path)
    assert splits.classes == classes and (len(splits.train), len(splits.test)) == (6, 6)
    expected = files["val"][0::2] + files["val"][1::2]  # shard 0, then shard 1
    for index, (path, label) in enumerate(expected):
        image, got = splits.test[index]
        assert got == label and torch.equal(image, decode_file(str(path)))
    streamed = place(splits.train, 32, cpu(), "stream", workers=2, policy=InceptionCrop())
    crops = Crops(InceptionCrop(), list(range(6)))
    ((images, labels),) = streamed.batches(list(range(6)), 6, crops)
    assert images.shape == (6, 3, 32, 32) and sorted(labels.tolist()) == [0, 0, 0, 1, 1, 1]


def test_a_shard_label_below_zero_is_a_data_error_naming_it(tmp_path: Path) -> None:
    for split in ("train", "val"):
        (tmp_path / split).mkdir()
        with tarfile.open(tmp_path / split / "000000.tar", "w") as tar:
            for key, label in (("a", b"0"), ("b", b"-1")):
                png = io.BytesIO()
                Image.new("RGB", (8, 8)).save(png, format="PNG")
                for name, data in ((f"{key}.png", png.getvalue()), (f"{key}.cls", label)):
                    info = tarfile.TarInfo(name)
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
    with pytest.raises(DataError, match=r"000000.tar: b.cls holds the label -1, below 0"):
        load_splits(get_dataset_spec(f"wds:{tmp_path}"), tmp_path)


def test_wds_without_shards_is_a_data_error(tmp_path: Path) -> None:
    (tmp_path / "train").mkdir()
    (tmp_path / "val").mkdir()
    with pytest.raises(DataError, match="no .tar shards"):
        load_splits(get_dataset_spec(f"wds:{tmp_path}"), tmp_path)


@pytest.mark.parametrize("placement", ["device", "stream"])
def test_16_bit_images_are_scaled_to_8_bits_not_clipped(tmp_path: Path, placement: str) -> None:
    """A 16-bit grey PNG (a gradient over 0..65535): its top byte everywhere the project reads
    images, in training (both placements) and in predict's PIL view; PIL's own convert("RGB")
    would make nearly every pixel 255."""
    root = write_image_folder(tmp_path)
    gradient = (np.arange(32 * 32, dtype=np.uint32).reshape(32, 32) * 64).astype(np.uint16)
    path = root / "train" / "bright" / "deep.png"
    Image.fromarray(gradient).save(path)
    expected = torch.from_numpy((gradient >> 8).astype(np.uint8)).expand(3, -1, -1)
    for decoded in (decode_file(str(path)), TF.pil_to_tensor(load_image(str(path)))):
        assert decoded.dtype == torch.uint8  # the top byte, or rounded: within one level
        assert (decoded.int() - expected.int()).abs().max() <= 1
    train = load_splits(get_dataset_spec(f"imagefolder:{root}"), tmp_path).train
    source = place(train, 16, cpu(), placement, workers=0)
    images = torch.cat([batch for batch, _ in source.batches(range(len(source)), 9)])
    assert images.dtype == torch.uint8 and len(images) == 9 and not source.skipped


@pytest.mark.parametrize("target", ["..", "."])
def test_a_folder_link_out_of_its_class_or_into_a_loop_is_refused(
    tmp_path: Path, target: str
) -> None:
    """`train/dark/up -> ..` would list the bright images as dark; `-> .` would loop. A link to
    a folder inside the class folder and links to image files are listed as usual."""
    root = write_image_folder(tmp_path)
    (root / "train" / "dark" / "more").mkdir()
    (root / "train" / "dark" / "more" / "1.png").symlink_to(root / "train" / "bright" / "1.png")
    (root / "train" / "dark" / "alias").symlink_to("more")
    assert len(image_folder_splits(root).train) == 10  # 4 + 4, more/1.png and alias/1.png
    (root / "train" / "dark" / "up").symlink_to(target)
    with pytest.raises(DataError, match=r"train/dark/up links to .*(outside its class folder|a "
                       r"folder that holds it).*remove the link"):  # fmt: skip
        image_folder_splits(root)


SLOW_DECODE = """
import sys, time
from pathlib import Path
from torch.utils.data import Dataset
from replicate.data import loader

class Slow(Dataset):
    def __len__(self):
        return 64

    def __getitem__(self, index):
        print("decoding", flush=True)
        time.sleep(120)

loader.SHARED_DIR = Path(sys.argv[1])
loader._decode_to_file(Slow(), 8, workers=2)
"""


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads Linux's /proc")
def test_a_run_killed_while_it_decodes_leaves_no_worker_and_no_file(tmp_path: Path) -> None:
    """SIGKILL during the start-up decode: its DataLoader workers die with it, and the next
    decode removes the shared-memory file it left (a live process's file is kept)."""
    process = subprocess.Popen(
        [sys.executable, "-c", SLOW_DECODE, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout.readline() == "decoding\n"  # a worker is decoding
    proc = Path(f"/proc/{process.pid}/task/{process.pid}/children")
    workers = [int(pid) for pid in proc.read_text().split()]
    assert len(workers) >= 2 and len(list(tmp_path.glob("vit-replicate-*.npy"))) == 1
    process.kill()
    process.wait()
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{pid}").exists() for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in workers if Path(f"/proc/{pid}").exists()], "orphaned workers"
    live = tmp_path / f"vit-replicate-{os.getpid()}-0.npy"
    live.touch()
    remove_orphaned_files(tmp_path)
    assert list(tmp_path.glob("vit-replicate-*.npy")) == [live]


@pytest.mark.parametrize("decoder", ["torchvision", "torchcodec"])
def test_both_decoders_read_the_same_images(
    tmp_path: Path, decoder: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """TorchCodec's decoder where installed, torchvision's otherwise: the same pixels for a
    JPEG and a grey PNG; a BMP (neither reads it) through PIL; a corrupt file named."""
    from replicate.data import images as data

    if decoder == "torchcodec":
        decodes = pytest.importorskip("torchcodec.decoders", reason="torchcodec is not installed")
        monkeypatch.setattr(
            data, "image_decoder", lambda: partial(decodes.decode_image, mode="RGB")
        )
    else:
        monkeypatch.setattr(data, "image_decoder", lambda: data._torchvision_decode)
    pixels = torch.randint(0, 256, (20, 30, 3), generator=torch.Generator().manual_seed(0))
    photo = Image.fromarray(pixels.to(torch.uint8).numpy())
    for name, image in (("a.jpg", photo), ("b.png", photo.convert("L")), ("c.bmp", photo)):
        image.save(tmp_path / name)
        with Image.open(tmp_path / name) as reference:  # PIL: libjpeg-turbo, as both decoders
            expected = TF.pil_to_tensor(reference.convert("RGB"))
        assert torch.equal(decode_file(str(tmp_path / name)), expected), (decoder, name)
    (tmp_path / "d.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    with pytest.raises(DataError, match="cannot read image .*d.png"):
        decode_file(str(tmp_path / "d.png"))
