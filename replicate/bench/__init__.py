"""replicate.bench: throughput, MFU and peak memory of this project's ViT beside timm's and
torchvision's. `python -m replicate.bench --help` runs it.

    replicate/bench/__main__.py     the command line
    replicate/bench/contenders.py   ours, timm, torchvision: what each step runs
    replicate/bench/measure.py      BenchConfig -> BenchReport: timing, MFU, max batch
    replicate/bench/report.py       device and versions, the JSON and the Markdown table, and the
                                    training loop's throughput beside the bench's (--train-run)
"""

from replicate.bench.measure import BenchConfig, run_bench
from replicate.bench.report import BenchReport

__all__ = ["BenchConfig", "BenchReport", "run_bench"]
