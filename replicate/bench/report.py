"""The report: where it ran (device, library versions), a JSON with every number and a Markdown
table for people, in `results/bench/`; with --train-run, the training loop's throughput beside
the bench's."""

from __future__ import annotations

import json
import platform
import re
import statistics
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path

import torch

from replicate.bench.contenders import BenchConfig
from replicate.flops import TRAIN_FLOPS_PER_FORWARD
from replicate.runs.log import METRICS, last_epoch, read_metrics
from replicate.runtime import cpu_isa

LIBRARIES = ("torch", "torchvision", "timm", "einops", "torchao")


@dataclass(frozen=True)
class DeviceInfo:
    type: str  # "cuda" or "cpu"
    name: str  # e.g. "NVIDIA H100 80GB HBM3", "AMD EPYC (AVX2)"
    slug: str  # the name for file names, e.g. "nvidia-h100-80gb-hbm3"; "cpu" for any CPU
    memory_bytes: int | None  # the GPU's total memory; None for a CPU


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
class TrainLoop:
    """`replicate.train` on real images beside the bench's training steps on a synthetic batch,
    for the same variant, batch, resolution, precision and compile mode."""

    run: str  # the run folder
    dataset: str
    images_per_s: float  # the median epoch after the first (which compiles and warms up)
    epochs_images_per_s: tuple[float, ...]
    bench_images_per_s: float
    ratio: float  # images_per_s / bench_images_per_s: the trainer's share of the bare step
    phase_s: dict[str, float]  # the loop's host seconds per phase, summed over those epochs


@dataclass(frozen=True)
class BenchReport:
    config: BenchConfig
    precision: str  # as resolved for the device
    device: DeviceInfo
    versions: dict[str, str | None]
    forward_flops: int  # per image, counted by replicate.flops; a training step costs 3x
    matmul_peak_flops: float  # FLOP/s of large matmuls at `precision` on this device
    results: tuple[ModelResult, ...]
    train_loop: TrainLoop | None = None  # with --train-run

    def to_dict(self) -> dict:
        return asdict(self)


def describe_device(device: torch.device) -> DeviceInfo:
    if device.type == "cuda":
        properties = torch.cuda.get_device_properties(device)
        slug = re.sub(r"[^a-z0-9]+", "-", properties.name.lower()).strip("-")
        return DeviceInfo("cuda", properties.name, slug, properties.total_memory)
    return DeviceInfo(device.type, f"{_cpu_name()} ({cpu_isa()})", device.type, None)


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:  # not Linux
        pass
    return platform.processor() or "CPU"


def library_versions() -> dict[str, str | None]:
    """Python, the libraries that are timed, and the CUDA toolkit torch was built with."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for library in LIBRARIES:
        try:
            versions[library] = metadata.version(library)
        except metadata.PackageNotFoundError:
            versions[library] = None
    versions["cuda"] = torch.version.cuda  # the toolkit torch was built with
    return versions


def _shown(folder: Path) -> str:
    """A run folder as a report names it: relative to the working directory when inside it,
    else by its name, so that a committed report holds no path of the machine it ran on."""
    try:
        return str(folder.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return folder.name


def train_loop(run: Path, bench_images_per_s: float) -> TrainLoop:
    """The throughput `replicate.train` logged in `run`/metrics.jsonl against the bench's."""
    last_epoch(run)  # a one-line error when the run logged none
    records = read_metrics(run / METRICS)
    steady = records[1:] or records  # the first epoch pays for compilation and warm-up
    images_per_s = statistics.median(r["images_per_s"] for r in steady)
    phases = sorted({phase for r in steady for phase in r.get("phase_s", {})})
    return TrainLoop(
        run=_shown(run),
        dataset=json.loads((run / "config.json").read_text())["dataset"],
        images_per_s=images_per_s,
        epochs_images_per_s=tuple(r["images_per_s"] for r in records),
        bench_images_per_s=bench_images_per_s,
        ratio=images_per_s / bench_images_per_s,
        phase_s={p: sum(r.get("phase_s", {}).get(p, 0.0) for r in steady) for p in phases},
    )


def output_stem(report: BenchReport) -> str:
    """e.g. "vit_b16-224-nvidia-h100-80gb-hbm3-bf16-eager": one file per variant, resolution,
    device and mode."""
    config = report.config
    mode = f"compile-{config.compile_mode}" if config.compile_mode else "eager"
    stem = f"{config.variant}-{config.image_size}-{report.device.slug}-{report.precision}-{mode}"
    stem += "-checkpointing" if config.grad_checkpointing else ""
    if report.train_loop:
        stem += f"-trainloop-{Path(report.train_loop.run).name}"
    return stem


