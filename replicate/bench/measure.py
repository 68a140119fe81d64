"""What is measured, and how: each contender built, timed for training and then inference, and
released in turn, on the same device, synthetic batch, precision and compile mode.

Timing is the same for every contender and device: warm-up steps untimed (compilation,
autotuning, the allocator's pools), then blocks of steps timed from one device sync to the next,
the median block reported. Peak memory covers the timed steps only. MFU is model FLOPs
(`replicate.flops`, the same for every implementation of a variant; a training step counts 3x
the forward) per second over a measured large-matmul peak, not the datasheet's.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import torch

from replicate.bench.contenders import BenchConfig, Step, build_contender, label
from replicate.bench.report import (
    BenchReport,
    ModelResult,
    Phase,
    describe_device,
    library_versions,
)
from replicate.errors import Unavailable
from replicate.flops import TRAIN_FLOPS_PER_FORWARD, forward_flops
from replicate.runtime import COMPUTE_DTYPES, default_precision, keep_freed_memory, synchronize


def run_bench(config: BenchConfig, log: Callable[[str], None] = print) -> BenchReport:
    device = torch.device(config.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cpu":
        keep_freed_memory()  # as the trainer does
    precision = config.precision or default_precision()[0]
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # for the patch-embedding conv; same for all models
    flops = forward_flops(
        config.variant, config.image_size, config.num_classes, **config.model_overrides
    )
    peak = matmul_peak_flops(device, COMPUTE_DTYPES[precision])
    device_info = describe_device(device)
    log(f"{device_info.name}: {COMPUTE_DTYPES[precision]} matmul peak {peak / 1e12:.1f} TFLOP/s")
    results = []
    for kind in config.models:
        result = bench_model(kind, config, device, precision, flops, peak)
        log(_summary(result))
        results.append(result)
    return BenchReport(
        config=config,
        precision=precision,
        device=device_info,
        versions=library_versions(),
        forward_flops=flops,
        matmul_peak_flops=peak,
        results=tuple(results),
    )


def bench_model(
    kind: str, config: BenchConfig, device: torch.device, precision: str, flops: int, peak: float
) -> ModelResult:
    """Time training steps, then inference, of contender `kind`."""
    name = label(kind, config.variant)
    try:
        contender = build_contender(kind, config, device, precision)
    except Unavailable as why:
        return ModelResult(kind, name, skipped=str(why))
    batch_size = config.batch_size
    try:

        def time_phase(step: Step, flops_per_image: int) -> Phase:
            warm_up(step, config.warmup, contender.synchronize)
            contender.reset_peak_memory()
            rate = measure_rate(
                step,
                batch_size,
                steps=config.steps,
                repeats=config.repeats,
                synchronize=contender.synchronize,
            )
            mfu = rate.median * flops_per_image / peak
            return Phase(rate.median, rate.blocks, mfu, contender.peak_memory())

        # The training closure (and its optimiser state) is gone before inference is timed.
        train = (
            time_phase(contender.train_step(batch_size), TRAIN_FLOPS_PER_FORWARD * flops)
            if config.train
            else None
        )
        inference = time_phase(contender.inference_step(batch_size), flops)
    except Unavailable as why:
        return ModelResult(kind, name, contender.params, skipped=str(why))
    except torch.cuda.OutOfMemoryError:
        why = f"out of memory at batch {batch_size}; try a smaller --batch-size"
        return ModelResult(kind, name, contender.params, batch_size, skipped=why)
    finally:
        contender.close()
    return ModelResult(kind, name, contender.params, batch_size, train, inference)


@dataclass(frozen=True)
class Rate:
    median: float  # units of work per second, median over the timed blocks
    blocks: tuple[float, ...]  # each block's rate


def time_block(step: Step, steps: int, synchronize: Callable[[], None]) -> float:
    """Seconds for `steps` calls of `step`, from one device sync to the next, so the queued
    work is counted and none of the warm-up's is."""
    synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    synchronize()
    return time.perf_counter() - start


def warm_up(step: Step, steps: int, synchronize: Callable[[], None]) -> None:
    """Untimed calls: compilation, autotuning, cuDNN's algorithm search, the allocator's pools."""
    for _ in range(steps):
        step()
    synchronize()


def measure_rate(
    step: Step, work: float, *, steps: int, repeats: int, synchronize: Callable[[], None]
) -> Rate:
    """Rate of `work` units per call of `step` (images, FLOPs), over `repeats` blocks of `steps`."""
    rates = tuple(work * steps / time_block(step, steps, synchronize) for _ in range(repeats))
    return Rate(statistics.median(rates), rates)


def matmul_peak_flops(device: torch.device, dtype: torch.dtype) -> float:
    """FLOP/s of the fastest block of large square matmuls in `dtype` on `device`, timed the
    way the models are: the ceiling MFU is measured against."""
    n = 8192 if device.type == "cuda" else _cpu_peak_size(dtype)
    a, b = (torch.randn(n, n, device=device, dtype=dtype) for _ in range(2))

    def matmul() -> torch.Tensor:
        return a @ b

    wait = partial(synchronize, device)
    warm_up(matmul, 3, wait)
    steps = 20 if device.type == "cuda" else 2
    rate = measure_rate(matmul, 2 * n**3, steps=steps, repeats=5, synchronize=wait)
    return max(rate.blocks)


def _cpu_peak_size(dtype: torch.dtype, budget_s: float = 0.5, largest: int = 2048) -> int:
    """The side of the CPU's peak matmul: 2048 (1024 does not fill AMX's tiles), or smaller
    where one would take over `budget_s`: without AMX or AVX512-BF16, bf16 runs at well under
    1 GFLOP/s, and thirteen 2048-matmuls would take a quarter of an hour."""
    probe = 256
    a = torch.randn(probe, probe, dtype=dtype)
    a @ a  # warm-up: oneDNN picks its kernel on the first call
    start = time.perf_counter()
    a @ a
    rate = 2 * probe**3 / max(time.perf_counter() - start, 1e-9)
    n = largest
    while n > probe and 2 * n**3 / rate > budget_s:
        n //= 2
    return n


def _summary(result: ModelResult) -> str:
    if result.skipped:
        return f"{result.name}: skipped ({result.skipped})"
    train = result.train
    trained = f", train {train.images_per_s:,.1f} img/s (MFU {train.mfu:.1%})" if train else ""
    return (
        f"{result.name}: batch {result.batch_size}{trained}, "
        f"inference {result.inference.images_per_s:,.1f} img/s"
    )
