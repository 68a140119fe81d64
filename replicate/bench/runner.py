"""The benchmark run: each contender built, timed for training and inference, and released in
turn, on the same device, synthetic batch, precision and compile mode."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch

from replicate.bench.contenders import CONTENDERS, Unavailable, build_contender, label
from replicate.bench.environment import DeviceInfo, describe_device, library_versions
from replicate.bench.graph_breaks import GraphBreaks, explain
from replicate.bench.max_batch import largest_training_batch
from replicate.bench.measure import (
    matmul_peak_flops,
    measure_rate,
    peak_memory,
    release_memory,
    reset_peak_memory,
    warm_up,
)
from replicate.bench.steps import (
    PRECISIONS,
    compiled,
    inference_step,
    synthetic_batch,
    train_step,
)
from replicate.flops import forward_flops

TRAIN_FLOPS_PER_FORWARD = 3  # backward costs twice the forward: d/dinput and d/dweight


@dataclass(frozen=True)
class BenchConfig:
    variant: str = "vit_b16"  # a registered ViT: vit_ti16, vit_s16, vit_b16, ..., vit_h14
    models: tuple[str, ...] = CONTENDERS  # implementations to time, in this order
    batch_size: int = 256  # per step; where the search starts with find_max_batch
    image_size: int = 224
    num_classes: int = 1000
    precision: str | None = None  # "bf16" autocast or "fp32"; None: bf16 on CUDA, fp32 on CPU
    compile_mode: str | None = None  # a torch.compile mode ("default", "max-autotune"); None: eager
    warmup: int = 5  # untimed steps first: compilation, autotuning, allocator warm-up
    steps: int = 20  # steps per timed block
    repeats: int = 5  # timed blocks; the median is reported
    find_max_batch: bool = False  # each model at its largest training batch (GPU only)
    explain: bool = False  # count graph breaks in our model with torch._dynamo.explain
    device: str | None = None  # None: cuda when available, else cpu


@dataclass(frozen=True)
class Phase:
    """Training steps or inference forwards of one model."""

    images_per_s: float  # median over the timed blocks
    images_per_s_blocks: tuple[float, ...]
    mfu: float  # model FLOP utilisation: model FLOP/s over the measured matmul peak
    peak_memory_bytes: int | None  # torch.cuda.max_memory_allocated; None on CPU


@dataclass(frozen=True)
class ModelResult:
    model: str  # "ours", "timm" or "torchvision"
    name: str  # e.g. "timm vit_base_patch16_224"
    params: int | None = None
    batch_size: int | None = None
    train: Phase | None = None
    inference: Phase | None = None
    skipped: str | None = None  # why it was not timed


@dataclass(frozen=True)
class BenchReport:
    config: BenchConfig
    precision: str  # as resolved for the device
    device: DeviceInfo
    versions: dict[str, str | None]
    forward_flops: int  # per image, counted by replicate.flops; a training step costs 3x
    matmul_peak_flops: float  # FLOP/s of large matmuls at `precision` on this device
    results: tuple[ModelResult, ...]
    graph_breaks: GraphBreaks | None  # of our model, when asked for

    def to_dict(self) -> dict:
        return asdict(self)


def run_bench(config: BenchConfig, log: Callable[[str], None] = print) -> BenchReport:
    device = torch.device(config.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    precision = config.precision or ("bf16" if device.type == "cuda" else "fp32")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # for the patch-embedding conv; same for all models
    flops = forward_flops(config.variant, config.image_size, config.num_classes)
    peak = matmul_peak_flops(device, PRECISIONS[precision])
    device_info = describe_device(device)
    log(f"{device_info.name}: {precision} matmul peak {peak / 1e12:.1f} TFLOP/s")
    results = []
    for kind in config.models:
        result = bench_model(kind, config, device, precision, flops, peak)
        log(_summary(result))
        results.append(result)
        torch._dynamo.reset()  # drop compiled graphs, and the memory they hold on to
        release_memory(device)
    return BenchReport(
        config=config,
        precision=precision,
        device=device_info,
        versions=library_versions(),
        forward_flops=flops,
        matmul_peak_flops=peak,
        results=tuple(results),
        graph_breaks=_explain_ours(config, device) if config.explain else None,
    )


def bench_model(
    kind: str,
    config: BenchConfig,
    device: torch.device,
    precision: str,
    flops: int,
    peak: float,
) -> ModelResult:
    """Time training steps, then inference, of contender `kind`."""
    name = label(kind, config.variant)
    try:
        with device:  # initialise on the device: seconds, not minutes, for ViT-H
            model = build_contender(kind, config.variant, config.image_size, config.num_classes)
    except Unavailable as why:
        return ModelResult(kind, name, skipped=str(why))
    batch_size = config.batch_size
    if config.find_max_batch:
        batch_size = largest_training_batch(
            model, config.image_size, config.num_classes, precision, start=config.batch_size
        )
    images, labels = synthetic_batch(batch_size, config.image_size, config.num_classes, device)
    forward = compiled(model, config.compile_mode) if config.compile_mode else model

    def time_phase(step: Callable[[], None], flops_per_image: int) -> Phase:
        warm_up(step, config.warmup, device)
        reset_peak_memory(device)
        rate = measure_rate(
            step, batch_size, steps=config.steps, repeats=config.repeats, device=device
        )
        mfu = rate.median * flops_per_image / peak
        return Phase(rate.median, rate.blocks, mfu, peak_memory(device))

    params = sum(p.numel() for p in model.parameters())
    try:
        # The training closure (and its optimizer state) is gone before inference is timed.
        train = time_phase(
            train_step(forward, model, images, labels, precision), TRAIN_FLOPS_PER_FORWARD * flops
        )
        inference = time_phase(inference_step(forward, model, images, precision), flops)
    except torch.cuda.OutOfMemoryError:
        why = f"out of memory at batch {batch_size}; --find-max-batch finds one that fits"
        return ModelResult(kind, name, params, batch_size, skipped=why)
    return ModelResult(kind, name, params, batch_size, train, inference)


def _explain_ours(config: BenchConfig, device: torch.device) -> GraphBreaks:
    with device:
        model = build_contender("ours", config.variant, config.image_size, config.num_classes)
    images, _ = synthetic_batch(2, config.image_size, config.num_classes, device)
    return explain(model, images)


def _summary(result: ModelResult) -> str:
    if result.skipped:
        return f"{result.name}: skipped ({result.skipped})"
    return (
        f"{result.name}: batch {result.batch_size}, train {result.train.images_per_s:,.1f} img/s "
        f"(MFU {result.train.mfu:.1%}), inference {result.inference.images_per_s:,.1f} img/s"
    )
