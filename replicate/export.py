"""A trained model as a file that runs without this project: torch.export's `.pt2` program, or
ONNX (`torch.onnx.export(dynamo=True)`; `pip install -e ".[onnx]"`).

    python -m replicate.export --checkpoint runs/vit_b16-digits --format pt2
    python -m replicate.export --checkpoint runs/vit_b16-digits --format onnx --out vit.onnx

The model is exported in eval mode for a batch of any size at the checkpoint's resolution, and
takes normalised images, (B, 3, S, S); the normalisation the weights expect is printed, and
kept in the `.pt2` file's metadata.

    program = torch.export.load("model.pt2").module()
    logits = program(images)
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import torch

from replicate.cli_errors import ArgumentParser, run_cli
from replicate.errors import Unavailable
from replicate.sources import Source, load_source

FORMATS = ("pt2", "onnx")


def example_input(source: Source, batch: int = 2) -> torch.Tensor:
    size = source.image_size
    return torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(0))


def export(source: Source, path: Path, format: str) -> Path:
    """Write `source.model` to `path` as `format`; returns the path."""
    model, images = source.model.eval(), example_input(source)
    batch = torch.export.Dim("batch", min=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    if format == "pt2":
        program = torch.export.export(model, (images,), dynamic_shapes=({0: batch},))
        view = {"mean": source.mean, "std": source.std, "classes": source.classes}
        torch.export.save(program, path, extra_files={"input.json": json.dumps(view)})
    else:
        try:
            import onnxscript  # noqa: F401  (torch.onnx's dynamo exporter needs it)
        except ImportError as error:
            raise Unavailable(
                'ONNX export needs the onnx extra: pip install -e ".[onnx]"'
            ) from error
        torch.onnx.export(
            model, (images,), path, dynamo=True, dynamic_shapes=({0: batch},),
            input_names=["images"], output_names=["logits"], verbose=False,
        )  # fmt: skip
    return path


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="python -m replicate.export",
        description="Export a trained model as a torch.export program (.pt2) or ONNX.",
    )
    parser.add_argument(
        "--checkpoint",
        required=True,
        help="a model.safetensors of replicate.train, or its run folder",
    )
    parser.add_argument("--format", choices=FORMATS, default="pt2", help="pt2 or onnx (pt2)")
    parser.add_argument(
        "--out", type=Path, help="the file to write (default: model.FORMAT beside the weights)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> Path:
    args = build_parser().parse_args(argv)
    source = load_source(args.checkpoint)
    folder = Path(args.checkpoint)
    out = args.out or (folder if folder.is_dir() else folder.parent) / f"model.{args.format}"
    path = export(source, out, args.format)
    print(f"wrote {path}: {source.variant} at {source.image_size}x{source.image_size}, inputs "
          f"normalised with mean {source.mean} and std {source.std}")  # fmt: skip
    return path


if __name__ == "__main__":
    raise SystemExit(run_cli("replicate.export", main))
