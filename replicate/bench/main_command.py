"""The README's main command end to end in each precision, one after the other on the same
machine: what the default (bf16 on a CPU with AMX) gains over `--precision fp32` in wall time,
and the final test accuracy of each (the same seed, data and steps).

    python -m replicate.bench.main_command                     # ViT-B/16 on digits, ~7 min
    python -m replicate.bench.main_command -- --epochs 1       # options after -- go to train

Writes results/bench/main-command-<device>.json and .md.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from replicate.bench.report import describe_device, library_versions
from replicate.cli_errors import run_cli
from replicate.runs.files import atomic_path, read_json, write_json
from replicate.runs.log import CONFIG, last_epoch
from replicate.train import main as train_main

COMMAND = ("--variant", "vit_b16")  # the README's main command
PRECISIONS = ("default", "fp32")


def timed_run(precision: str, options: Sequence[str], out: Path) -> dict:
    """Train once and return the wall time end to end (data, model, every epoch and its
    evaluation), the precision the run chose and its last test top-1."""
    argv = [*COMMAND, *options, "--out", str(out)]
    start = time.perf_counter()
    train_main(argv if precision == "default" else [*argv, "--precision", precision])
    wall = time.perf_counter() - start
    last = last_epoch(out)
    return {
        "precision": read_json(out / CONFIG)["precision"],
        "wall_time_s": wall,
        "test_acc": last["test_acc"],
        "steps": last["step"],
    }


def markdown(result: dict) -> str:
    lines = [
        "# The README's main command, in each precision",
        "",
        f"`python -m replicate.train {' '.join(result['command'])}` on {result['device']} "
        f"({result['cores']} cores), torch {result['versions']['torch']}, each run alone.",
        "",
        "| precision | wall time | test top-1 | steps |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name, run in result["runs"].items():
        label = f"{run['precision']} (the default)" if name == "default" else run["precision"]
        lines.append(f"| {label} | {run['wall_time_s'] / 60:.1f} min | "
                     f"{100 * run['test_acc']:.1f}% | {run['steps']} |")  # fmt: skip
    lines += ["", f"The default is **{result['speedup']:.2f}x** as fast as fp32 end to end."]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> dict:
    argv = sys.argv[1:] if argv is None else list(argv)
    split = argv.index("--") if "--" in argv else len(argv)
    parser = argparse.ArgumentParser(prog="python -m replicate.bench.main_command",
                                     description=__doc__.split("\n\n")[0])  # fmt: skip
    parser.add_argument("--out", type=Path, default=Path("results/bench"))
    args = parser.parse_args(argv[:split])
    options = argv[split + 1 :]
    device = describe_device(torch.device("cuda" if torch.cuda.is_available() else "cpu"))
    with tempfile.TemporaryDirectory() as folder:
        runs = {p: timed_run(p, options, Path(folder) / p) for p in PRECISIONS}
    result = {
        "command": [*COMMAND, *options],
        "device": device.name,
        "cores": torch.get_num_threads(),
        "versions": library_versions(),
        "runs": runs,
        "speedup": runs["fp32"]["wall_time_s"] / runs["default"]["wall_time_s"],
    }
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / f"main-command-{device.slug}.json", result)
    with atomic_path(args.out / f"main-command-{device.slug}.md") as path:
        path.write_text(markdown(result))
    print(markdown(result))
    return result


if __name__ == "__main__":
    raise SystemExit(run_cli("replicate.bench.main_command", main))
