"""`replicate.evaluate` and `replicate.predict` on checkpoints of `replicate.train`."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import numpy as np
import pytest
import timm
import timm.data
import torch
from conftest import SHARED_DATA, needs_shared_data
from PIL import Image
from safetensors.torch import save_file
from test_data import write_image_folder
from test_train import TINY_VIT, one_thread  # noqa: F401  (autouse)

from replicate import evaluate, predict, train
from replicate.cli_errors import run_cli
from replicate.data.augment import Augmentation
from replicate.data.datasets import digits_splits
from replicate.data.images import SquareImages
from replicate.training.checkpoint import WEIGHTS, load_model


@pytest.fixture(scope="module")
def vit_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("vit")
    train.main([*TINY_VIT, "--epochs", "2", "--lr", "3e-3", "--out", str(out)])
    return out


def digit_pngs(folder: Path, count: int) -> tuple[list[Path], list[int]]:
    """The first test digits as 8x8 RGB PNG files, the form a user's own image would take."""
    test = digits_splits(Path()).test
    paths = []
    for i in range(count):
        paths.append(folder / f"digit{i}.png")
        Image.fromarray(test[i][0].permute(1, 2, 0).numpy()).save(paths[-1])
    return paths, [int(test[i][1]) for i in range(count)]


def test_evaluate_reproduces_the_runs_final_test_accuracy(vit_run: Path, capsys) -> None:
    result = evaluate.main(["--checkpoint", str(vit_run / WEIGHTS)])
    final = json.loads((vit_run / "metrics.jsonl").read_text().splitlines()[-1])
    assert result.top1 == pytest.approx(final["test_acc"], abs=1e-6)
    assert result.loss == pytest.approx(final["test_loss"], rel=1e-6)  # other batch size
    assert result.confusion.sum() == 360
    printed = json.loads(capsys.readouterr().out)
    assert printed["dataset"] == "digits" and printed["test_acc"] == result.top1


def test_predict_matches_the_model_on_the_test_images(vit_run: Path, tmp_path: Path) -> None:
    paths, _ = digit_pngs(tmp_path, 4)
    checkpoint = ["--checkpoint", str(vit_run / WEIGHTS)]
    predictions = predict.main([*checkpoint, "--top-k", "3", *map(str, paths)])

    model, info = load_model(vit_run / WEIGHTS)
    test = SquareImages(digits_splits(Path()).test, info.image_size)
    batch = torch.stack([test[i][0] for i in range(4)])
    expected = model(Augmentation(info.mean, info.std).eval(batch)).softmax(-1)
    for prediction, probabilities in zip(predictions, expected, strict=True):
        names, values = zip(*prediction.top, strict=True)
        assert len(names) == 3 and list(values) == sorted(values, reverse=True)
        assert names[0] == info.classes[probabilities.argmax()]
        assert values[0] == pytest.approx(probabilities.max().item(), abs=1e-6)


