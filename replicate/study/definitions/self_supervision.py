"""Study 4, `self-supervision`: Section 4.6 and Appendix B.1.2, masked patch prediction.

The data-size study's ViT is pre-trained on CIFAR-10's training images without their labels
(50% of the patch embeddings corrupted, the 3-bit mean colour of each predicted) for two thirds
of the scale's steps, then fine-tuned for the last third on the data-size study's two smallest
label fractions, where pre-training can matter. Its baseline is the data-size study's run from
scratch on the same labels, which had the whole budget: both arms take the same number of
optimiser steps. Beside them, the data-size study's ViT trained on all of CIFAR-10's labels and
fine-tuned on the same subset: it has seen every label, so it is an upper bound, not the paper's
setting (supervised pre-training on a larger labelled set, JFT).
"""

from __future__ import annotations

from replicate.study.definitions import data_size
from replicate.study.definitions.common import budget, finetune, percent, upstream
from replicate.study.spec import RunSpec, Scale, Study, weights_of

NAME = "self-supervision"
PRETRAIN = "pretrain-masked-patch"


LABELS = {
    "masked": "masked patch pre-training (no labels)",
    "supervised": "supervised pre-training on all labels (upper bound)",
}


def label_fractions(scale: Scale) -> tuple[float, ...]:
    """The data-size study's two smallest subsets: its runs there are the scratch baselines."""
    return tuple(sorted(scale.fractions)[:2])


def step_budget(scale: Scale) -> tuple[int, int]:
    """(pre-training, fine-tuning) steps: together the scratch baseline's `scale.steps`."""
    finetune = max(1, scale.steps // 3)
    return scale.steps - finetune, finetune


def runs(scale: Scale) -> list[RunSpec]:
    masked = weights_of(NAME, PRETRAIN)
    supervised = weights_of(data_size.NAME, data_size.run_name("vit", 1.0))
    pretrain_steps, finetune_steps = step_budget(scale)
    specs = [
        RunSpec(
            PRETRAIN,
            "train",
            {**scale.vit, **upstream(scale), "recipe": "masked-patch", "steps": pretrain_steps},
            label="masked patch prediction, no labels",
        )
    ]
    for fraction in label_fractions(scale):
        labels = {"train_fraction": fraction, **budget(finetune_steps)}
        for start, weights in (("masked", masked), ("supervised", supervised)):
            specs.append(
                RunSpec(
                    f"vit-{start}-{percent(fraction)}",
                    "train",
                    {
                        **scale.vit,
                        **upstream(scale),
                        **finetune(weights, scale.batch_size),
                        **labels,
                    },
                    label=f"{LABELS[start]}, fine-tuned on {percent(fraction)}% of the labels",
                )
            )
    return specs


STUDY = Study(
    name=NAME,
    title="Masked patch prediction (Section 4.6)",
    claim=(
        'Section 4.6: "With self-supervised pre-training, our smaller ViT-B/16 model achieves '
        "79.9% accuracy on ImageNet, a significant improvement of 2% to training from scratch, "
        'but still 4% behind supervised pre-training."'
    ),
    runs=runs,
)
