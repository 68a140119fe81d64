"""replicate.bench: throughput, MFU and peak memory of this project's ViT beside timm's and
torchvision's (project issue 5). Run it with `python -m replicate.bench --help`.

    replicate/bench/contenders.py    ours, timm, torchvision: the same variant, randomly initialised
    replicate/bench/steps.py         what is timed: a training step, an inference forward
    replicate/bench/measure.py       timing (CUDA events), matmul peak, peak memory
    replicate/bench/max_batch.py     the largest training batch that fits (doubling, bisecting)
    replicate/bench/graph_breaks.py  graph breaks under torch.compile (torch._dynamo.explain)
    replicate/bench/runner.py        BenchConfig -> BenchReport
    replicate/bench/environment.py   device name and library versions
    replicate/bench/report.py        the JSON and the Markdown table

MFU is model FLOPs (from `replicate.flops`, the same for every implementation of a variant;
a training step counts 3x the forward) per second over a measured large-matmul peak.
"""

from replicate.bench.runner import BenchConfig, BenchReport, run_bench

__all__ = ["BenchConfig", "BenchReport", "run_bench"]