def test_predict_with_a_tinyvgg_checkpoint(tmp_path: Path, capsys) -> None:
    folder = write_image_folder(tmp_path / "images")
    out = tmp_path / "run"
    train.main(["--variant", "tinyvgg", "--dataset", f"imagefolder:{folder}", "--steps", "2",
                "--batch-size", "4", "--out", str(out)])  # fmt: skip
    capsys.readouterr()
    image = folder / "val" / "dark" / "0.png"
    argv = ["--checkpoint", str(out / WEIGHTS), str(image)]
    assert run_cli("replicate.predict", predict.main, argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == str(image)
    assert {line.split()[0] for line in lines[1:]} == {"bright", "dark"}
    assert sum(float(line.split()[1]) for line in lines[1:]) == pytest.approx(1, abs=2e-3)


def test_bad_checkpoints_and_images_are_one_line_errors(
    vit_run: Path, tmp_path: Path, capsys
) -> None:
    foreign = tmp_path / "foreign.safetensors"
    save_file({"weight": torch.zeros(2)}, foreign)
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8 not really a jpeg")
    folder = write_image_folder(tmp_path / "images")
    cases = [
        (evaluate.main, ["--checkpoint", str(foreign)], "not a checkpoint of replicate.train"),
        (evaluate.main, ["--checkpoint", str(tmp_path / "missing.safetensors")], "no checkpoint"),
        (
            evaluate.main,
            ["--checkpoint", str(vit_run / WEIGHTS), "--dataset", f"imagefolder:{folder}"],
            "classes",
        ),  # fmt: skip
        (predict.main, ["--checkpoint", str(vit_run / WEIGHTS), str(corrupt)], "corrupt.jpg"),
    ]
    for main, argv, pattern in cases:
        assert run_cli("prog", main, argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and pattern in err, err


def test_predict_plots_each_image_titled_with_its_classes(
    vit_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from replicate.figures import plots

    drawn = {}
    draw = plots.draw_predictions
    monkeypatch.setattr(plots, "draw_predictions", lambda *a: drawn.update(args=a) or draw(*a))
    paths, _ = digit_pngs(tmp_path, 6)
    out = tmp_path / "plots" / "predictions.png"
    argv = ["--checkpoint", str(vit_run / WEIGHTS), "--top-k", "2", "--plot", str(out)]
    predictions = predict.main([*argv, *map(str, paths)])
    images, titles, _ = drawn["args"]
    assert len(images) == 6 and images[0].shape == (16, 16, 3) and 0 <= images[0].min()
    for prediction, title in zip(predictions, titles, strict=True):
        (first, p1), (second, p2) = prediction.top
        assert title.splitlines() == [Path(prediction.path).name, f"{first} {p1:.2f}",
                                      f"{second} {p2:.2f}"]  # fmt: skip
    with Image.open(out) as png:  # a grid of 4 columns and 2 rows
        assert png.width > png.height > 0.4 * png.width


def test_predict_plot_says_the_file_it_wrote_and_refuses_what_it_cannot_write(
    vit_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    paths, _ = digit_pngs(tmp_path, 1)
    argv = ["--checkpoint", str(vit_run / WEIGHTS), str(paths[0]), "--plot"]
    assert run_cli("replicate.predict", predict.main, [*argv, str(tmp_path / "grid")]) == 0
    assert f"wrote {tmp_path / 'grid.png'}\n" in capsys.readouterr().out
    assert (tmp_path / "grid.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(SystemExit) as exit_:  # refused by the parser, before any work
        predict.main([*argv, str(tmp_path / "grid.txt")])
    assert exit_.value.code == 2 and "cannot draw a .txt file" in capsys.readouterr().err


def test_a_full_disk_while_plotting_is_one_line_and_leaves_no_file(
    vit_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from matplotlib.figure import Figure

    def full_disk(self, path, **kwargs):
        Path(path).write_bytes(b"\x89PNG")  # a partial write, then the disk is full
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(Figure, "savefig", full_disk)
    paths, _ = digit_pngs(tmp_path, 1)
    out = tmp_path / "plots"
    argv = ["--checkpoint", str(vit_run / WEIGHTS), str(paths[0]), "--plot", str(out / "p.png")]
    assert run_cli("replicate.predict", predict.main, argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot write" in err and "No space left" in err
    assert not list(out.iterdir())  # neither the file nor its temporary


def test_a_run_checkpoint_refuses_another_variant_or_size(vit_run: Path, capsys) -> None:
    """The run fixes its model: a different --variant or --image-size is refused, not ignored;
    the run's own are accepted."""
    checkpoint = ["--checkpoint", str(vit_run / WEIGHTS)]
    argv = [*checkpoint, "--variant", "vit_b16", "--image-size", "32"]
    assert run_cli("replicate.evaluate", evaluate.main, argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert "drop --variant vit_b16 (it has vit_ti16) and --image-size 32 (it has 16)" in err
    assert evaluate.main([*checkpoint, "--variant", "vit_ti16", "--image-size", "16"]).top1 >= 0


def test_an_image_past_the_decompression_bomb_limit_is_one_line(
    vit_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """PIL refuses an image of over twice MAX_IMAGE_PIXELS (a 14000 x 14000 PNG): one line
    naming it, exit 2. The limit is lowered here so that a 64 x 64 image passes it."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    big = tmp_path / "big.png"
    Image.new("RGB", (64, 64)).save(big)
    argv = ["--checkpoint", str(vit_run / WEIGHTS), str(big)]
    assert run_cli("replicate.predict", predict.main, argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"cannot read image {big}: Image size (4096 pixels)" in err


HYMENOPTERA = SHARED_DATA / "hymenoptera_data"


def timm_vit_file(folder: Path, num_classes: int) -> tuple[torch.nn.Module, Path]:
    """A randomly initialised timm ViT-Ti/16 saved under its timm name, as a download would be."""
    reference = timm.create_model(
        "vit_tiny_patch16_224", pretrained=False, num_classes=num_classes
    ).eval()
    path = folder / "vit_tiny_patch16_224.pth"
    torch.save(reference.state_dict(), path)
    return reference, path


@needs_shared_data
def test_predict_with_weights_by_spec_matches_timm(tmp_path: Path) -> None:
    """A file of timm weights: the variant read off its name, the head its own (ImageNet's 1000
    classes, named), the photos squashed and scaled to [-1, 1]: the timm model's own answer."""
    reference, path = timm_vit_file(tmp_path, num_classes=1000)
    photos = sorted((HYMENOPTERA / "val/ants").iterdir())[:2]
    predictions = predict.main(["--weights", str(path), "--top-k", "2", *map(str, photos)])
    config = {"input_size": (3, 224, 224), "interpolation": "bilinear", "crop_pct": 1.0,
              "crop_mode": "squash", "mean": (0.5,) * 3, "std": (0.5,) * 3}  # fmt: skip
    transform = timm.data.create_transform(**config)
    names = timm.data.ImageNetInfo().index_to_description
    for prediction, photo in zip(predictions, photos, strict=True):
        with torch.no_grad():
            probabilities = reference(transform(Image.open(photo).convert("RGB"))[None]).softmax(-1)
        top = probabilities[0].topk(2)
        assert [name for name, _ in prediction.top] == [
            names(i).split(",")[0] for i in top.indices.tolist()
        ]
        torch.testing.assert_close(
            torch.tensor([p for _, p in prediction.top]), top.values, atol=2e-3, rtol=0
        )


@needs_shared_data
def test_evaluate_with_weights_by_spec(tmp_path: Path, capsys) -> None:
    _, path = timm_vit_file(tmp_path, num_classes=2)
    dataset = f"imagefolder:{HYMENOPTERA}"
    argv = ["--weights", str(path), "--image-size", "32", "--dataset", dataset]
    result = evaluate.main(argv)
    assert result.confusion.sum() == len(list(HYMENOPTERA.glob("val/*/*")))
    assert json.loads(capsys.readouterr().out)["test_acc"] == result.top1
    for bad, message in [
        (argv[:4], "--dataset: which test set"),
        (["--weights", "torchvision:IMAGENET1K_V1", "--dataset", dataset], "pass --variant"),
    ]:
        assert run_cli("replicate.evaluate", evaluate.main, bad) == 2
        assert message in capsys.readouterr().err
    _, path = timm_vit_file(tmp_path, num_classes=1000)
    assert run_cli("replicate.evaluate", evaluate.main, argv) == 2
    assert "has 2 classes, the weights 1000" in capsys.readouterr().err


@pytest.mark.parametrize("format", ["pt2", "onnx"])
def test_an_exported_model_gives_the_checkpoints_logits(
    vit_run: Path, tmp_path: Path, format: str
) -> None:
    """A real image through the exported file (torch.export's program; ONNX in onnxruntime),
    at a batch size other than the export's: the checkpoint's logits within 1e-4."""
    from replicate import export
    from replicate.sources import load_source

    if format == "onnx":
        pytest.importorskip("onnxscript", reason='ONNX export needs pip install -e ".[onnx]"')
        onnxruntime = pytest.importorskip("onnxruntime", reason='pip install -e ".[onnx]"')
    paths, _ = digit_pngs(tmp_path, 3)
    out = tmp_path / f"model.{format}"
    assert export.main(["--checkpoint", str(vit_run), "--format", format, "--out", str(out)]) == out
    source = load_source(vit_run)
    images = Augmentation(source.mean, source.std).eval(predict.model_view(source, paths))
    with torch.no_grad():
        expected = source.model(images)
    if format == "pt2":
        logits = torch.export.load(out).module()(images)
    else:
        session = onnxruntime.InferenceSession(str(out))
        logits = torch.from_numpy(session.run(None, {"images": images.numpy()})[0])
    torch.testing.assert_close(logits, expected, atol=1e-4, rtol=0)


def test_predict_says_what_a_digits_model_expects_of_ink_on_paper(
    vit_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """scikit-learn's digits are light on black; a scan of dark ink on white gets a note."""
    (digit,), _ = digit_pngs(tmp_path, 1)
    inverted = tmp_path / "ink.png"
    Image.fromarray(255 - np.asarray(Image.open(digit))).save(inverted)
    predict.main(["--checkpoint", str(vit_run / WEIGHTS), str(digit), str(inverted)])
    out = capsys.readouterr().out
    assert out.count("invert the image first") == 1
    assert out.index("ink.png") < out.index("invert the image first")
