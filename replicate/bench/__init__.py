"""replicate.bench: throughput, MFU and peak memory of this project's ViT beside timm's and
torchvision's. `python -m replicate.bench --help` runs it.

    replicate/bench/__main__.py     the command line
    replicate/bench/contenders.py   BenchConfig; ours, timm, torchvision: what each step runs
    replicate/bench/measure.py      BenchConfig -> BenchReport: timing, MFU, max batch
    replicate/bench/report.py       what was measured and where (device, versions), the JSON and
                                    the Markdown table, and the training loop's throughput beside
                                    the bench's (--train-run)
    replicate/bench/suites.py       the named sets of configurations (--suite)
"""

from replicate.bench.contenders import BenchConfig
from replicate.bench.measure import run_bench
from replicate.bench.report import BenchReport

__all__ = ["BenchConfig", "BenchReport", "run_bench"]
