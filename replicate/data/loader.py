"""Batches of uint8 images on the training device, from one of two places.

    StreamedImages   DataLoader workers (persistent, for training) decode every image when it
                     is needed and cut the training crop from the decoded original
                     (`replicate.data.augment`), into pinned memory, copied as uint8 with
                     non_blocking=True (any dataset size)
    ResidentImages   the split decoded once per node into a shared memory-mapped file, then kept
                     on the device; a batch is an index lookup and the crops are cut there in one
                     `grid_sample` (the fast path on a GPU whenever the images fit)

Where the images live decides only how a crop is resampled, not which crop: the boxes come from
one seed per image (`Crops`), drawn from the run's (seed, epoch, rank) generator, and are those
of the reference (`InceptionCrop`), in the original image's pixels. Streamed, the box is cut from
the original at full resolution. Resident, a training image is stored at R x R with
R = min(2 S, the largest original side) (`stored_side`): the box is the same fraction of it, so
its area and aspect are the reference's; the pixels differ by the resampling of the stored copy
(exactly the original for images of one size up to 2 S, as digits and CIFAR). Evaluation images
are stored and streamed as the same S x S view. An image that cannot be decoded is skipped, named
in a logged warning, and counted in `skipped`.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Literal, NamedTuple, Protocol

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, DistributedSampler, default_collate

from replicate.data.augment import InceptionCrop, crop_resize, crop_resize_batch
from replicate.data.images import as_rgb_tensor, decode_crop, encoded, image_size, square
from replicate.errors import DataError
from replicate.runtime import Runtime

log = logging.getLogger("replicate.data.loader")

Placement = Literal["auto", "device", "stream"]
MEMORY_FRACTION = 0.25  # of the device's free memory that resident images may take
HOST_FRACTION = 0.5  # of the host's available memory that the node's shared copy may take
STORED_SCALE = 2  # resident training images are kept at up to 2 S a side (`stored_side`)
SHARED_DIR = Path("/dev/shm")  # memory-backed where Linux has it; else the temp folder
SHARED_PREFIX = "vit-replicate-"  # + the writer's process id: `remove_orphaned_files`


@dataclass(frozen=True)
class Crops:
    """The training crops of an epoch: the policy, and one seed per index of the epoch."""

    policy: InceptionCrop
    seeds: Sequence[int]


class ImageSource(Protocol):
    skipped: set[str]  # the unreadable images met so far, as "path: reason"

    def __len__(self) -> int: ...

    def batches(
        self, indices: Sequence[int], batch_size: int, crops: Crops | None = None
    ) -> Iterator[tuple[Tensor, Tensor]]:
        """uint8 (B, 3, S, S) images and int64 (B,) labels on the device, in `indices` order:
        training crops with `crops`, the whole image at S x S without. B falls short of
        `batch_size` by the unreadable images of the batch."""
        ...


class Unreadable(NamedTuple):
    reason: str  # DataError's message, which names the file


class _Items(Dataset):
    """What a worker computes for one key: (index, crop seed), or (index, None) for the whole
    image at S x S; an unreadable image becomes `Unreadable`."""

    def __init__(self, dataset: Dataset, size: int, policy: InceptionCrop | None) -> None:
        self.dataset, self.size, self.policy = dataset, size, policy

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int | None]) -> tuple[Tensor, int] | Unreadable:
        index, seed = key
        try:
            if seed is not None and self.policy and (file := encoded(self.dataset, index)):
                data, name, label = file  # decoded knowing the crop: maybe at a reduced scale
                return decode_crop(data, name, self.policy, seed, self.size), label
            image, label = self.dataset[index]
        except (DataError, OSError) as error:  # OSError: PIL, in torchvision's datasets
            return Unreadable(str(error))
        image = as_rgb_tensor(image)
        if seed is None or self.policy is None:
            return square(image, self.size), int(label)
        crop = self.policy.sample(*image.shape[-2:], seed)
        return crop_resize(image, crop, self.size), int(label)


def _collate(items: list) -> tuple[Tensor, Tensor, list[str]]:
    """The readable items as (B, 3, S, S) uint8 in channels-last memory, as `resize` gives each
    image, so collating is a plain copy (in a worker, straight into shared memory)."""
    good = [item for item in items if not isinstance(item, Unreadable)]
    bad = [item.reason for item in items if isinstance(item, Unreadable)]
    if not good:
        return torch.empty(0, 3, 0, 0, dtype=torch.uint8), torch.empty(0, dtype=torch.long), bad
    pixels, labels = default_collate([(image.permute(1, 2, 0), label) for image, label in good])
    return pixels.permute(0, 3, 1, 2), labels, bad


class _EpochBatches:
    """The batch sampler of a persistent DataLoader: it reads the epoch's keys anew each time."""

    def __init__(self) -> None:
        self.keys: list[list[tuple[int, int | None]]] = []

    def __iter__(self) -> Iterator[list[tuple[int, int | None]]]:
        return iter(self.keys)

    def __len__(self) -> int:
        return len(self.keys)


