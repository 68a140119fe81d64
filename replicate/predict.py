"""Classify your own images with a trained checkpoint, as the course does for a custom image.

    python -m replicate.predict --checkpoint runs/vit_b16-digits-.../model.safetensors my_digit.png
    python -m replicate.predict --checkpoint timm:vit_base_patch16_224.orig_in21k_ft_in1k cat.jpg

Prints each image's top-k classes with their probabilities; `--plot OUT.png` also draws each
image titled with them. The model, the class names, the resolution and the input normalisation
come from the checkpoint's metadata, or for weights by spec from the weights
(`replicate.sources`); images are prepared as the test set was (RGB, resized to S x S,
normalised).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from replicate.cli_errors import ArgumentParser, positive_int, run_cli
from replicate.data.augment import Augmentation
from replicate.data.images import SquareImages, load_image
from replicate.sources import Source, add_source_arguments, load_source


@dataclass(frozen=True)
class Prediction:
    path: str
    top: list[tuple[str, float]]  # (class, probability), most probable first


@torch.no_grad()
def predict(
    source: Source, views: torch.Tensor, paths: Sequence[Path], top_k: int = 5
) -> list[Prediction]:
    """The top-k classes of each image of `paths`, given as the model sees them (`model_view`)."""
    device = next(source.model.parameters()).device
    inputs = Augmentation(source.mean, source.std).eval(views.to(device))
    probabilities = source.model(inputs).float().softmax(dim=-1)
    values, indices = probabilities.topk(min(top_k, len(source.classes)), dim=-1)
    return [
        Prediction(str(path), [(source.classes[i], v) for i, v in zip(top, probs, strict=True)])
        for path, probs, top in zip(paths, values.tolist(), indices.tolist(), strict=True)
    ]


def model_view(source: Source, paths: Sequence[Path]) -> torch.Tensor:
    """The images as the model sees them before normalisation: uint8 (N, 3, S, S)."""
    images = SquareImages([(load_image(str(p)), 0) for p in paths], source.image_size)
    return torch.stack([images[i][0] for i in range(len(images))])


def plot(views: torch.Tensor, predictions: Sequence[Prediction], path: Path) -> Path:
    """Each image as the model saw it, titled with its top classes and their probabilities."""
    from replicate.figures.plots import draw_predictions

    titles = [
        f"{Path(p.path).name}\n" + "\n".join(f"{name} {prob:.2f}" for name, prob in p.top)
        for p in predictions
    ]
    return draw_predictions(list(views.permute(0, 2, 3, 1).numpy() / 255), titles, path)


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="python -m replicate.predict",
        description="Top-k classes, with probabilities, of images under a trained checkpoint.",
    )
    add_source_arguments(parser)
    parser.add_argument("images", type=Path, nargs="+", metavar="IMAGE", help="image files")
    parser.add_argument(
        "--top-k", type=positive_int, default=3, help="classes to show per image (3)"
    )
    parser.add_argument(
        "--plot",
        type=plot_path,
        metavar="OUT.png",
        help="also save the images in a grid, each titled with its top-k classes",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> list[Prediction]:
    args = build_parser().parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    source = load_source(args.checkpoint, args.variant, args.image_size, device)
    views = model_view(source, args.images)  # decoded once, for the model and for the plot
    predictions = predict(source, views, args.images, args.top_k)
    width = max(len(name) for p in predictions for name, _ in p.top)
    for prediction, view in zip(predictions, views, strict=True):
        print(prediction.path)
        if source.dataset == "digits" and view.float().mean() > 127:  # mostly light
            print("  note: dark ink on a light background? the digits model learned light digits "
                  "on black (scikit-learn's); invert the image first")  # fmt: skip
        for name, probability in prediction.top:
            print(f"  {name:<{width}}  {probability:.3f}")
    if args.plot:
        print(f"wrote {plot(views, predictions, args.plot)}")
    return predictions


def plot_path(text: str) -> Path:
    """--plot's file: OUT.png as given, OUT alone as OUT.png; a format matplotlib cannot write is
    refused before any work."""
    from matplotlib.backend_bases import FigureCanvasBase

    path = Path(text)
    path = path if path.suffix else path.with_suffix(".png")
    if path.suffix[1:].lower() not in FigureCanvasBase.get_supported_filetypes():
        raise argparse.ArgumentTypeError(
            f"cannot draw a {path.suffix} file; use .png, .pdf, .svg or .jpg"
        )
    return path


if __name__ == "__main__":
    raise SystemExit(run_cli("replicate.predict", main))
