"""Images and splits: the (image, label) pairs a dataset yields, the image as it was stored (a PIL
image, or a uint8 tensor that `decode_file` decoded); `as_rgb_tensor` makes any of them uint8 RGB
(3, H, W). Image files are listed, not opened, before training (`ImageFiles`): a file that cannot
be decoded is skipped by `replicate.data.loader` when it is met, and reported with its path.
The named datasets and how each is built: `replicate.data.datasets`.
"""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache, partial
from pathlib import Path

import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torch import Tensor
from torch.utils.data import Dataset, Subset

from replicate.data.augment import Crop, InceptionCrop, crop_resize, resize
from replicate.errors import DataError

DRAFT_BITS_PER_PIXEL = 0.5  # below it, a file is too small to be worth a reduced decode
EXIF_ORIENTATION = 0x0112  # the EXIF tag of how the camera was held


@dataclass(frozen=True)
class Splits:
    train: Dataset  # (PIL image or uint8 CHW tensor, label) pairs
    test: Dataset
    classes: list[str]


def test_folder(root: Path, kind: str, holding: str) -> Path:
    test_dir = next((root / d for d in ("val", "test") if (root / d).is_dir()), None)
    if not (root / "train").is_dir() or test_dir is None:
        raise DataError(
            f"{kind} {root} needs a train/ and a val/ (or test/) folder, each with {holding}"
        )
    return test_dir


def matching_splits(root: Path, train: Dataset, test: Dataset, test_name: str) -> Splits:
    if train.classes != test.classes:
        raise DataError(
            f"{root}: train/ has classes {train.classes} but {test_name}/ has {test.classes}"
        )
    return Splits(train, test, train.classes)


class ImageFiles(Dataset):
    """(uint8 (3, H, W) image, label) pairs from a list of files, decoded when asked for."""

    def __init__(self, samples: list[tuple[str, int]], classes: list[str]) -> None:
        self.samples, self.classes = samples, classes
        self.targets = [label for _, label in samples]

    @classmethod
    def scan(cls, folder: Path, only: Sequence[str] = ()) -> ImageFiles:
        """The files of `folder/CLASS/...` with an image extension, listed without opening them;
        with `only`, of those classes alone, labelled in that order."""
        from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes, make_dataset

        try:
            classes, class_to_idx = find_classes(str(folder))
            if only:
                unknown = [name for name in only if name not in class_to_idx]
                if unknown:
                    raise DataError(
                        f"{folder} has no class {', '.join(unknown)}; its classes: "
                        f"{', '.join(classes)}"
                    )
                classes, class_to_idx = list(only), {name: i for i, name in enumerate(only)}
            for name in classes:
                _check_links(folder / name)
            samples = make_dataset(str(folder), class_to_idx, extensions=IMG_EXTENSIONS)
        except FileNotFoundError as error:  # no class folders, or no images in them
            raise DataError(f"no images in {folder}: {error}") from error
        return cls(samples, classes)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        path, label = self.samples[index]
        return decode_file(path), label

    def encoded(self, index: int) -> tuple[bytes, str, int]:
        """The file's bytes, its path and the label, for a decoder that wants them."""
        path, label = self.samples[index]
        return _read(path), path, label

    def image_size(self, index: int) -> tuple[int, int]:
        """(H, W) from the file's header, without decoding it."""
        path = self.samples[index][0]
        try:
            with Image.open(path) as image:
                return image.height, image.width
        except (OSError, Image.DecompressionBombError) as error:
            raise DataError(f"cannot read image {path}: {error}") from error

    def paths(self) -> list[str]:
        return [path for path, _ in self.samples]


def _check_links(class_folder: Path) -> None:
    """A symlinked folder inside a class folder must stay inside it and lead to no folder above
    it: a link out (`up -> ..`) would list other classes' images under this label, and a link
    to an enclosing folder loops."""
    root = class_folder.resolve()
    for folder, _, _ in os.walk(class_folder, followlinks=True):
        real, parent = Path(folder).resolve(), Path(folder).parent.resolve()
        outside = not real.is_relative_to(root)
        if outside or parent.is_relative_to(real):
            where = "outside its class folder" if outside else "a folder that holds it"
            raise DataError(
                f"{folder} links to {real}, {where}: its images would be listed under the wrong "
                "label or without end; remove the link, or link the image files themselves"
            )


