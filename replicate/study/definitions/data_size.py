"""Study 1, `data-size`: Figures 3 and 4 of the paper in miniature.

ViT-S (4x4 patches) and BiT-R50x1 (small-input stem) trained from scratch at 32x32 on
class-balanced subsets of CIFAR-10's training set, each with its own recipe (the paper's scratch
recipe for the ViT, BiT's for the ResNet) and the same budget of optimiser steps on every subset,
so a small subset is seen for more epochs, as in the paper's fixed-hyper-parameter series
(Section 4.3). Test top-1 on the full CIFAR-10 test set is plotted against the number of
training images.

The hybrid (R50+ViT) is left out: its ResNet reduces 32x32 to a 2x2 feature map (stride 16), a
sequence of four tokens, which says nothing about the hybrids of Section 4.2.
"""

from __future__ import annotations

from replicate.study.definitions.common import percent, upstream
from replicate.study.spec import RunSpec, Scale, Study

NAME = "data-size"
MODELS = {"vit": "ViT-S/4", "bit": "BiT-R50x1"}


def run_name(model: str, fraction: float) -> str:
    return f"{model}-{percent(fraction)}"


def runs(scale: Scale) -> list[RunSpec]:
    options = {"vit": scale.vit, "bit": scale.bit}
    return [
        RunSpec(
            run_name(model, fraction),
            "train",
            (
                *options[model],
                *upstream(scale),
                *("--train-fraction", str(fraction)),
                *("--steps", str(scale.steps)),
            ),
            label=f"{MODELS[model]}, {percent(fraction)}% of the training set",
        )
        for model in MODELS
        for fraction in scale.fractions
    ]


STUDY = Study(
    name=NAME,
    title="Pre-training data requirements, in miniature (Figures 3 and 4)",
    claim=(
        'Section 4.3: "Vision Transformers overfit more than ResNets with comparable '
        "computational cost on smaller datasets ... the convolutional inductive bias is useful "
        "for smaller datasets, but for larger ones, learning the relevant patterns directly from "
        'data is sufficient, even beneficial." Expected here: the ResNet ahead on small '
        "subsets, the gap shrinking as the data grows."
    ),
    runs=runs,
)