class StreamedImages:
    def __init__(
        self,
        dataset: Dataset,
        size: int,
        device: torch.device,
        workers: int,
        policy: InceptionCrop | None = None,
    ) -> None:
        self.device, self.skipped = device, set()
        self.epoch_batches = _EpochBatches()
        self.loader = DataLoader(
            _Items(dataset, size, policy),
            batch_sampler=self.epoch_batches,
            num_workers=workers,
            worker_init_fn=partial(die_with_parent, os.getpid()),
            collate_fn=_collate,
            pin_memory=device.type == "cuda",
            # Training workers start once, not once per epoch; evaluation's, once per evaluation.
            persistent_workers=workers > 0 and policy is not None,
            generator=_detached_generator(),
        )

    def __len__(self) -> int:
        return len(self.loader.dataset)

    def batches(
        self, indices: Sequence[int], batch_size: int, crops: Crops | None = None
    ) -> Iterator[tuple[Tensor, Tensor]]:
        seeds = crops.seeds if crops else [None] * len(indices)
        keys = list(zip(indices, seeds, strict=True))
        self.epoch_batches.keys = [
            keys[i : i + batch_size] for i in range(0, len(keys), batch_size)
        ]
        for images, labels, unreadable in self.loader:
            _report(self.skipped, unreadable)
            if len(labels):
                yield (
                    images.to(self.device, non_blocking=True),
                    labels.to(self.device, non_blocking=True),
                )


class ResidentImages:
    def __init__(
        self, images: Tensor, labels: Tensor, sizes: Tensor, size: int, skipped: set[str]
    ) -> None:
        """`images` (N, 3, R, R) on the device; `sizes` (N, 2), the originals' (H, W)."""
        self.images, self.labels, self.sizes, self.size = images, labels, sizes, size
        self.skipped = skipped

    @classmethod
    def decode(
        cls, dataset: Dataset, side: int, size: int, runtime: Runtime, workers: int
    ) -> ResidentImages:
        """Local rank 0 of each node decodes the split at `side` x `side` into a memory-mapped
        file; every rank of the node maps it and copies it to its device (on the CPU, the ranks
        share the mapping), then the file is removed."""
        path, count, labels, sizes, skipped = runtime.once_per_node(
            lambda: _decode_to_file(dataset, side, workers)
        )
        images = torch.from_numpy(np.load(path, mmap_mode="r+")[:count])
        images = images.to(runtime.device)
        runtime.node_barrier()  # every rank has mapped or copied it
        if runtime.local_rank == 0:
            os.unlink(path)
        skipped_now: set[str] = set()
        _report(skipped_now, skipped)
        device = runtime.device
        return cls(images, labels.to(device), sizes, size, skipped_now)

    def __len__(self) -> int:
        return len(self.labels)

    def batches(
        self, indices: Sequence[int], batch_size: int, crops: Crops | None = None
    ) -> Iterator[tuple[Tensor, Tensor]]:
        index = torch.as_tensor(indices, dtype=torch.long)
        for start in range(0, len(indices), batch_size):
            chunk = index[start : start + batch_size]
            images = self.images[chunk.to(self.images.device)]
            if crops:
                sizes = self.sizes[chunk]
                seeds = crops.seeds[start : start + batch_size]
                boxes = [
                    crops.policy.sample(h, w, seed)
                    for (h, w), seed in zip(sizes.tolist(), seeds, strict=True)
                ]
                images = crop_resize_batch(images, boxes, sizes, self.size)
            elif images.shape[-1] != self.size:
                images = square(images, self.size)
            yield images, self.labels[chunk.to(self.labels.device)]


def _decode_to_file(
    dataset: Dataset, side: int, workers: int
) -> tuple[str, int, Tensor, Tensor, list[str]]:
    """Every image at `side` x `side` into an .npy file in shared memory, unreadable ones left
    out; returns its path, the count written, the labels, original sizes and the reasons."""
    directory = SHARED_DIR if SHARED_DIR.is_dir() else Path(tempfile.gettempdir())
    remove_orphaned_files(directory)
    path = str(directory / f"{SHARED_PREFIX}{os.getpid()}-{uuid.uuid4().hex}.npy")
    shape = (len(dataset), 3, side, side)
    store = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=shape)
    loader = DataLoader(
        _Originals(dataset, side),
        batch_size=256,
        num_workers=workers,
        worker_init_fn=partial(die_with_parent, os.getpid()),
        collate_fn=list,
        generator=_detached_generator(),
    )
    count, labels, sizes, skipped = 0, [], [], []
    try:
        for items in loader:
            for item in items:
                if isinstance(item, Unreadable):
                    skipped.append(item.reason)
                    continue
                image, label, original = item
                store[count] = image.numpy()
                labels.append(label)
                sizes.append(original)
                count += 1
        store.flush()
    except BaseException:  # interrupted: leave no file of the split's size in shared memory
        os.unlink(path)
        raise
    del store
    return path, count, torch.tensor(labels), torch.tensor(sizes).view(-1, 2), skipped


