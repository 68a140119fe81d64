"""What a training step minimises: the cross-entropy of the (logits, targets) an objective
picks from a batch. The trainer and the test-split evaluation use the same objective.

classification   the model's logits against the labels (Eq. 4; every recipe but one)
masked-patch     Appendix B.1.2: the colour logits of the corrupted patches against their 3-bit
                 mean colours (512 classes); labels are not read. Its "accuracy" is the colour
                 accuracy over the corrupted patches, on the test images too.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Protocol

import torch
from torch import Tensor, nn

from vit import VisionTransformer
from vit.masked_patch import COLOUR_BITS, MaskedPatchPredictor, corrupted_only, mean_colour_classes


class Objective(Protocol):
    num_classes: int  # of the logits the objective returns, for the accuracy metrics

    def __call__(self, network: nn.Module, images: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
        """(logits (S, K), targets (S,)) of a batch of normalised images."""
        ...

    def for_evaluation(self, device: torch.device) -> Objective:
        """The objective as the test split is scored."""
        ...


@dataclass(frozen=True)
class Classification:
    num_classes: int

    def __call__(self, network: nn.Module, images: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
        return network(images), labels

    def for_evaluation(self, device: torch.device) -> Classification:
        return self


@dataclass(frozen=True)
class MaskedPatchPrediction:
    """The network is a `MaskedPatchPredictor`; targets come from the images themselves."""

    mean: tuple[float, ...]  # the input normalisation, undone to read the colours
    std: tuple[float, ...]
    patch_pixels: int  # input pixels per patch side (a hybrid's total downsampling)
    colour_bits: int = COLOUR_BITS
    generator: torch.Generator | None = None  # None: the global RNG (seeded, checkpointed)

    @property
    def num_classes(self) -> int:
        return 2 ** (3 * self.colour_bits)

    def __call__(self, network: nn.Module, images: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
        logits, positions = network(images, generator=self.generator)
        mean, std = (
            torch.tensor(v, device=images.device)[:, None, None] for v in (self.mean, self.std)
        )
        pixels = (images.float() * std + mean).clamp(0, 1)  # [0, 1], as the colours are read
        colours = mean_colour_classes(pixels, self.patch_pixels, self.colour_bits)
        return corrupted_only(logits, colours, positions)

    def for_evaluation(self, device: torch.device) -> MaskedPatchPrediction:
        """The same corruption of the test images at every evaluation, so epochs compare."""
        return replace(self, generator=torch.Generator(device).manual_seed(0))


def objective_for(
    name: str, model: nn.Module, num_classes: int, mean: tuple, std: tuple
) -> Objective:
    if name == "masked-patch":
        return MaskedPatchPrediction(tuple(mean), tuple(std), model.vit.config.downsampling)
    return Classification(num_classes)


def pretraining_model(name: str, model: nn.Module) -> nn.Module:
    """The model an objective trains: a masked-patch predictor around a ViT, else the model."""
    if name != "masked-patch":
        return model
    if not isinstance(model, VisionTransformer):
        raise ValueError("masked patch prediction pre-trains a ViT; choose a ViT --variant")
    return MaskedPatchPredictor(model)