def write_report(report: BenchReport, out_dir: Path) -> tuple[Path, Path]:
    """Write `<stem>.json` and `<stem>.md` under out_dir; return their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / f"{output_stem(report)}.json"
    md_path = json_path.with_suffix(".md")
    json_path.write_text(json.dumps(report.to_dict(), indent=2, default=str) + "\n")
    md_path.write_text(to_markdown(report))
    return json_path, md_path


def to_markdown(report: BenchReport) -> str:
    config = report.config
    lines = [
        f"## {config.variant} at {config.image_size}x{config.image_size}: "
        "training and inference throughput",
        "",
        f"- device: {report.device.name} ({report.device.type}); "
        + ", ".join(f"{name} {version}" for name, version in report.versions.items() if version),
        f"- {_settings(report)}",
        f"- model FLOPs per image: {report.forward_flops / 1e9:.2f} G forward, "
        f"{TRAIN_FLOPS_PER_FORWARD * report.forward_flops / 1e9:.2f} G per training step; "
        f"measured matmul peak {report.matmul_peak_flops / 1e12:.2f} TFLOP/s "
        "(MFU is against it)",
    ]
    lines += [f"- {r.name}: skipped ({r.skipped})" for r in report.results if r.skipped]
    lines += ["", *_table(report.results)]
    if report.train_loop:
        lines += ["", *_train_loop_lines(report.train_loop)]
    return "\n".join(lines) + "\n"


def _settings(report: BenchReport) -> str:
    config = report.config
    precision = {"bf16": "bf16 autocast", "fp8": "torchao float8 in bf16 autocast"}.get(
        report.precision, report.precision
    )
    mode = f"torch.compile(mode={config.compile_mode!r})" if config.compile_mode else "eager"
    batch = f"batch {config.batch_size}"
    optimizer = "fused AdamW" if report.device.type == "cuda" else "AdamW"
    checkpointing = ", gradient checkpointing" if config.grad_checkpointing else ""
    overrides = "".join(f", {k}={v}" for k, v in config.model_overrides.items())
    return (
        f"{precision}, {mode}, {batch}{checkpointing}{overrides}, synthetic data, {optimizer} "
        f"; {config.warmup} untimed warm-up steps, then the median "
        f"of {config.repeats} blocks of {config.steps} steps"
    )


def _table(results: tuple[ModelResult, ...]) -> list[str]:
    timed = [r for r in results if not r.skipped]
    timm = next((r for r in timed if r.model == "timm"), None)
    header = [
        "model", "params", "batch",
        "train img/s", "vs timm", "train MFU", "train peak memory",
        "inference img/s", "vs timm", "inference MFU", "inference peak memory",
    ]  # fmt: skip
    rows = [header, ["---"] * len(header)]
    for r in timed:
        rows.append(
            [r.name, f"{r.params / 1e6:.1f}M", str(r.batch_size)]
            + _phase_cells(r.train, timm.train if timm and r.train else None)
            + _phase_cells(r.inference, timm.inference if timm else None)
        )
    return ["| " + " | ".join(row) + " |" for row in rows]


def _phase_cells(phase: Phase | None, timm: Phase | None) -> list[str]:
    if phase is None:  # not timed (an inference-only configuration)
        return ["-"] * 4
    memory = phase.peak_memory_bytes
    return [
        f"{phase.images_per_s:,.1f}",
        f"{phase.images_per_s / timm.images_per_s:.2f}x" if timm else "-",
        f"{phase.mfu:.1%}",
        f"{memory / 2**30:.2f} GiB" if memory is not None else "n/a",
    ]


def _train_loop_lines(loop: TrainLoop) -> list[str]:
    total = sum(loop.phase_s.values())
    where = ", ".join(f"{p} {s / total:.0%}" for p, s in loop.phase_s.items()) if total else "-"
    return [
        f"### The training loop: `replicate.train` on {loop.dataset} ({loop.run})",
        "",
        f"- {loop.images_per_s:,.1f} img/s (median epoch after the first; epochs: "
        + ", ".join(f"{x:,.0f}" for x in loop.epochs_images_per_s)
        + f") against the bench's {loop.bench_images_per_s:,.1f}: **{loop.ratio:.0%}**",
        f"- where the loop's host time went (evaluation is outside the img/s): {where}",
    ]
