"""Batches of uint8 images on the training device, from one of two places.

    ResidentImages   the split decoded once into one uint8 tensor kept on the device: a batch is
                     an index lookup, with no workers and no host-to-device copies (the fast path
                     on a GPU whenever the images fit)
    StreamedImages   DataLoader workers decode every epoch into pinned memory, copied with
                     non_blocking=True (for datasets larger than the device's memory)

Both give the same images for the same indices, so a run does not depend on where they live.
Which indices make a batch is the caller's: `epoch_indices` shards and shuffles by (seed, epoch).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import Literal, Protocol

import torch
from torch import Tensor
from torch.utils.data import DataLoader, DistributedSampler

from replicate.data import SquareImages

Placement = Literal["auto", "device", "stream"]
MEMORY_FRACTION = 0.25  # of the device's free memory that resident images may take


class ImageSource(Protocol):
    def __len__(self) -> int: ...

    def batches(self, indices: Sequence[int], batch_size: int) -> Iterator[tuple[Tensor, Tensor]]:
        """uint8 (B, 3, S, S) images and int64 (B,) labels on the device, in `indices` order."""
        ...


class ResidentImages:
    def __init__(self, images: Tensor, labels: Tensor) -> None:
        self.images, self.labels = images, labels

    @classmethod
    def decode(cls, dataset: SquareImages, device: torch.device, workers: int) -> ResidentImages:
        loader = DataLoader(
            dataset, batch_size=256, num_workers=workers, generator=_detached_generator()
        )
        images, labels = zip(*loader, strict=True)
        return cls(torch.cat(images).to(device), torch.cat(labels).to(device))

    def __len__(self) -> int:
        return len(self.labels)

    def batches(self, indices: Sequence[int], batch_size: int) -> Iterator[tuple[Tensor, Tensor]]:
        index = torch.as_tensor(indices, device=self.labels.device)
        for chunk in index.split(batch_size):
            yield self.images[chunk], self.labels[chunk]


class StreamedImages:
    def __init__(self, dataset: SquareImages, device: torch.device, workers: int) -> None:
        self.dataset, self.device, self.workers = dataset, device, workers

    def __len__(self) -> int:
        return len(self.dataset)

    def batches(self, indices: Sequence[int], batch_size: int) -> Iterator[tuple[Tensor, Tensor]]:
        chunks = [indices[i : i + batch_size] for i in range(0, len(indices), batch_size)]
        loader = DataLoader(
            self.dataset,
            batch_sampler=chunks,
            num_workers=self.workers,
            pin_memory=self.device.type == "cuda",
            generator=_detached_generator(),
        )
        for images, labels in loader:
            yield (
                images.to(self.device, non_blocking=True),
                labels.to(self.device, non_blocking=True),
            )


def default_workers() -> int:
    return min(4, os.cpu_count() or 1)


def _detached_generator() -> torch.Generator:
    """For the seed a DataLoader draws for its workers, which use no randomness here: drawn
    from the global generator, it would shift the dropout masks of a streamed run."""
    return torch.Generator()


def place(
    dataset: SquareImages, device: torch.device, placement: Placement, workers: int
) -> ImageSource:
    """Resident when asked, or ("auto") when the uint8 images take at most MEMORY_FRACTION of
    the device's free memory; streamed otherwise."""
    size = dataset.size
    nbytes = len(dataset) * 3 * size * size
    fits = nbytes <= _free_bytes(device) * MEMORY_FRACTION
    if placement == "device" or (placement == "auto" and fits):
        return ResidentImages.decode(dataset, device, workers)
    return StreamedImages(dataset, device, workers)


def _free_bytes(device: torch.device) -> int:
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")  # RAM, on Linux and macOS


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
