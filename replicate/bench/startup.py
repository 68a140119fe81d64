"""How long each command takes to answer `--help` and a mistyped option: the heavy libraries
(timm, torchvision, torchmetrics, matplotlib, scikit-learn, tensorboard) are imported where
they are used, so only torch is paid before the parser answers.

    python -m replicate.bench.startup            # median of 3 runs per command, in seconds
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

COMMANDS = ("train", "evaluate", "predict", "sweep", "fewshot", "figures", "study", "bench")
TARGET_S = 2.0


def seconds(argv: list[str], repeats: int) -> float:
    """The median wall time of `python -m ...argv` over `repeats` runs."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", *argv], capture_output=True, check=False)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> dict[str, tuple[float, float]]:
    parser = argparse.ArgumentParser(prog="python -m replicate.bench.startup", description=__doc__)
    parser.add_argument("--repeats", type=int, default=3, help="runs per command (3)")
    args = parser.parse_args(argv)
    results = {}
    print("| command | --help (s) | a mistyped option (s) |\n| --- | ---: | ---: |")
    for command in COMMANDS:
        module = f"replicate.{command}"
        results[command] = (
            seconds([module, "--help"], args.repeats),
            seconds([module, "--no-such-option"], args.repeats),
        )
        print(f"| {command} | {results[command][0]:.2f} | {results[command][1]:.2f} |")
    slow = [c for c, times in results.items() if max(times) > TARGET_S]
    print(f"over {TARGET_S} s: {', '.join(slow) or 'none'}")
    return results


if __name__ == "__main__":
    main()
