"""Big Transfer (BiT, Kolesnikov et al. 2020): the ResNets the paper compares ViT with (Tables 2, 5
and 6, Figures 3-5), "ResNet (BiT)" throughout Section 4.

"For the baseline CNNs, we use ResNet (He et al., 2016), but replace the Batch Normalization
layers with Group Normalization and used standardized convolutions" (Section 4.1): a
pre-activation ResNet (ResNetV2), built by timm (`timm.models.resnetv2`, its `resnetv2_*_bit`
models), so the module names and the state dict are timm's and timm's weights load unchanged.

    name        timm                 blocks          width   parameters (1000 classes)
    bit_r50x1   resnetv2_50x1_bit    (3, 4, 6, 3)    x1       25,549,352
    bit_r101x1  resnetv2_101x1_bit   (3, 4, 23, 3)   x1       44,541,480
    bit_r50x3   resnetv2_50x3_bit    (3, 4, 6, 3)    x3      217,319,080
    bit_r152x2  resnetv2_152x2_bit   (3, 8, 36, 3)   x2      236,335,208

Two stems (`stem=`):
    "imagenet"  BiT's: 7x7 stride-2 convolution, then a 3x3 stride-2 max-pool, so the first stage
                sees the image at 1/4 of its side (224 -> 56, but CIFAR's 32 -> 8)
    "small"     one 3x3 stride-1 convolution and no pooling, as ResNets for 32x32 inputs do: the
                first stage works at full resolution (32 -> 32) and the last at 4x4. The 3x3
                kernel has 3 * 3 * 3 * 64w weights instead of 7 * 7 * 3 * 64w, so every count
                above drops by 7,680 w (w the width): bit_r50x1 has 25,541,672.

The head is timm's: global average pooling, then a 1x1 convolution to the classes (BiT's
`head/conv2d`). `replace_head` puts in a zero-initialised one, as BiT does for every new task
("we initialize the head with zeros", bit_pytorch `zero_head=True`).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from functools import partial
from typing import Literal

import torch
from torch import nn

from vit.data_config import evaluation_view

Stem = Literal["imagenet", "small"]
STEMS = ("imagenet", "small")
# "group": the paper's (Section 4.1), GroupNorm and weight-standardised convolutions; "batch":
# the ResNetV2 of He et al. 2016 it changed, BatchNorm and plain convolutions (timm's resnetv2_50)
Norm = Literal["group", "batch"]
NORMS = ("group", "batch")


@dataclass(frozen=True)
class BiTVariant:
    timm_name: str  # the timm model, e.g. "resnetv2_50x1_bit"
    bit_name: str  # Google's checkpoint name, e.g. "BiT-M-R50x1" (BiT-M-R50x1.npz)


VARIANTS = {
    "bit_r50x1": BiTVariant("resnetv2_50x1_bit", "BiT-M-R50x1"),
    "bit_r101x1": BiTVariant("resnetv2_101x1_bit", "BiT-M-R101x1"),
    "bit_r50x3": BiTVariant("resnetv2_50x3_bit", "BiT-M-R50x3"),
    "bit_r152x2": BiTVariant("resnetv2_152x2_bit", "BiT-M-R152x2"),
}
IMAGE_SIZE = 224  # BiT's upstream (ImageNet-21k) training resolution


class BiT(nn.Module):
    """timm's ResNetV2 with the head contract (`baselines.head`). Its modules, and so the state
    dict's keys, are timm's: stem, stages, norm (the last pre-activation GroupNorm + ReLU), head."""

    def __init__(self, network: nn.Module, image_size: int) -> None:
        super().__init__()
        self.image_size = image_size  # any size works (global average pooling); evaluated at this
        self.stem = network.stem
        self.stages = network.stages
        self.norm = network.norm
        self.head = network.head  # pool -> 1x1 conv -> flatten

    @property
    def pretrained_cfg(self) -> dict:
        """timm's description of the input: size, mean/std, resizing (`vit.data_config`)."""
        return evaluation_view(self, self.image_size)

    @property
    def num_classes(self) -> int:
        """K, the head's outputs (timm's attribute)."""
        return self.head.fc.out_channels

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> logits (B, K)."""
        return self.head(self.norm(self.stages(self.stem(images))))

    def replace_head(self, num_classes: int) -> None:
        """A zero-initialised `num_classes` 1x1 convolution, as BiT starts every transfer."""
        old = self.head.fc
        self.head.fc = nn.Conv2d(
            old.in_channels,
            num_classes,
            kernel_size=1,
            device=old.weight.device,
            dtype=old.weight.dtype,
        )
        nn.init.zeros_(self.head.fc.weight)
        nn.init.zeros_(self.head.fc.bias)


def build_network(
    variant: BiTVariant,
    num_classes: int,
    stem: Stem,
    layers: tuple[int, ...] | None = None,
    width: float = 1.0,
    norm: Norm = "group",
) -> nn.Module:
    """timm's `resnetv2_*_bit` network (randomly initialised), its stem made small if asked;
    `layers` (blocks per stage, up to four stages) and `width` (a multiple of the stages' and
    the stem's channels, each a multiple of GroupNorm's 32 groups) shrink it, e.g. (1, 1, 1, 1)
    and 0.5: a BiT-R14x0.5 of 2M parameters for CIFAR-scale studies; `norm` (`Norm`)."""
    import timm  # lazy: create_model("vit_b16") does not need it

    if stem not in STEMS:
        raise ValueError(f"stem must be one of {', '.join(STEMS)}; got {stem!r}")
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {', '.join(NORMS)}; got {norm!r}")
    if layers is None and width == 1.0 and norm == "group":
        network = timm.create_model(variant.timm_name, num_classes=num_classes)
    else:
        network = _custom_network(variant, num_classes, layers, width, norm)
    if stem == "small":
        network.stem = small_stem(network.stem.conv)
    return network


def _custom_network(
    variant: BiTVariant,
    num_classes: int,
    layers: tuple[int, ...] | None,
    width: float,
    norm: Norm = "group",
) -> nn.Module:
    """timm's ResNetV2 as its BiT models build it (fixed stem, weight-standardised convolutions
    with BiT's epsilon), with other depths and widths; with `norm="batch"`, as timm's resnetv2_50
    (BatchNorm, plain convolutions)."""
    from timm.layers import BatchNormAct2d, StdConv2d, create_conv2d
    from timm.models.resnetv2 import ResNetV2

    layers = tuple(layers or timm_layers(variant))
    stages = tuple(round(c * width) for c in (256, 512, 1024, 2048)[: len(layers)])
    stem = round(64 * width)
    if any(c % 128 for c in stages) or stem % 32:  # bottlenecks of c / 4, GroupNorm's 32 groups
        raise ValueError(f"width={width} gives stage widths {stages}: use multiples of 128")
    return ResNetV2(
        layers=list(layers),
        channels=stages,
        stem_chs=stem,
        num_classes=num_classes,
        stem_type="fixed",
        **(
            {"norm_layer": BatchNormAct2d, "conv_layer": create_conv2d}
            if norm == "batch"
            else {"conv_layer": partial(StdConv2d, eps=1e-8)}
        ),
    )


def timm_layers(variant: BiTVariant) -> tuple[int, ...]:
    """The blocks per stage of a BiT variant: R50 (3, 4, 6, 3), R101 (3, 4, 23, 3), ..."""
    depth = int(variant.timm_name.split("_")[1].split("x")[0])
    return {50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}[depth]


def small_stem(imagenet_conv: nn.Conv2d) -> nn.Sequential:
    """A 3x3 stride-1 convolution of the same kind (weight-standardised, or plain with BatchNorm)
    in place of the 7x7 stride-2 one and the max-pool; named `conv` like timm's, so
    `stem.conv.weight` is the key either way."""
    epsilon = {"eps": imagenet_conv.eps} if hasattr(imagenet_conv, "eps") else {}  # BiT's
    conv = type(imagenet_conv)(
        imagenet_conv.in_channels,
        imagenet_conv.out_channels,
        kernel_size=3,
        stride=1,
        padding=1,
        bias=False,
        **epsilon,
    )
    nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")  # timm's init
    return nn.Sequential(OrderedDict(conv=conv))
