"""`python -m replicate.bench --loader`: the streamed training loader beside torchvision's.

    python -m replicate.bench --loader --dataset imagefolder:../shared/data/hymenoptera_data
    python -m replicate.bench --loader --dataset imagefolder:.data/cifar10 --image-size 224

The contenders read the same images of the training split in the same order, epoch after
epoch, with the same number of workers, and give uint8 (B, 3, S, S) training crops:

    ours          `replicate.data.loader.StreamedImages`: file list, persistent workers
                  decoding, the reference's inception crop cut from the original
    torchvision   `ImageFolder` + `RandomResizedCrop` + `RandomHorizontalFlip` + `PILToTensor`
                  in a plain `DataLoader` iterated once per epoch, as its tutorials write it

Each run is timed from building the dataset (listing the folder) to the last batch: the time to
the first batch, images/s after it, and images per CPU-second, counting the main process and the
workers (their CPU time, from `getrusage` once they have exited): the figure that holds when
other programs share the cores. The contenders take turns over `--repeats` runs (the order
reversed every other run), and the medians are reported, with every run in the JSON; `--images`
beyond the split times one long epoch, the steady state where no start-up counts.
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from replicate.cli_errors import ArgumentParser, non_negative_int, positive_int
from replicate.data.augment import InceptionCrop, crop_seeds
from replicate.data.images import ImageFiles, test_folder
from replicate.data.loader import Crops, StreamedImages, default_workers
from replicate.runs.read import portable_name

Batches = Iterable[tuple[torch.Tensor, torch.Tensor]]


@dataclass(frozen=True)
class LoaderRun:
    contender: str
    images: int
    first_batch_s: float  # from building the dataset to the first batch
    images_per_s: float  # after the first batch
    images_per_cpu_s: float  # over the whole run, main process and workers


Epoch = Callable[[Sequence[int]], Batches]  # one pass over these indices


def ours(folder: Path, size: int, batch: int, workers: int) -> Epoch:
    dataset = ImageFiles.scan(folder)
    source = StreamedImages(dataset, size, torch.device("cpu"), workers, InceptionCrop())
    generator = torch.Generator().manual_seed(0)

    def epoch(order: Sequence[int]) -> Batches:
        crops = Crops(InceptionCrop(), crop_seeds(generator, len(order)))
        return source.batches(order, batch, crops)

    return epoch


def torchvision_baseline(folder: Path, size: int, batch: int, workers: int) -> Epoch:
    """torchvision's `ImageFolder` (PIL decoding) and transforms, a new DataLoader an epoch."""
    from torchvision import datasets, transforms

    crop = [transforms.RandomResizedCrop(size), transforms.RandomHorizontalFlip()]
    transform = transforms.Compose([*crop, transforms.PILToTensor()])
    dataset = datasets.ImageFolder(str(folder), transform=transform)
    return lambda order: DataLoader(dataset, batch_size=batch, sampler=order, num_workers=workers)


CONTENDERS: dict[str, Callable[..., Epoch]] = {"ours": ours, "torchvision": torchvision_baseline}


def time_loader(name: str, build: Callable[[], Epoch], orders: list[list[int]]) -> LoaderRun:
    """One run: build the loader, pass over every epoch's `order`, let the workers exit, then
    read the CPU times."""
    cpu_before = _cpu_seconds()
    start = time.perf_counter()
    first = None
    images = 0
    epoch = build()
    for order in orders:
        for batch, _ in epoch(order):
            images += len(batch)
            if first is None:
                first, first_images = time.perf_counter(), len(batch)
    end = time.perf_counter()
    del epoch  # the workers exit, so their CPU time is counted below
    gc.collect()
    cpu = _cpu_seconds() - cpu_before
    return LoaderRun(
        name,
        images,
        first_batch_s=first - start,
        images_per_s=(images - first_images) / (end - first),
        images_per_cpu_s=images / cpu,
    )


