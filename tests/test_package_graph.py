"""The package graph: `vit` (the paper) imports nothing of the application; `baselines` imports
`vit` to register its CNNs, and `replicate` imports both."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import vit
from replicate import models

REPO = Path(__file__).resolve().parents[1]

BUILD_AND_LOAD_A_VIT = """
import sys, torch, vit
model = vit.create_model("vit_ti16", num_classes=3, image_size=32, depth=1)
torch.save(model.state_dict(), sys.argv[1])
loaded = vit.create_model("vit_ti16", num_classes=3, image_size=32, depth=1, pretrained=sys.argv[1])
assert torch.equal(loaded(torch.ones(1, 3, 32, 32)), model(torch.ones(1, 3, 32, 32)))
print(sorted(m for m in sys.modules if m.partition(".")[0] in ("replicate", "baselines")))
print(vit.list_models("cnn"))
"""


def test_vit_imports_neither_replicate_nor_baselines(tmp_path: Path) -> None:
    """In a fresh interpreter: building, saving and loading a ViT leaves the application out."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-c", BUILD_AND_LOAD_A_VIT, str(tmp_path / "vit.pt")]
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["[]", "[]"]  # no application module, no CNN registered


def test_the_application_registers_the_baselines_in_vits_registry() -> None:
    assert {"tinyvgg", "effnet_b0", "effnet_b2"} <= set(models.list_models("cnn"))
    assert models.get_model_entry("tinyvgg") is vit.get_model_entry("tinyvgg")  # one registry


@pytest.mark.parametrize("name", ["vit_b16", "vit_h14"])
def test_each_variant_is_one_function_named_after_it(name: str) -> None:
    from vit import variants

    config = getattr(variants, name)()
    assert variants.VARIANTS[name].config == config
    assert (config.image_size, config.num_classes) == (224, 1000)
