"""How the trainer fares on a shared machine, as a laptop always is: the studies' ViT trained
briefly on digits alone and beside one other CPU-bound process, under each OpenMP setting.

    python -m replicate.bench.shared_machine          # about 7 minutes on 2 cores

OpenMP's threads spin while they wait for work (libgomp's active wait): beside another process
that holds a core, a spinning thread takes the time the working one needs. `OMP_WAIT_POLICY`
`PASSIVE` makes them sleep instead, and `replicate` sets it unless the environment says
otherwise; one thread per core left is the other way out. Each setting
trains in a fresh process (OpenMP reads its settings when torch loads it). Writes
results/bench/shared-machine-<device>.json and .md: images per second, the median of the epochs
after the first, and the slow-down beside the busy process.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

import torch

from replicate.bench.report import describe_device
from replicate.cli_errors import run_cli
from replicate.runs.files import atomic_path, write_json
from replicate.runs.log import read_metrics

TRAIN = ("--variant", "vit_ti16", "--model-arg", "patch_size=4", "--model-arg", "depth=5",
         "--image-size", "32", "--epochs", "6", "--workers", "0", "--final-eval-only")  # fmt: skip
SETTINGS = {  # the environment each run starts with
    "none (the commands' default: PASSIVE)": {},
    "OMP_WAIT_POLICY=ACTIVE": {"OMP_WAIT_POLICY": "ACTIVE"},
    "one thread": {"OMP_NUM_THREADS": "1"},
}
BUSY = (sys.executable, "-c", "while True: pass")  # one other CPU-bound process


@contextmanager
def busy(on: bool):
    process = subprocess.Popen(BUSY) if on else None
    try:
        yield
    finally:
        if process:
            process.kill()
            process.wait()


def images_per_s(environment: dict[str, str], beside_busy: bool) -> float:
    """Median images/s of a short run's epochs after the first (which warms up)."""
    with tempfile.TemporaryDirectory() as folder, busy(beside_busy):
        env = {k: v for k, v in os.environ.items() if not k.startswith("OMP_")}
        command = [sys.executable, "-m", "replicate.train", *TRAIN, "--out", f"{folder}/run"]
        subprocess.run(command, env={**env, **environment}, check=True, capture_output=True)
        epochs = read_metrics(Path(folder) / "run" / "metrics.jsonl")
    return statistics.median(e["images_per_s"] for e in epochs[1:])


def main(argv: list[str] | None = None) -> dict:
    rows = {}
    for name, environment in SETTINGS.items():
        alone, shared = images_per_s(environment, False), images_per_s(environment, True)
        rows[name] = {"alone": alone, "beside_busy": shared, "slowdown": alone / shared}
        print(f"{name}: {alone:.0f} img/s alone, {shared:.0f} beside a busy process")
    device = describe_device(torch.device("cpu"))
    result = {"device": device.name, "cores": os.cpu_count(), "command": list(TRAIN),
              "images_per_s": rows}  # fmt: skip
    stem = Path("results/bench") / f"shared-machine-{device.slug}"
    write_json(stem.with_suffix(".json"), result)
    lines = [f"Training on a shared machine ({device.name}), `python -m replicate.train "
             f"{' '.join(TRAIN)}`: images/s, median of the epochs after the first.", "",
             "| OpenMP | alone | beside one busy process | slower by |",
             "| --- | ---: | ---: | ---: |",
             *(f"| {name} | {r['alone']:.0f} | {r['beside_busy']:.0f} | {r['slowdown']:.2f}x |"
               for name, r in rows.items())]  # fmt: skip
    with atomic_path(stem.with_suffix(".md")) as path:
        path.write_text("\n".join(lines) + "\n")
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    raise SystemExit(run_cli("replicate.bench.shared_machine", main))
