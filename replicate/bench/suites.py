"""Fixed sets of benchmark configurations, each timed in fp32 and in bf16, eager and compiled
(inductor's C++ backend on a CPU), with timm's model of the same configuration beside ours.

    python -m replicate.bench --suite cpu      # the studies' models and ViT inference at 224

Writes every configuration's report (`results/bench/<stem>.json` and `.md`) and one table of
them all, `results/bench/suite-cpu.md`, with the CPU's name and cores.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from replicate.bench.contenders import BenchConfig
from replicate.bench.measure import run_bench
from replicate.bench.report import BenchReport, ModelResult, write_report

# Short blocks: a CPU step of the studies' models takes ~0.5 s; the medians are stable to ~5%.
_TIMING = {"warmup": 3, "steps": 5, "repeats": 3}
# The studies' cpu scale (`replicate.study.scales.CPU`): their ViT and ResNet at 32 x 32.
STUDY_VIT = {"patch_size": 4, "depth": 5, "dropout": 0.1}
STUDY_BIT = {"stem": "small", "layers": (1, 1, 1, 1), "width": 0.5}


@dataclass(frozen=True)
class SuiteEntry:
    title: str
    config: BenchConfig


CPU = (
    SuiteEntry(
        "studies' ViT-Ti/4 (5 layers), 32x32, batch 128",
        BenchConfig(
            "vit_ti16", ("ours", "timm"), 128, 32, 10, model_overrides=STUDY_VIT, **_TIMING
        ),
    ),
    SuiteEntry(
        "studies' BiT-R14x0.5, 32x32, batch 128 (ours is timm's ResNetV2)",
        BenchConfig("bit_r50x1", ("ours",), 128, 32, 10, model_overrides=STUDY_BIT, **_TIMING),
    ),
    SuiteEntry(
        "ViT-Ti/16, 224x224, inference batch 8",
        BenchConfig("vit_ti16", ("ours", "timm"), 8, 224, train=False, **_TIMING),
    ),
    SuiteEntry(
        "ViT-B/16, 224x224, inference batch 8",
        BenchConfig("vit_b16", ("ours", "timm"), 8, 224, train=False, **_TIMING),
    ),
)
SUITES = {"cpu": CPU}
PRECISIONS = ("fp32", "bf16")
MODES = (None, "default")  # eager, torch.compile's default mode


def run_suite(
    name: str, out: Path, log: Callable[[str], None] = print
) -> tuple[list[BenchReport], Path]:
    """Every entry of suite `name` in every precision and mode; the reports and the table."""
    reports = []
    for entry in SUITES[name]:
        for precision in PRECISIONS:
            for mode in MODES:
                log(f"{entry.title}: {precision}, {mode or 'eager'}")
                config = replace(entry.config, precision=precision, compile_mode=mode)
                report = run_bench(config, log)
                write_report(report, out)
                reports.append(report)
    table = out / f"suite-{name}.md"
    table.write_text(suite_markdown(name, reports))
    return reports, table


def suite_markdown(name: str, reports: list[BenchReport]) -> str:
    """One row per configuration, precision and mode: ours and timm's images/s, their ratio,
    and our MFU against the measured matmul peak of that precision."""
    first = reports[0]
    lines = [
        f"# Benchmark suite `{name}`",
        "",
        f"{first.device.name}, {torch.get_num_threads()} threads; torch "
        f"{first.versions['torch']}, timm {first.versions['timm']}. Medians of timed blocks; "
        "MFU: model FLOP/s (a training step counts 3 forwards) over the measured matmul peak "
        "of the row's precision.",
        "",
        "| configuration | precision | mode | phase | ours img/s | timm img/s | ours / timm | "
        "ours MFU | matmul peak |",
        "| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for report in reports:
        config = report.config
        ours, timm = (_result(report, kind) for kind in ("ours", "timm"))
        for phase in ("train", "inference"):
            mine = getattr(ours, phase) if ours else None
            if mine is None:
                continue
            theirs = getattr(timm, phase) if timm else None
            ratio = f"{mine.images_per_s / theirs.images_per_s:.2f}x" if theirs else "-"
            lines.append(
                f"| {config.variant} {config.image_size}px b{config.batch_size} "
                f"| {report.precision} | {config.compile_mode or 'eager'} | {phase} "
                f"| {mine.images_per_s:,.0f} | "
                + (f"{theirs.images_per_s:,.0f}" if theirs else "-")
                + f" | {ratio} | {mine.mfu:.1%} | {report.matmul_peak_flops / 1e9:,.0f} GFLOP/s |"
            )
    return "\n".join(lines) + "\n"


def _result(report: BenchReport, kind: str) -> ModelResult | None:
    return next((r for r in report.results if r.model == kind and not r.skipped), None)
