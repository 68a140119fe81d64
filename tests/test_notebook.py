"""notebooks/paper_walkthrough.ipynb runs top to bottom: its code cells, in order, in one
namespace as a kernel would run them, with the training cell shortened (VIT_NOTEBOOK_STEPS)."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib
import pytest
import torch

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "paper_walkthrough.ipynb"
ATTENTION_SUMMARY = "results/studies/attention/study.json"


def code_cells(path: Path) -> list[str]:
    cells = json.loads(path.read_text())["cells"]
    return ["".join(cell["source"]) for cell in cells if cell["cell_type"] == "code"]


def test_the_notebook_runs_top_to_bottom(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys
) -> None:
    matplotlib.use("Agg")  # plt.show() draws nothing, as in a headless kernel
    monkeypatch.setenv("VIT_NOTEBOOK_STEPS", "2")
    monkeypatch.chdir(NOTEBOOK.parent)  # where Jupyter starts it
    torch.set_num_threads(1)
    namespace: dict = {}
    for index, source in enumerate(code_cells(NOTEBOOK)):
        try:
            exec(compile(source, f"{NOTEBOOK.name}, cell {index}", "exec"), namespace)
        except Exception as error:
            raise AssertionError(f"code cell {index} failed: {error!r}") from error
    printed = capsys.readouterr().out
    assert "x_p: (1, 64, 48) = (B, N = (32/4)^2, P^2 C)" in printed
    assert "z_0: (1, 65, 192)" in printed and "logits: (1, 10)" in printed
    assert namespace["similarity"].shape == (8, 8, 8, 8)  # the CIFAR-10 ViT's 8x8 grid
    attention = json.loads((NOTEBOOK.parents[1] / ATTENTION_SUMMARY).read_text())["runs"][0]
    position = attention["result"]["position"]["model"]  # the same weights' numbers
    committed = round(position["neighbours_minus_distant"], 3)
    assert f"position structure: {committed}" in printed
    assert f"'rows': {round(position['rows'], 3)}" in printed
    assert (namespace["out"] / "model.safetensors").is_file()
