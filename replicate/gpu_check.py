"""Every check that needs a GPU, in one prepared call that fits a short device lease.

    python -m replicate.gpu_check --out $OUT             # on the GPU machine, data in .data/
    python -m replicate.gpu_check --unpack gpu-check.tar.gz   # here: into results/gpu/DEVICE/

The parts run in order (`PARTS`), each a list of commands with a budget in seconds. A part runs
under the smaller of its budget and what is left of the whole (`--budget`, 540 s), is stopped
at that limit, and is skipped, saying so, when less than its minimum is left. Each part's output
goes to `parts/NAME.log`; the bench and the studies write their results under the same folder;
`gpu_check.json` records the device and every part's outcome. Everything is packed into one
archive, `gpu-check.tar.gz` (the device machine hands back a few files, not a tree), which
`--unpack` extracts here, so what the GPU measured is committed as it was measured.

Not among the parts: nvJPEG decoding in the streamed loader, which the loader does not have yet.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import subprocess
import sys
import tarfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from replicate.cli_errors import ArgumentParser, positive_int, run_cli

ARCHIVE = "gpu-check.tar.gz"
WORK = Path(".gpu-check")  # where the parts write, relative to the checkout (git-ignored)
MANIFEST = "gpu_check.json"
# Checkpoints and weights stay behind: a ViT-B/16 checkpoint alone is ~1 GB, and the device
# hands back at most 16 MB a file.
WEIGHTS = (".pt", ".pth", ".safetensors")
PYTHON = sys.executable


@dataclass(frozen=True)
class Part:
    name: str
    budget_s: int  # at most this long
    commands: tuple[tuple[str, ...], ...]  # run in turn; "{out}" stands for the part's folder
    min_s: int = 30  # skipped when less than this is left


def _python(line: str) -> tuple[str, ...]:
    return (PYTHON, *shlex.split(line))


BENCH = "-m replicate.bench --out {out}"
TRAIN_LOOP = (
    "-m replicate.train --variant vit_b16 --dataset imagefolder:.data/cifar10 --image-size 224 "
    "--batch-size 256 --steps 60 --final-eval-only --out {out}/run"
)
FLAGSHIP = "-m replicate.train --config configs/cifar10_vit_ti4_flagship.py --out {out}/run"
STUDIES = "-m replicate.study transfer --scale gpu --out {out}/studies --figures {out}/figures"
PARTS = (
    Part("cuda-tests", 150, (_python("-m pytest -m cuda -q -p no:cacheprovider"),)),
    Part("bench-vit_b16", 120, (_python(f"{BENCH} --variant vit_b16 --batch-size 256"),)),
    Part(
        "bench-vit_b16-compiled",
        120,
        (_python(f"{BENCH} --variant vit_b16 --batch-size 256 --compile --models ours,timm"),),
        min_s=60,
    ),
    Part("bench-vit_l16", 90, (_python(f"{BENCH} --variant vit_l16 --models ours,timm"),)),
    Part(
        "train-loop",
        75,
        (_python(TRAIN_LOOP), _python(f"{BENCH} --train-run {{out}}/run")),
        min_s=60,
    ),
    # The CPU flagship's config, as it is: its accuracy by epoch in minutes, not hours.
    Part("flagship-recipe", 180, (_python(FLAGSHIP),), min_s=60),
    # The study whose runs are short at the gpu scale (data-size's run for about 200 epochs).
    Part("studies-gpu", 240, (_python(STUDIES),), min_s=60),
)


@dataclass(frozen=True)
class Outcome:
    name: str
    status: str  # "passed", "failed", "timed out" or "skipped"
    seconds: float
    detail: str = ""


def run_parts(parts: Sequence[Part], budget_s: float, out: Path) -> list[Outcome]:
    """Each part under what is left of `budget_s`; its log in out/parts/NAME.log."""
    deadline = time.monotonic() + budget_s
    outcomes = []
    for part in parts:
        left = deadline - time.monotonic()
        if left < part.min_s:
            outcomes.append(Outcome(part.name, "skipped", 0.0, f"{left:.0f} s left of the budget"))
            print(f"gpu_check: {part.name}: skipped ({left:.0f} s left)", flush=True)
            continue
        outcomes.append(run_part(part, min(part.budget_s, left), out))
        print(f"gpu_check: {part.name}: {outcomes[-1].status}", flush=True)
    return outcomes


def run_part(part: Part, limit_s: float, out: Path) -> Outcome:
    folder = out / part.name
    log = out / "parts" / f"{part.name}.log"
    for path in (folder, log.parent):
        path.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    with log.open("w") as stream:
        for command in part.commands:
            command = [arg.replace("{out}", str(folder)) for arg in command]
            remaining = limit_s - (time.monotonic() - start)
            try:
                done = subprocess.run(
                    command, stdout=stream, stderr=subprocess.STDOUT, timeout=max(1, remaining)
                )
            except subprocess.TimeoutExpired:
                return Outcome(part.name, "timed out", time.monotonic() - start, " ".join(command))
            if done.returncode:
                detail = f"exit {done.returncode}: {' '.join(command)}"
                return Outcome(part.name, "failed", time.monotonic() - start, detail)
    return Outcome(part.name, "passed", time.monotonic() - start)


def device_name() -> str:
    import torch

    return torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU"


def pack(work: Path, outcomes: list[Outcome], device: str, out: Path) -> Path:
    """The manifest, then everything under `work` but weights in out/ARCHIVE; `work` is removed,
    so that `out` holds the archive and a copy of the manifest alone."""
    manifest = json.dumps({"device": device, "parts": [asdict(o) for o in outcomes]}, indent=2)
    (work / MANIFEST).write_text(manifest + "\n")
    archive = out / ARCHIVE
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(work.iterdir()):
            tar.add(path, arcname=path.name, filter=_without_weights)
    shutil.rmtree(work)
    (out / MANIFEST).write_text(manifest + "\n")
    return archive


def _without_weights(member: tarfile.TarInfo) -> tarfile.TarInfo | None:
    return None if member.name.endswith(WEIGHTS) else member


def unpack(archive: Path, results: Path) -> Path:
    """The archive's contents under results/gpu/DEVICE/ (DEVICE from its manifest)."""
    with tarfile.open(archive) as tar:
        manifest = json.load(tar.extractfile(MANIFEST))
        slug = "-".join(manifest["device"].lower().replace("/", " ").split())
        target = results / "gpu" / slug
        tar.extractall(target, filter="data")
    return target


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="python -m replicate.gpu_check",
        description="Every GPU check in one budgeted call, packed into one archive.",
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--out", type=Path, help="where the archive goes")
    parser.add_argument("--budget", type=positive_int, default=540, help="seconds in all (540)")
    parser.add_argument("--unpack", type=Path, metavar="ARCHIVE", help="extract a run's archive")
    parser.add_argument("--results", type=Path, default=Path("results"), help="for --unpack")
    return parser


def main(argv: Sequence[str] | None = None) -> Path:
    args = build_parser().parse_args(argv)
    if args.unpack:
        target = unpack(args.unpack, args.results)
        print(f"unpacked {args.unpack} into {target}")
        return target
    if args.out is None:
        raise ValueError("--out is needed: the folder the archive goes to (on the device, $OUT)")
    work = WORK  # in the checkout: the runs' configs record paths that mean something here too
    work.mkdir(parents=True, exist_ok=True)
    outcomes = run_parts(PARTS, args.budget, work)
    archive = pack(work, outcomes, device_name(), args.out)
    print(f"wrote {archive}")
    return archive


if __name__ == "__main__":
    raise SystemExit(run_cli("replicate.gpu_check", main))
