"""Study 4, `self-supervision`: Section 4.6 and Appendix B.1.2, masked patch prediction.

ViT-S/4 is pre-trained on CIFAR-10's training images without their labels (50% of the patch
embeddings corrupted, the 3-bit mean colour of each predicted), then fine-tuned on 10% and on
100% of the labels. It is compared with the same model trained from scratch on the same labels
(the data-size study's runs, the same budget of steps) and with supervised pre-training: the
data-size study's ViT trained on all of CIFAR-10's labels, fine-tuned on the same labels as the
others. That model has seen every label, so on the 10% subset it is an upper bound rather than
the paper's setting (supervised pre-training on a larger labelled set, JFT).
"""

from __future__ import annotations

from replicate.study.definitions import data_size
from replicate.study.definitions.common import percent, upstream
from replicate.study.spec import RunSpec, Scale, Study, weights_of

NAME = "self-supervision"
LABEL_FRACTIONS = (0.1, 1.0)
PRETRAIN = "pretrain-masked-patch"


def runs(scale: Scale) -> list[RunSpec]:
    masked = weights_of(NAME, PRETRAIN)
    supervised = weights_of(data_size.NAME, data_size.run_name("vit", 1.0))
    specs = [
        RunSpec(
            PRETRAIN,
            "train",
            (*scale.vit, *upstream(scale), "--recipe", "masked-patch", "--steps", str(scale.steps)),
            label="masked patch prediction, no labels",
        )
    ]
    for fraction in LABEL_FRACTIONS:
        labels = ("--train-fraction", str(fraction), "--steps", str(scale.steps))
        for start, weights in (("masked", masked), ("supervised", supervised)):
            specs.append(
                RunSpec(
                    f"vit-{start}-{percent(fraction)}",
                    "train",
                    (
                        *scale.vit,
                        *upstream(scale),
                        *("--pretrained", weights, "--recipe", "finetune"),
                        *labels,
                    ),
                    label=f"{start} pre-training, fine-tuned on {percent(fraction)}% of labels",
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
