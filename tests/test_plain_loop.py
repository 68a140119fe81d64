"""`python -m replicate.study.plain_loop`: the tutorial-style loop the studies' training is
checked against, for both of the cpu scale's models."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from replicate.study.plain_loop import augment, plain_loop


def test_each_crop_is_a_window_of_the_padded_image_maybe_mirrored() -> None:
    images = torch.randint(1, 255, (16, 3, 32, 32), dtype=torch.uint8)
    crops = augment(images, torch.Generator().manual_seed(0))
    assert crops.shape == images.shape
    padded = F.pad(images, (4, 4, 4, 4))
    for image, crop in zip(padded, crops, strict=True):
        windows = [image[:, r : r + 32, c : c + 32] for r in range(9) for c in range(9)]
        assert any(torch.equal(crop, w) or torch.equal(crop, w.flip(-1)) for w in windows)


def write_cifar_like(root: Path) -> Path:
    """Two classes of 32x32 images, dark and bright, in train/ and val/."""
    generator = torch.Generator().manual_seed(0)
    for split in ("train", "val"):
        for label, name in enumerate(("dark", "bright")):
            (root / split / name).mkdir(parents=True)
            for i in range(4):
                base = 40 + 170 * label
                pixels = torch.randint(base, base + 40, (32, 32, 3), generator=generator)
                Image.fromarray(pixels.to(torch.uint8).numpy()).save(
                    root / split / name / f"{i}.png"
                )
    return root


@pytest.mark.parametrize("model", ["vit", "bit"])
def test_the_plain_loop_trains_either_model_and_scores_the_test_split(
    tmp_path: Path, model: str
) -> None:
    torch.set_num_threads(1)
    accuracy = plain_loop(write_cifar_like(tmp_path), steps=2, model_name=model)
    assert accuracy in {i / 8 for i in range(9)}  # 8 test images


def test_the_check_compares_with_a_finished_run_of_the_same_budget(tmp_path: Path) -> None:
    import json

    from replicate.study.plain_loop import main

    torch.set_num_threads(1)
    run = tmp_path / "run"
    run.mkdir()
    finished = {"epoch": 1, "step": 2, "test_acc": 0.625, "wall_time_s": 9.0}
    (run / "metrics.jsonl").write_text(json.dumps(finished) + "\n")
    data, out = write_cifar_like(tmp_path / "data"), tmp_path / "vit.json"
    normalisation = ["--mean", "0.4", "0.5", "0.6", "--std", "0.2", "0.25", "0.3"]
    results = main(["--data", str(data), "--steps", "2", "--compare", str(run), "--out", str(out),
                    *normalisation])  # fmt: skip
    record = json.loads(out.read_text())
    assert (record["mean"], record["std"]) == ([0.4, 0.5, 0.6], [0.2, 0.25, 0.3])
    assert record["test_top1"] == results and results["replicate.train"] == 0.625
    assert record["steps"] == 2 and record["wall_time_s"]["replicate.train"] == 9.0
    assert "commit" in record and record["device"]
    with pytest.raises(ValueError, match="ran 2 steps, not 3: compare equal budgets"):
        main(["--data", str(data), "--steps", "3", "--compare", str(run)])
