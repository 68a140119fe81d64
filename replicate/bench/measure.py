"""Timing and memory, the same way on CPU and GPU: warm-up steps untimed, then blocks of steps
timed (CUDA events on a GPU, so queued work is counted), the median block reported; peak memory
of the timed steps only, so compilation and autotuning do not count."""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Rate:
    median: float  # units of work per second, median over the timed blocks
    blocks: tuple[float, ...]  # each block's rate


def time_block(step: Callable[[], object], steps: int, device: torch.device) -> float:
    """Seconds for `steps` calls of `step`, the device's queued work included."""
    if device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(steps):
            step()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3
    start_s = time.perf_counter()
    for _ in range(steps):
        step()
    return time.perf_counter() - start_s


def warm_up(step: Callable[[], object], steps: int, device: torch.device) -> None:
    """Untimed calls: compilation, autotuning, cuDNN's algorithm search, the allocator's pools."""
    for _ in range(steps):
        step()
    synchronize(device)


def measure_rate(
    step: Callable[[], object], work: float, *, steps: int, repeats: int, device: torch.device
) -> Rate:
    """Rate of `work` units per call of `step` (images, FLOPs), over `repeats` blocks of `steps`."""
    rates = tuple(work * steps / time_block(step, steps, device) for _ in range(repeats))
    return Rate(statistics.median(rates), rates)


def matmul_peak_flops(device: torch.device, dtype: torch.dtype) -> float:
    """FLOP/s of the fastest block of large square matmuls: the ceiling MFU is measured against
    (a measured peak, not the datasheet's)."""
    n = 8192 if device.type == "cuda" else 1024
    a, b = (torch.randn(n, n, device=device, dtype=dtype) for _ in range(2))

    def matmul() -> torch.Tensor:
        return a @ b

    warm_up(matmul, 3, device)
    steps = 20 if device.type == "cuda" else 2
    return max(measure_rate(matmul, 2 * n**3, steps=steps, repeats=5, device=device).blocks)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory(device: torch.device) -> int | None:
    """Bytes of the largest allocation footprint since the last reset; None off the GPU."""
    return torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None


def release_memory(device: torch.device) -> None:
    """Return freed blocks to the device, so the next model starts from a clean allocator."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
