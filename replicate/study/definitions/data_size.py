"""Study 1, `data-size`: Figures 3 and 4 of the paper in miniature.

The scale's ViT (4x4 patches) and BiT ResNet (small-input stem) trained from scratch at 32x32 on
class-balanced subsets of CIFAR-10's training set with Adam for both ("including ResNets",
Appendix D.1), each with the learning rate, weight decay and crop the recipe study chose on the
dev split (`Scale.scratch`), and the same budget of optimiser steps on every subset.
As the paper does (Section 4.3: "we use early-stopping, and report the best validation
accuracy"), each run evaluates on a dev split held out of the training set and its best dev
checkpoint is tested once; test top-1 on the full CIFAR-10 test set is plotted against the
number of training images.

The hybrid (R50+ViT) is left out: its ResNet reduces 32x32 to a 2x2 feature map (stride 16), a
sequence of four tokens, which says nothing about the hybrids of Section 4.2.
"""

from __future__ import annotations

from replicate.study.definitions.common import percent, upstream
from replicate.study.spec import RunSpec, Scale, Study

NAME = "data-size"
MODELS = ("vit", "bit")


def model_name(scale: Scale, model: str) -> str:
    return scale.vit_name if model == "vit" else scale.bit_name


def run_name(model: str, fraction: float) -> str:
    return f"{model}-{percent(fraction)}"


def run_order(fractions: tuple[float, ...]) -> list[float]:
    """The largest subset first (the other studies start from its models), then the smallest
    (where the claim is decided), then the rest in order: the runs that matter most finish first
    when a long study is cut off."""
    largest, *rest = sorted(fractions, reverse=True)
    return [largest, *sorted(rest)]


def runs(scale: Scale) -> list[RunSpec]:
    return [
        RunSpec(
            run_name(model, fraction),
            "train",
            {
                **scale.models[model],
                **scale.scratch.get(model, {}),
                **upstream(scale),
                "train_fraction": fraction,
                "steps": scale.steps,
            },
            label=f"{model_name(scale, model)}, {percent(fraction)}% of the training set",
        )
        for fraction in run_order(scale.fractions)
        for model in MODELS
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