def decode_file(path: str) -> Tensor:
    """uint8 RGB (3, H, W): `image_decoder`'s decode straight to a tensor; PIL for the formats
    it does not read (BMP, TIFF, ...). Fails naming the file."""
    return decode_bytes(_read(path), path)


def _read(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as error:
        raise DataError(f"cannot read image {path}: {error}") from error


def decode_bytes(data: bytes, name: str) -> Tensor:
    """uint8 RGB (3, H, W) of an encoded image; 16-bit images scaled to 8 bits, not clipped."""
    from torchvision.transforms.v2.functional import to_dtype

    if not data:
        raise DataError(f"cannot read image {name}: the file is empty")
    refuse_decompression_bomb(data, name)
    try:
        return to_dtype(image_decoder()(data), torch.uint8, scale=True)
    except (RuntimeError, ValueError):  # not a format the decoder reads, or corrupt: PIL decides
        try:
            with Image.open(io.BytesIO(data)) as image:
                return pil_to_tensor(rgb(upright(image)))
        except UnidentifiedImageError as error:  # its message names a BytesIO at some address
            raise DataError(f"cannot read image {name}: no decoder knows it") from error
        except (OSError, Image.DecompressionBombError) as error:
            raise DataError(f"cannot read image {name}: {error}") from error


def refuse_decompression_bomb(data: bytes, name: str) -> None:
    """PIL's decompression-bomb limit (2 x `Image.MAX_IMAGE_PIXELS`, from the header) for every
    decoder, as `load_image` and `--verify-images` have it: one limit on every path."""
    try:
        with Image.open(io.BytesIO(data)):
            pass
    except Image.DecompressionBombError as error:
        raise DataError(f"cannot read image {name}: {error}") from error
    except (UnidentifiedImageError, OSError):
        pass  # not a format PIL opens: the decoder decides


def upright(image: Image.Image) -> Image.Image:
    """`image` turned as its EXIF orientation says, as TorchCodec and torchvision decode it."""
    return ImageOps.exif_transpose(image)


@cache
def image_decoder() -> Callable[[bytes], Tensor]:
    """Encoded bytes -> (3, H, W) RGB: TorchCodec's decoder where it is installed (torchvision
    deprecates its own for it from 0.29), else torchvision's (libjpeg-turbo, libpng, libwebp)."""
    try:
        from torchcodec.decoders import decode_image
    except ImportError:
        return _torchvision_decode
    return partial(decode_image, mode="RGB")


def _torchvision_decode(data: bytes) -> Tensor:
    from torchvision.io import ImageReadMode, decode_image

    encoded = torch.frombuffer(bytearray(data), dtype=torch.uint8)
    with warnings.catch_warnings():  # deprecated from 0.29 for TorchCodec, used where it is not
        warnings.simplefilter("ignore", DeprecationWarning)
        # uint16 for a 16-bit PNG; turned upright by its EXIF orientation, as TorchCodec does
        return decode_image(encoded, mode=ImageReadMode.RGB, apply_exif_orientation=True)


def pil_to_tensor(image: Image.Image) -> Tensor:
    """uint8 (C, H, W) of a PIL image; torchvision imported when first used, as every heavy
    library is, so that `--help` answers at once."""
    from torchvision.transforms.v2.functional import pil_to_tensor

    return pil_to_tensor(image)


def rgb(image: Image.Image) -> Image.Image:
    """PIL's RGB view of `image`. A 16-bit grey image ("I;16", or "I" as PIL may open it) is
    scaled to 8 bits first (its top byte, as torchvision's `to_dtype`): `convert("RGB")` alone
    clips every value above 255 to white."""
    if image.mode.startswith("I"):
        image = image.convert("I").point(lambda value: value / 256).convert("L")
    return image.convert("RGB")


def decode_crop(data: bytes, name: str, policy: InceptionCrop, seed: int, size: int) -> Tensor:
    """The training crop (uint8 (3, S, S)) of an encoded image. A JPEG whose box, drawn from the
    size in its header, is at least 2 S a side is decoded at 1/2, 1/4 or 1/8 of its size
    (libjpeg's DCT scaling, PIL's `draft`), which still leaves S pixels or more a side of the box
    and costs a fraction of the full decode; any other image is decoded whole. Files smaller
    than DRAFT_BITS_PER_PIXEL at (2 S)^2 pixels are decoded whole without reading the header
    first: few photos that large compress so far, and decoding them whole is only slower."""
    if len(data) * 8 >= DRAFT_BITS_PER_PIXEL * (2 * size) ** 2:
        try:
            with Image.open(io.BytesIO(data)) as image:
                crop = policy.sample(image.height, image.width, seed)
                factor = min(crop.height, crop.width) // size
                turned = image.getexif().get(EXIF_ORIENTATION, 1) != 1  # decoded whole, upright
                if image.format == "JPEG" and factor >= 2 and not turned:
                    height, width = image.height, image.width
                    image.draft("RGB", (-(-width // factor), -(-height // factor)))
                    return _crop_scaled(pil_to_tensor(image.convert("RGB")), crop, height, size)
        except (UnidentifiedImageError, OSError, Image.DecompressionBombError):
            pass  # decode_bytes names the file, or decodes what PIL cannot open
    image = decode_bytes(data, name)
    return crop_resize(image, policy.sample(*image.shape[-2:], seed), size)


def _crop_scaled(image: Tensor, crop: Crop, height: int, size: int) -> Tensor:
    """`crop` of the original, cut from `image`, the original decoded at a reduced scale."""
    scale = image.shape[-2] / height
    top, left = round(crop.top * scale), round(crop.left * scale)
    box = Crop(top, left, round(crop.height * scale), round(crop.width * scale), crop.mirror)
    return crop_resize(image, box, size)


def verify_files(paths: list[str]) -> None:
    """Every file opened and checked by PIL before training (`--verify-images`)."""
    for path in paths:
        try:
            with Image.open(path) as image:
                image.verify()
        # PIL reports some corrupt PNGs as SyntaxError
        except (OSError, SyntaxError, Image.DecompressionBombError) as error:
            raise DataError(f"cannot read image {path}: {error}") from error


def load_image(path: str) -> Image.Image:
    """PIL's decode, with the file named when it fails (verify() does not catch truncation)
    or when the image is larger than PIL's decompression-bomb limit."""
    try:
        with Image.open(path) as image:
            return rgb(upright(image))
    except (OSError, Image.DecompressionBombError) as error:
        raise DataError(f"cannot read image {path}: {error}") from error


def as_rgb_tensor(image: Image.Image | Tensor) -> Tensor:
    """A dataset's image (PIL, or a uint8 tensor with 1 or 3 channels) as uint8 RGB (3, H, W)."""
    if isinstance(image, Image.Image):
        return pil_to_tensor(rgb(image))
    return image.expand(3, -1, -1) if image.shape[0] == 1 else image


def encoded(dataset: Dataset, index: int) -> tuple[bytes, str, int] | None:
    """An item's encoded bytes, name and label where the dataset keeps files; else None."""
    if isinstance(dataset, Subset):
        return encoded(dataset.dataset, dataset.indices[index])
    read = getattr(dataset, "encoded", None)
    return read(index) if read else None


def image_size(dataset: Dataset, index: int) -> tuple[int, int]:
    """(H, W) of an item: from the file header where the dataset can read it, else decoded."""
    if isinstance(dataset, Subset):
        return image_size(dataset.dataset, dataset.indices[index])
    if hasattr(dataset, "image_size"):
        return dataset.image_size(index)
    height, width = as_rgb_tensor(dataset[index][0]).shape[-2:]
    return height, width


class SquareImages(Dataset):
    """(uint8 (3, S, S) image, label) pairs: each image made RGB and resized to S x S, the
    evaluation view of the reference code ("usage of crop_size here is intentional")."""

    def __init__(self, dataset: Dataset, size: int) -> None:
        self.dataset = dataset
        self.size = size

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        image, label = self.dataset[index]
        return square(as_rgb_tensor(image), self.size), int(label)


def square(image: Tensor, size: int) -> Tensor:
    """uint8 (3, H, W) -> uint8 (3, S, S), bilinear with antialiasing."""
    return resize(image, size, antialias=True)
