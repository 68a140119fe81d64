"""Every figure and table of `replicate.figures` written by a tiny model, and the CLI end to end
on a run folder and a checkpoint written here."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import vit
from replicate.cli_errors import run_cli
from replicate.figures import make
from replicate.figures.__main__ import main
from replicate.figures.images import ImageSet, digit_images, folder_images, run_dataset_folder
from replicate.figures.tables import measure_variant, table1_markdown
from replicate.runs.read import Run
from replicate.sources import Source, from_weights, load_source, untrained_twin
from replicate.training.checkpoint import CheckpointInfo, save_weights

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def subject() -> Source:
    model = vit.create_model("vit_ti16", num_classes=3, image_size=32, depth=2).eval()
    return Source(model, "vit_ti16", 32, (0.5,) * 3, (0.5,) * 3, ("a", "b", "c"), None,
                  "ViT-Ti/16 (tiny test)")  # fmt: skip


@pytest.fixture(scope="module")
def images() -> ImageSet:
    return digit_images(num=3, image_size=32)


def _assert_png(path: Path) -> None:
    assert path.is_file() and path.stat().st_size > 1000
    assert path.read_bytes()[:8] == PNG_MAGIC


@pytest.mark.parametrize(
    "figure",
    [
        lambda s, i, out: make.figure_1(s, i, out),
        lambda s, i, out: make.figure_7_filters(s, out),
        lambda s, i, out: make.figure_7_position_similarity(s, out)[0],
        lambda s, i, out: make.figure_7_attention_distance(s, i, out, batch_size=2)[0],
        lambda s, i, out: make.figure_6_rollout(s, i, out),
    ],
    ids=["fig1", "fig7-left", "fig7-centre", "fig7-right", "fig6"],
)
def test_each_figure_writes_a_png(
    figure: Callable, subject: Source, images: ImageSet, tmp_path: Path
) -> None:
    _assert_png(figure(subject, images, tmp_path))


def test_figure_7_measures_a_trained_model_beside_its_untrained_twin(
    subject: Source, images: ImageSet, tmp_path: Path
) -> None:
    """The same architecture, seeded random weights: the control the attention study needs."""
    torch.manual_seed(1)  # weights other than the twin's (seed 0), whatever ran before
    subject = replace(subject, model=type(subject.model)(subject.model.config).eval())
    _, numbers = make.figure_7_attention_distance(subject, images, tmp_path, batch_size=2)
    record = json.loads(numbers.read_text())
    model, control = record["model"], record["control"]
    assert np.array(model["per_image_px"]).shape == (3, 2, 3)  # images, layers, heads
    assert np.array(control["per_image_entropy"]).shape == (3, 2, 3)
    assert "untrained (random init, seed 0)" in control["label"]
    assert model["by_layer_px"] != control["by_layer_px"]
    assert record["uniform_entropy"] == pytest.approx(np.log(4))  # 16x16 patches of 32x32
    _, position = make.figure_7_position_similarity(subject, tmp_path)
    assert set(json.loads(position.read_text())) == {"model", "control"}
    twin = untrained_twin(subject)
    assert twin.model.config == subject.model.config and not twin.trained
    untrained = make.figure_7_attention_distance(twin, images, tmp_path / "u", batch_size=2)
    assert "control" not in json.loads(untrained[1].read_text())  # no twin of a twin


def test_figure_6_spreads_its_images_and_names_true_and_predicted_classes(
    subject: Source, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    images = digit_images(num=8, image_size=32)
    assert len(images.classes) == 8 and all(c in "0123456789" for c in images.classes)
    drawn = {}

    def draw_rollout(shown, maps, path, title, captions):
        drawn.update(shown=shown, captions=captions)
        return path

    monkeypatch.setattr(make.plots, "draw_rollout", draw_rollout)
    make.figure_6_rollout(subject, images, tmp_path)
    spread = [images.classes[i] for i in (0, 2, 5, 7)]  # first to last, not the first four
    assert [c.splitlines()[0] for c in drawn["captions"]] == [f"true: {c}" for c in spread]
    assert all(c.splitlines()[1].startswith("predicted: ") for c in drawn["captions"])


def test_training_curves_write_a_png_with_missing_metrics(tmp_path: Path) -> None:
    full = Run("a", {"variant": "vit_b16"}, ({"epoch": 1, "train_loss": 1.0, "test_acc": 0.5},))
    sparse = Run("b", {}, ({"epoch": 1}, {"epoch": 2, "test_loss": 0.3}))
    _assert_png(make.training_curves([full, sparse], tmp_path, "runs/"))


def test_table1_measures_variants_beside_the_paper() -> None:
    table = table1_markdown([measure_variant("vit_b16"), measure_variant("vit_ti16")])
    b16, ti16 = (line for line in table.splitlines() if line.startswith("| ViT-"))
    assert "| 12 | 768 | 3072 | 12 | 86.6M | ViT-Base: 12 / 768 / 3072 / 12, 86M |" in b16
    assert "| 35.1 |" in b16  # GFLOPs at 224, as the GUIDE's anchor (17.6 GMACs)
    assert "not in the paper" in ti16


def test_images_from_a_folder_cover_every_class(tmp_path: Path) -> None:
    for name, colour in [("ants", (255, 0, 0)), ("bees", (0, 0, 255))]:
        (tmp_path / name).mkdir()
        for k in range(3):
            Image.new("RGB", (40, 30), colour).save(tmp_path / name / f"{k}.png")
    chosen = folder_images(tmp_path, num=2, image_size=16)
    assert chosen.images.shape == (2, 3, 16, 16)
    assert chosen.images[0, 0].mean() == 1 and chosen.images[1, 2].mean() == 1  # ants, bees
    assert chosen.classes == ("ants", "bees")  # the true classes, from the folders
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no images"):
        folder_images(tmp_path / "empty", num=1, image_size=16)


def test_a_runs_image_folder_dataset_gives_its_test_images(tmp_path: Path) -> None:
    (tmp_path / "data" / "val").mkdir(parents=True)
    assert run_dataset_folder(f"imagefolder:{tmp_path / 'data'}") == (tmp_path / "data" / "val", ())
    assert run_dataset_folder("cifar10") is None and run_dataset_folder(None) is None


def _write_checkpoint(folder: Path, dataset: str = "digits") -> Path:
    """A checkpoint as replicate.train writes it."""
    model = vit.create_model("vit_ti16", num_classes=3, image_size=32, depth=2)
    path = folder / "model.safetensors"
    info = CheckpointInfo(
        variant="vit_ti16",
        num_classes=3,
        image_size=32,
        classes=["zero", "one", "two"],
        mean=[0.5, 0.5, 0.5],
        std=[0.5, 0.5, 0.5],
        model_overrides={"depth": 2},
        pretrained=None,
        dataset=dataset,
        epoch=2,
        step=4,
    )
    save_weights(path, model, info)
    return path


def _write_run(folder: Path) -> Path:
    folder.mkdir(parents=True)
    config = {"variant": "vit_ti16", "dataset": "digits", "recipe": "scratch", "epochs": 2}
    (folder / "config.json").write_text(json.dumps(config))
    rows = [{"epoch": e, "train_loss": 1 / e, "test_acc": 0.4 * e} for e in (1, 2)]
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return _write_checkpoint(folder)


def test_checkpoint_loads_with_its_metadata(tmp_path: Path) -> None:
    subject = load_source(_write_run(tmp_path / "run"))
    assert subject.model.config.image_size == 32 and subject.classes == ("zero", "one", "two")
    assert subject.model.config.depth == 2  # the run's model_overrides
    assert subject.dataset == "digits" and "ViT-Ti/16" in subject.label


def test_the_default_model_is_the_cifar10_vit_named_in_the_titles() -> None:
    """Without --checkpoint: the committed CIFAR-10 ViT trained from scratch, its real patch
    size and depth and its data in the label; --variant alone asks for an untrained model."""
    from replicate.figures.__main__ import load_subject, parse_args

    subject = load_subject(parse_args([]))
    assert subject.trained and subject.model.config.patch_size == 4
    assert subject.label == (
        "ViT-Ti/4 (5 layers) trained on imagefolder:.data/cifar10, "
        "cifar10-vit_ti4-flagship/model-bf16.safetensors"
    )
    untrained = load_subject(parse_args(["--variant", "vit_ti16", "--image-size", "32"]))
    assert not untrained.trained and "untrained" in untrained.label


def test_figures_of_a_named_model_never_overwrite_the_projects(tmp_path: Path) -> None:
    from replicate.figures.__main__ import parse_args

    assert parse_args([]).out == Path("figures")  # the project's own: regenerated on purpose
    assert parse_args(["--checkpoint", "run/model.safetensors"]).out == Path("runs/figures")
    assert parse_args(["--pretrained", "timm:x", "--out", "f"]).out == Path("f")


def test_a_models_figures_show_its_own_data_or_say_why_not(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    checkpoint = _write_checkpoint(tmp_path, dataset="imagefolder:no/such/cifar10")
    argv = ["--checkpoint", str(checkpoint), "--only", "fig6", "--out", str(tmp_path / "f")]
    assert run_cli("replicate.figures", main, argv) == 2
    err = capsys.readouterr().err
    assert "show test images of imagefolder:no/such/cifar10" in err and "--images DIR" in err
    assert not (tmp_path / "f").exists()  # refused before anything is drawn


def test_pretrained_spec_of_a_local_file(tmp_path: Path) -> None:
    path = _write_checkpoint(tmp_path)
    subject = from_weights(str(path), "vit_ti16", image_size=32, num_classes=3, depth=2)
    assert subject.model.config.image_size == 32 and str(path) in subject.label


def test_cli_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    checkpoint = _write_run(tmp_path / "runs" / "ti16-digits")
    (tmp_path / "runs" / "crashed").mkdir()  # no metrics: skipped with a warning
    out = tmp_path / "figures"
    argv = ["--runs", str(tmp_path / "runs"), "--checkpoint", str(checkpoint), "--out", str(out)]
    command = [*argv, "--num-images", "4", "--only", "fig1", "fig6", "fig7", "curves", "results"]
    assert run_cli("replicate.figures", main, command) == 0
    written = sorted(p.name for p in out.iterdir())
    assert written == sorted(
        [
            make.FIGURE_1,
            make.FIGURE_6,
            make.FIGURE_7_LEFT,
            make.FIGURE_7_CENTRE,
            make.FIGURE_7_CENTRE_NUMBERS,
            make.FIGURE_7_RIGHT,
            make.FIGURE_7_RIGHT_NUMBERS,
            make.TRAINING_CURVES,
            "results.md",
        ]
    )
    for png in out.glob("*.png"):
        _assert_png(png)
    distances = json.loads((out / make.FIGURE_7_RIGHT_NUMBERS).read_text())["model"]
    layers = len(distances["by_layer_px"])
    assert [len(image) for image in distances["per_image_px"]] == [layers] * 4  # 4 images
    results = (out / "results.md").read_text()
    assert (
        "| ti16-digits | ViT-Ti/16 | `scratch` | digits | 2 | 80.00 | no paper number |" in results
    )
    assert "wrote" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--runs", "no/such/runs", "--only", "curves"], "runs folder 'no/such/runs' does not"),
        (["--checkpoint", "no/such.safetensors", "--only", "fig7"], "no checkpoint at no/such"),
        (
            ["--images", "no/such/dir", "--variant", "vit_ti16", "--image-size", "32"],
            "image folder",
        ),
        (["--pretrained", "torchvision:IMAGENET1K_V1", "--only", "fig6"], "pass --variant"),
    ],
)
def test_cli_bad_input_exits_2_with_one_line(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert run_cli("replicate.figures", main, [*argv, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("replicate.figures: error: ") and message in err and "\n" not in err


def test_the_from_scratch_figure_draws_the_runs_beside_their_anchors(tmp_path: Path) -> None:
    from replicate.figures import from_scratch

    runs = []
    for name, epochs in (("cifar10-vit_ti4", 10), ("cifar10-vit_ti4-flagship", 40)):
        run = tmp_path / name
        run.mkdir()
        config = {"variant": "vit_ti16", "model_overrides": {"patch_size": 4, "depth": 5},
                  "recipe": {"name": "scratch-small"}, "epochs": epochs}  # fmt: skip
        (run / "config.json").write_text(json.dumps(config))
        rows = [{"epoch": e, "step": 391 * e, "test_acc": 0.3 + 0.01 * e} for e in range(1, 11)]
        (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        runs.append(run)
    assert from_scratch._curve(runs[1])[2].endswith("--recipe scratch-small, 40 epochs: 40.0%")
    plain = tmp_path / "vit.json"
    plain.write_text(json.dumps({"test_top1": {"plain loop": 0.69, "replicate.train": 0.70}}))
    notes = {runs[0]: "", runs[1]: ", CIFAR-10's mean and std"}
    label = from_scratch._curve(runs[1], notes[runs[1]])[2]
    assert label.endswith("scratch-small, CIFAR-10's mean and std, 40 epochs: 40.0%")
    controls = {"kentaroy47's setup here": runs[0]}
    _assert_png(from_scratch.draw(notes, plain, tmp_path / "curve.png", controls))
    too_many = {tmp_path / f"run-{i}": "" for i in range(len(from_scratch.RUN_COLOURS) + 1)}
    with pytest.raises(ValueError, match="add to RUN_COLOURS"):  # never a run left out unsaid
        from_scratch.draw(too_many, plain, tmp_path / "curve.png")
    assert from_scratch.KENTAROY47[10] == 67.90  # the anchor at 10 epochs


def test_a_run_on_some_classes_is_drawn_on_images_of_those(tmp_path: Path) -> None:
    for name in ("ants", "bees", "wasps"):
        (tmp_path / "val" / name).mkdir(parents=True)
        Image.new("RGB", (8, 8)).save(tmp_path / "val" / name / "0.png")
    (tmp_path / "train").mkdir()
    folder, classes = run_dataset_folder(f"imagefolder:{tmp_path}[wasps,ants]")
    assert (folder, classes) == (tmp_path / "val", ("wasps", "ants"))
    assert sorted(folder_images(folder, 8, 16, classes).classes) == ["ants", "wasps"]
