"""`python -m replicate.gpu_check`: the budget, the skipping, the packing and the unpacking, with
stand-in commands for the CUDA parts (the real ones need the GPU machine)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

from replicate import gpu_check
from replicate.gpu_check import Part, pack, run_parts, unpack


def sleeper(seconds: float, write: str = "") -> tuple[str, ...]:
    code = f"import time, pathlib; time.sleep({seconds})"
    if write:
        code += f"; pathlib.Path({write!r}).write_text('measured')"
    return (sys.executable, "-c", code)


def test_parts_run_in_turn_within_the_budget_and_the_rest_is_skipped(tmp_path: Path) -> None:
    parts = [
        Part("quick", 10, (sleeper(0, "{out}/result.json"),), min_s=1),
        Part("failing", 10, ((sys.executable, "-c", "raise SystemExit(3)"),), min_s=1),
        Part("slow", 2, (sleeper(30),), min_s=1),  # stopped at its own budget
        Part("late", 10, (sleeper(0),), min_s=60),  # less than its minimum is left
    ]
    outcomes = run_parts(parts, budget_s=20, out=tmp_path)
    assert [o.status for o in outcomes] == ["passed", "failed", "timed out", "skipped"]
    assert 1.5 < outcomes[2].seconds < 10 and "exit 3" in outcomes[1].detail
    assert (tmp_path / "quick" / "result.json").read_text() == "measured"
    assert (tmp_path / "parts" / "failing.log").is_file()


def test_the_archive_holds_everything_and_unpacks_under_the_device(tmp_path: Path) -> None:
    work, out = tmp_path / "work", tmp_path / "out"
    outcomes = run_parts([Part("bench", 10, (sleeper(0, "{out}/b.json"),), min_s=1)], 20, work)
    (work / "bench" / "run").mkdir()
    (work / "bench" / "run" / "checkpoint.pt").write_bytes(b"weights")
    out.mkdir()
    archive = pack(work, outcomes, "NVIDIA H200", out)
    assert sorted(p.name for p in out.iterdir()) == [gpu_check.ARCHIVE, gpu_check.MANIFEST]
    target = unpack(archive, tmp_path / "results")
    assert target == tmp_path / "results" / "gpu" / "nvidia-h200"
    assert (target / "bench" / "b.json").read_text() == "measured"
    assert (target / "bench" / "run").is_dir() and not (
        target / "bench" / "run" / "checkpoint.pt"
    ).exists()
    manifest = json.loads((target / gpu_check.MANIFEST).read_text())
    assert manifest["device"] == "NVIDIA H200" and manifest["parts"][0]["status"] == "passed"


def test_the_prepared_parts_call_modules_that_exist_within_a_device_call() -> None:
    """A device command runs at most 10 minutes: the whole budget is 9, and every part's command
    names a module this checkout has (a typo would waste the lease)."""
    assert gpu_check.build_parser().parse_args([]).budget <= 9 * 60
    for part in gpu_check.PARTS:
        assert part.min_s <= part.budget_s <= 9 * 60
        for command in part.commands:
            module = command[command.index("-m") + 1]
            assert importlib.util.find_spec(module) is not None, (part.name, module)
