"""WebDataset-style tar shards (`--dataset wds:PATH`), for sets too large for one file each.

    PATH/train/*.tar    the training shards (sorted by name)
    PATH/val/*.tar      the evaluation shards (or PATH/test/*.tar)
    PATH/classes.txt    optional: one class name per line, in label order

A shard is a plain tar file; the members that share a key (the path up to the first dot of the
file name, WebDataset's convention) form one sample: the image (`.jpg`, `.jpeg`, `.png` or
`.webp`) and its integer label (`.cls`), e.g. `000017.jpg` + `000017.cls`. Such shards are what
`webdataset.ShardWriter` or `tar --sort=name` write.

Read with Python's `tarfile` rather than the `webdataset` package: the index of every shard (where
each image's bytes start, and its label) is built once from the tar headers, then any sample is
one seek and one read. So shards go through the same index-based path as image folders: the
sharding over ranks, the shuffle by (seed, epoch) and the exact resume of
`replicate.data.loader`, with no new dependency (timm's `wds` reader needs `webdataset` and
streams, without random access).
"""

from __future__ import annotations

import os
import tarfile
from pathlib import Path
from typing import NamedTuple

from torch import Tensor
from torch.utils.data import Dataset

from replicate.data.images import Splits, decode_bytes, matching_splits, test_folder
from replicate.errors import DataError

IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "webp")
LABEL_EXTENSION = "cls"
CLASSES_FILE = "classes.txt"


class Record(NamedTuple):
    shard: int  # index into the dataset's shard list
    offset: int  # of the image's bytes in the shard
    size: int
    label: int
    name: str  # shard:member, for error messages


class TarShards(Dataset):
    """(uint8 (3, H, W) image, label) pairs read from tar shards by seek and read."""

    def __init__(self, shards: list[Path], records: list[Record], classes: list[str]) -> None:
        self.shards, self.records, self.classes = shards, records, classes
        self.targets = [record.label for record in records]
        self._files: dict[int, object] = {}  # open shards of this process (a worker's own)
        self._pid: int | None = None

    @classmethod
    def scan(cls, folder: Path, classes: list[str] | None) -> TarShards:
        shards = sorted(folder.glob("*.tar"))
        if not shards:
            raise DataError(f"no .tar shards in {folder}")
        records = [record for i, shard in enumerate(shards) for record in _index(shard, i)]
        if not records:
            raise DataError(f"the shards in {folder} hold no image with a .cls label")
        count = max(record.label for record in records) + 1
        if classes is not None and len(classes) < count:
            raise DataError(f"{folder}: labels go up to {count - 1} but classes.txt names "
                            f"{len(classes)} classes")  # fmt: skip
        return cls(shards, records, classes or [str(label) for label in range(count)])

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        data, name, label = self.encoded(index)
        return decode_bytes(data, name), label

    def encoded(self, index: int) -> tuple[bytes, str, int]:
        record = self.records[index]
        file = self._file(record.shard)
        file.seek(record.offset)
        return file.read(record.size), record.name, record.label

    def _file(self, shard: int):
        if self._pid != os.getpid():  # a forked worker opens its own handles
            self._files, self._pid = {}, os.getpid()
        if shard not in self._files:
            self._files[shard] = open(self.shards[shard], "rb")  # kept open: one per shard
        return self._files[shard]

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_files": {}, "_pid": None}


def _index(shard: Path, number: int) -> list[Record]:
    """The samples of one shard, from its headers: image members paired with their labels."""
    images: dict[str, tarfile.TarInfo] = {}
    labels: dict[str, int] = {}
    try:
        with tarfile.open(shard) as tar:
            for member in tar:
                if not member.isfile():
                    continue
                directory, _, filename = member.name.rpartition("/")
                stem, _, extension = filename.partition(".")
                key = f"{directory}/{stem}"
                if extension.lower() in IMAGE_EXTENSIONS:
                    images[key] = member
                elif extension == LABEL_EXTENSION:
                    labels[key] = int(tar.extractfile(member).read())
                    if labels[key] < 0:
                        raise ValueError(f"{member.name} holds the label {labels[key]}, below 0")
    except (tarfile.TarError, OSError, ValueError) as error:
        raise DataError(f"cannot read shard {shard}: {error}") from error
    return [
        Record(number, member.offset_data, member.size, labels[key], f"{shard}:{member.name}")
        for key, member in images.items()
        if key in labels
    ]


def wds_splits(root: Path) -> Splits:
    test_dir = test_folder(root, "shard folder", "*.tar shards")
    names = root / CLASSES_FILE
    classes = names.read_text().split("\n") if names.is_file() else None
    classes = [name for name in classes if name] if classes else None
    train, test = (TarShards.scan(d, classes) for d in (root / "train", test_dir))
    if classes is None:  # numbered classes: the larger label range names them all
        names = max(train.classes, test.classes, key=len)
        train.classes = test.classes = names
    return matching_splits(root, train, test, test_dir.name)
