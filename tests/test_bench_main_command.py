"""`python -m replicate.bench.main_command`: the README's main command in the default precision
and in fp32, one after the other, with the wall time and test accuracy of each."""

from __future__ import annotations

import json
from pathlib import Path

from replicate.bench import main_command


def test_the_main_command_is_timed_in_each_precision(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(main_command, "COMMAND", ("--variant", "vit_ti16"))
    tiny = ["--model-arg", "depth=1", "--model-arg", "hidden_size=32", "--model-arg",
            "num_heads=2", "--model-arg", "mlp_size=64", "--model-arg", "patch_size=8",
            "--image-size", "16", "--steps", "2"]  # fmt: skip
    result = main_command.main(["--out", str(tmp_path), "--", *tiny])
    [report] = tmp_path.glob("main-command-*.json")
    assert json.loads(report.read_text()) == result
    assert result["runs"]["fp32"]["precision"] == "fp32"
    assert result["runs"]["default"]["precision"] in ("bf16", "fp32")  # AMX decides
    for run in result["runs"].values():
        assert run["steps"] == 2 and 0 <= run["test_acc"] <= 1 and run["wall_time_s"] > 0
    assert (
        result["speedup"]
        == result["runs"]["fp32"]["wall_time_s"] / (result["runs"]["default"]["wall_time_s"])
    )
    assert "as fast as fp32 end to end" in report.with_suffix(".md").read_text()