def _cpu_seconds() -> float:
    """User + system time of this process and of its children that have exited."""
    own, children = (
        resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = ArgumentParser(
        prog="python -m replicate.bench --loader",
        description="Images/s, time to first batch and images per CPU-second of the streamed "
        "training loader, beside torchvision's ImageFolder + RandomResizedCrop + DataLoader "
        "and the project's loader before issue 10.",
    )
    p.add_argument("--dataset", required=True, metavar="imagefolder:PATH", help="an image folder")
    p.add_argument("--image-size", type=positive_int, default=224, metavar="S")
    p.add_argument("--batch-size", type=positive_int, default=64)
    p.add_argument(
        "--images",
        type=positive_int,
        help="images per epoch (default: the whole split; more repeats the split, to time long "
        "epochs, where a loader's start-up no longer counts, on a small folder)",
    )
    p.add_argument("--epochs", type=positive_int, default=3, help="epochs per run")
    p.add_argument("--workers", type=non_negative_int, default=default_workers())
    p.add_argument(
        "--repeats", type=positive_int, default=5, help="runs of each contender, alternated"
    )
    p.add_argument("--out", type=Path, default=Path("results/bench"))
    p.add_argument(
        "--name", help="the data's name in the results file's name (default: the folder's name)"
    )
    args = p.parse_args(argv)
    if not args.dataset.startswith("imagefolder:"):
        p.error("--dataset takes imagefolder:PATH (PATH/train, one subfolder per class)")
    return args


def main(argv: Sequence[str] | None = None) -> dict:
    args = parse_args(argv)
    root = Path(args.dataset.removeprefix("imagefolder:"))
    test_folder(root, "image folder", "one subfolder of images per class")  # fails clearly
    folder = root / "train"
    count = len(ImageFiles.scan(folder))
    per_epoch = args.images or count
    generator = torch.Generator().manual_seed(0)
    cycles = -(-per_epoch // count)  # a small split repeated, for the steady state of long epochs
    orders = [(torch.randperm(cycles * count, generator=generator) % count)[:per_epoch].tolist()]
    orders += [[orders[0][i] for i in torch.randperm(per_epoch, generator=generator)]
               for _ in range(args.epochs - 1)]  # fmt: skip
    options = (folder, args.image_size, args.batch_size, args.workers)
    runs: list[LoaderRun] = []
    for repeat in range(args.repeats):
        names = list(CONTENDERS)[:: 1 if repeat % 2 == 0 else -1]  # alternate who goes first
        for name in names:
            run = time_loader(name, partial(CONTENDERS[name], *options), orders)
            runs.append(run)
            print(json.dumps(asdict(run)))
    summary = {
        name: {
            field: statistics.median(getattr(r, field) for r in runs if r.contender == name)
            for field in ("first_batch_s", "images_per_s", "images_per_cpu_s")
        }
        for name in CONTENDERS
    }
    report = {
        "dataset": portable_name(args.dataset),
        "image_size": args.image_size,
        "batch_size": args.batch_size,
        "images_per_epoch": per_epoch,
        "epochs": args.epochs,
        "workers": args.workers,
        "cpu_cores": default_workers(1),
        "torch": torch.__version__,
        "medians": summary,
        "ours_over": ratios(summary),
        "runs": [asdict(r) for r in runs],
    }
    args.out.mkdir(parents=True, exist_ok=True)
    data = args.name or root.resolve().name
    name = f"loader-{data}-{args.image_size}-{args.epochs}x{per_epoch}.json"
    (args.out / name).write_text(json.dumps(report, indent=2))
    for contender, medians in summary.items():
        print(
            f"{contender:>12}: {medians['images_per_s']:7.1f} img/s, "
            f"{medians['images_per_cpu_s']:6.1f} img per CPU-s, "
            f"first batch {medians['first_batch_s']:.2f} s (median of {args.repeats})"
        )
    for contender, ratio in report["ours_over"].items():
        print(
            f"ours / {contender}: {ratio['images_per_s']:.2f}x images/s, "
            f"{ratio['images_per_cpu_s']:.2f}x images per CPU-s"
        )
    return report


def ratios(summary: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """Ours over each other contender, in images/s and in images per CPU-second."""
    fields = ("images_per_s", "images_per_cpu_s")
    return {
        name: {field: summary["ours"][field] / medians[field] for field in fields}
        for name, medians in summary.items()
        if name != "ours"
    }


if __name__ == "__main__":
    main()
