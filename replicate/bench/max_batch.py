"""The largest training batch that fits in GPU memory: doubling until out of memory, then
bisecting. Probes run eager (a compiled model would recompile for every batch size); compiled
training usually needs less memory than eager, so the eager maximum fits it too."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from replicate.bench.measure import release_memory, synchronize
from replicate.bench.steps import synthetic_batch, train_step


def largest_fitting(
    fits: Callable[[int], bool], start: int, granularity: int = 8, limit: int = 1 << 16
) -> int:
    """The largest batch b with fits(b), to within `granularity` (or exactly, below it),
    assuming fits is monotone: every batch below a fitting one fits."""
    lo, hi = start, None  # invariant: fits(lo); hi is None or not fits(hi)
    if not fits(start):
        hi, lo = start, start // 2
        while lo >= 1 and not fits(lo):
            hi, lo = lo, lo // 2
        if lo < 1:
            raise RuntimeError("not even a batch of 1 fits in memory")
    else:
        while lo * 2 <= limit and fits(lo * 2):
            lo *= 2
        if lo * 2 > limit:
            return lo
        hi = lo * 2
    while hi - lo > granularity:
        middle = (lo + hi) // 2
        rounded = middle // granularity * granularity  # tensor-core friendly when it can be
        middle = rounded if rounded > lo else middle
        lo, hi = (middle, hi) if fits(middle) else (lo, middle)
    return lo


def largest_training_batch(
    model: nn.Module, image_size: int, num_classes: int, precision: str, start: int
) -> int:
    """The largest batch for which two eager training steps of `model` run without OOM."""
    device = next(model.parameters()).device
    if device.type != "cuda":
        raise ValueError(
            "finding the largest batch needs a GPU: on a CPU, running out of memory kills the "
            "process (or swaps) instead of raising"
        )

    def fits(batch_size: int) -> bool:
        try:
            _train_twice(model, batch_size, image_size, num_classes, precision)
            fitted = True
        except torch.cuda.OutOfMemoryError:
            fitted = False
        model.zero_grad(set_to_none=True)
        release_memory(device)
        print(f"  batch {batch_size}: {'fits' if fitted else 'out of memory'}", flush=True)
        return fitted

    return largest_fitting(fits, start)


def _train_twice(
    model: nn.Module, batch_size: int, image_size: int, num_classes: int, precision: str
) -> None:
    """Two steps: the first allocates AdamW's state, the second runs at steady-state memory."""
    device = next(model.parameters()).device
    images, labels = synthetic_batch(batch_size, image_size, num_classes, device)
    step = train_step(model, model, images, labels, precision)
    step()
    step()
    synchronize(device)
