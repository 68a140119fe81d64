"""A model's layers, their output shapes and parameters, to hold beside Table 1 (and beside a
notebook's `torchinfo.summary`): one forward pass of one image on the meta device, so even
ViT-H/14 at 518 is summarised at once and without memory.

    python -m replicate.summary --variant vit_b16
    python -m replicate.summary --variant vit_b16 --image-size 384 --depth 3
    python -m replicate.summary --variant vit_ti16 --image-size 32 --model-arg patch_size=4
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from replicate import models
from replicate.cli_errors import ArgumentParser, positive_int, run_cli
from replicate.flops import forward_flops
from replicate.training.config import parse_model_arg


@dataclass(frozen=True)
class Layer:
    name: str  # its path in the model, "encoder.blocks.0.attention"
    kind: str  # its class, "MultiHeadSelfAttention"
    output: tuple[int, ...]  # the shape of its output for one image ((), when not a tensor)
    parameters: int  # its own and its children's


@dataclass(frozen=True)
class Summary:
    model: str
    image_size: int
    layers: list[Layer]
    parameters: int  # total
    trainable: int
    flops: int  # of one forward pass of one image

    def table(self) -> str:
        width = max(len(layer.name) + len(layer.kind) + 3 for layer in self.layers)
        rows = [f"{'layer (type)':<{width}}  {'output shape':<22}{'parameters':>13}"]
        for layer in self.layers:
            name = f"{layer.name} ({layer.kind})"
            shape = str(list(layer.output)) if layer.output else "-"
            rows.append(f"{name:<{width}}  {shape:<22}{layer.parameters:>13,}")
        rule = "-" * len(rows[0])
        totals = [
            f"{self.model} at {self.image_size}x{self.image_size}",
            f"parameters: {self.parameters:,} ({self.trainable:,} trainable)",
            f"forward: {self.flops / 1e9:.2f} GFLOPs per image",
        ]
        return "\n".join([rule, rows[0], rule, *rows[1:], rule, *totals])


def summarise(
    name: str, image_size: int | None = None, depth: int = 3, num_classes: int = 1000, **overrides
) -> Summary:
    """Every module down to `depth` levels below the model, with its output shape for one image."""
    entry = models.get_model_entry(name)
    size = image_size or entry.default_image_size
    with torch.device("meta"):
        model = models.create_model(name, num_classes=num_classes, image_size=size, **overrides)
    shapes: dict[str, tuple[int, ...]] = {}
    wanted = {n: m for n, m in model.named_modules() if n and n.count(".") < depth}
    hooks = [
        module.register_forward_hook(_record(shapes, module_name))
        for module_name, module in wanted.items()
    ]
    with torch.no_grad():
        model.eval()(torch.empty(1, 3, size, size, device="meta"))
    for hook in hooks:
        hook.remove()
    layers = [
        Layer(n, type(m).__name__, shapes.get(n, ()), sum(p.numel() for p in m.parameters()))
        for n, m in wanted.items()
    ]
    return Summary(
        model=name,
        image_size=size,
        layers=layers,
        parameters=sum(p.numel() for p in model.parameters()),
        trainable=sum(p.numel() for p in model.parameters() if p.requires_grad),
        flops=forward_flops(name, image_size=size, num_classes=num_classes, **overrides),
    )


def _record(shapes: dict[str, tuple[int, ...]], name: str):
    def hook(module: nn.Module, inputs, output) -> None:
        if isinstance(output, torch.Tensor):
            shapes[name] = tuple(output.shape)

    return hook


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="python -m replicate.summary",
        description="A model's layers, output shapes and parameters (one image, meta device).",
    )
    parser.add_argument("--variant", default="vit_b16", help="a registry name (vit_b16)")
    parser.add_argument("--image-size", type=positive_int, metavar="S", help="(the model's)")
    parser.add_argument("--num-classes", type=positive_int, default=1000, help="head size (1000)")
    parser.add_argument(
        "--depth", type=positive_int, default=3, help="module levels shown below the model (3)"
    )
    parser.add_argument(
        "--model-arg", action="append", metavar="KEY=VALUE", help="a config override, repeatable"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> Summary:
    args = build_parser().parse_args(argv)
    overrides = dict(parse_model_arg(a) for a in args.model_arg or ())
    summary = summarise(args.variant, args.image_size, args.depth, args.num_classes, **overrides)
    print(summary.table())
    return summary


if __name__ == "__main__":
    raise SystemExit(run_cli("replicate.summary", main))
