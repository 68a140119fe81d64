"""Study 3, `resolution`: Section 3.2, fine-tuning at a higher resolution.

The CIFAR-10 ViT of the data-size study (all of the training set) is fine-tuned for the same
number of extra steps at 32x32 (its pre-training resolution) and at higher resolutions, with the
patch size kept and E_pos interpolated in 2-D, so the sequence grows from 8x8 to 12x12 and 16x16
patches. Upsampled CIFAR images carry no new detail: what a higher resolution can add here is a
longer sequence, i.e. finer patches relative to the object.
"""

from __future__ import annotations

from replicate.study.definitions import data_size
from replicate.study.definitions.common import budget, finetune, upstream
from replicate.study.spec import RunSpec, Scale, Study, weights_of

NAME = "resolution"


def runs(scale: Scale) -> list[RunSpec]:
    pretrained = weights_of(data_size.NAME, data_size.run_name("vit", 1.0))
    return [
        RunSpec(
            f"vit-{size}px",
            "train",
            {
                **scale.vit,
                **upstream(scale, image_size=size),
                **finetune(pretrained, scale.batch_size),
                **budget(scale.finetune_steps),
            },
            label=f"fine-tuned at {size}x{size}",
        )
        for size in (scale.image_size, *scale.finetune_sizes)
    ]


STUDY = Study(
    name=NAME,
    title="Fine-tuning at higher resolution (Section 3.2)",
    claim=(
        'Section 3.2: "It is often beneficial to fine-tune at higher resolution than '
        'pre-training"; the position embeddings are interpolated in 2-D to the longer '
        "sequence."
    ),
    runs=runs,
)