class _Originals(Dataset):
    """(image at side x side, label, original (H, W)), or Unreadable."""

    def __init__(self, dataset: Dataset, side: int) -> None:
        self.dataset, self.side = dataset, side

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        try:
            image, label = self.dataset[index]
        except (DataError, OSError) as error:  # OSError: PIL, in torchvision's datasets
            return Unreadable(str(error))
        image = as_rgb_tensor(image)
        return square(image, self.side), int(label), tuple(image.shape[-2:])


class _Sides(Dataset):
    """The longer side of each original image (0 for an unreadable one), from file headers
    where the dataset can read them."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> int:
        try:
            return max(image_size(self.dataset, index))
        except DataError:
            return 0


def stored_side(dataset: Dataset, size: int, workers: int) -> int:
    """R = min(STORED_SCALE * S, the largest side of the originals): room for a crop of 5% of
    the area to keep ~0.45 S pixels a side, and never more pixels than the originals have."""
    loader = DataLoader(
        _Sides(dataset),
        batch_size=1024,
        num_workers=workers,
        worker_init_fn=partial(die_with_parent, os.getpid()),
        generator=_detached_generator(),
    )
    largest = max((int(batch.max()) for batch in loader), default=0)
    return max(1, min(STORED_SCALE * size, largest))


def _report(seen: set[str], reasons: Sequence[str]) -> None:
    """Name each unreadable image once, through logging: a warnings filter (`-W ignore`,
    PYTHONWARNINGS) would silence it."""
    for reason in reasons:
        if reason not in seen:
            seen.add(reason)
            log.warning("skipped an unreadable image: %s", reason)


def default_workers(local_world_size: int | None = None) -> int:
    """The cores this process may use, shared by the processes of the node."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    share = local_world_size or int(os.environ.get("LOCAL_WORLD_SIZE", 1))
    return max(1, (cores or 1) // share)


def remove_orphaned_files(directory: Path) -> None:
    """The shared-memory files of runs killed while they decoded (SIGKILL runs no clean-up):
    named by the process that wrote them, removed once that process is gone."""
    for path in directory.glob(f"{SHARED_PREFIX}*.npy"):
        pid = path.name.removeprefix(SHARED_PREFIX).split("-")[0]
        if pid.isdigit() and not _alive(int(pid)):
            path.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def die_with_parent(parent: int, worker_id: int) -> None:
    """A DataLoader worker that ends when its parent does, even by SIGKILL, which gives the
    parent no chance to stop it (Linux's PR_SET_PDEATHSIG; elsewhere the workers' own watchdog
    still ends them when they next look). A parent gone before the signal was set: end now."""
    if sys.platform.startswith("linux"):
        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:
            os._exit(0)


def _detached_generator() -> torch.Generator:
    """For the seed a DataLoader draws for its workers, which use no randomness here: drawn
    from the global generator, it would shift the dropout masks of a streamed run."""
    return torch.Generator()


def place(
    dataset: Dataset,
    size: int,
    runtime: Runtime,
    placement: Placement,
    workers: int,
    policy: InceptionCrop | None = None,
) -> ImageSource:
    """Resident when asked, or ("auto") when the uint8 images take at most MEMORY_FRACTION of
    the device's free memory and HOST_FRACTION of the host's available memory; streamed
    otherwise. A training split (`policy` given) is stored at `stored_side`, an evaluation split
    at S."""
    if placement == "stream":
        return StreamedImages(dataset, size, runtime.device, workers, policy)
    side = runtime.once_per_node(lambda: stored_side(dataset, size, workers)) if policy else size
    nbytes = len(dataset) * 3 * side * side
    fits = nbytes <= min(
        free_bytes(runtime.device) * MEMORY_FRACTION, available_host_bytes() * HOST_FRACTION
    )
    if placement == "device" or fits:
        return ResidentImages.decode(dataset, side, size, runtime, workers)
    return StreamedImages(dataset, size, runtime.device, workers, policy)


def free_bytes(device: torch.device) -> int:
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    return available_host_bytes()


def available_host_bytes() -> int:
    """MemAvailable (free memory plus what the kernel can reclaim, e.g. the page cache), not
    the total; the free pages where /proc/meminfo is missing (macOS)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")


def epoch_indices(
    num_items: int, *, seed: int, epoch: int, rank: int, world_size: int, shuffle: bool
) -> list[int]:
    """This process's share of the split for `epoch`: shuffled by (seed, epoch) when training,
    so the order survives a resume; the sampler of DistributedDataParallel in one process too."""
    if not shuffle:  # evaluation: every item once, no padding
        return list(range(rank, num_items, world_size))
    sampler = DistributedSampler(
        range(num_items), num_replicas=world_size, rank=rank, shuffle=True, seed=seed
    )
    sampler.set_epoch(epoch)
    return list(sampler)
