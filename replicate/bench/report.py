"""The report: a JSON with every number and a Markdown table for people, in `results/bench/`."""

from __future__ import annotations

import json
from pathlib import Path

from replicate.bench.runner import TRAIN_FLOPS_PER_FORWARD, BenchReport, ModelResult, Phase


def output_stem(report: BenchReport) -> str:
    """e.g. "vit_b16-nvidia-h100-80gb-hbm3-bf16-eager": one file per variant, device and mode."""
    config = report.config
    mode = f"compile-{config.compile_mode}" if config.compile_mode else "eager"
    max_batch = "-maxbatch" if config.find_max_batch else ""
    return f"{config.variant}-{report.device.slug}-{report.precision}-{mode}{max_batch}"


def write_report(report: BenchReport, out_dir: Path) -> tuple[Path, Path]:
    """Write `<stem>.json` and `<stem>.md` under out_dir; return their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / f"{output_stem(report)}.json"
    md_path = json_path.with_suffix(".md")
    json_path.write_text(json.dumps(report.to_dict(), indent=2) + "\n")
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
        f"measured {report.precision} matmul peak {report.matmul_peak_flops / 1e12:.2f} TFLOP/s "
        "(MFU is against it)",
    ]
    if report.graph_breaks:
        breaks = report.graph_breaks
        lines.append(
            f"- torch._dynamo.explain on ours: {breaks.graph_break_count} graph breaks, "
            f"{breaks.graph_count} graph(s)"
        )
    lines += [f"- {r.name}: skipped ({r.skipped})" for r in report.results if r.skipped]
    return "\n".join([*lines, "", *_table(report.results)]) + "\n"


def _settings(report: BenchReport) -> str:
    config = report.config
    precision = "bf16 autocast" if report.precision == "bf16" else report.precision
    mode = f"torch.compile(mode={config.compile_mode!r})" if config.compile_mode else "eager"
    batch = "largest batch that fits" if config.find_max_batch else f"batch {config.batch_size}"
    optimizer = "fused AdamW" if report.device.type == "cuda" else "AdamW"
    return (
        f"{precision}, {mode}, {batch}, synthetic data, {optimizer}; {config.warmup} untimed "
        f"warm-up steps, then the median of {config.repeats} blocks of {config.steps} steps"
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
            + _phase_cells(r.train, timm.train if timm else None)
            + _phase_cells(r.inference, timm.inference if timm else None)
        )
    return ["| " + " | ".join(row) + " |" for row in rows]


def _phase_cells(phase: Phase, timm: Phase | None) -> list[str]:
    memory = phase.peak_memory_bytes
    return [
        f"{phase.images_per_s:,.1f}",
        f"{phase.images_per_s / timm.images_per_s:.2f}x" if timm else "-",
        f"{phase.mfu:.1%}",
        f"{memory / 2**30:.2f} GiB" if memory is not None else "n/a",
    ]
