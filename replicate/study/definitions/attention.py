"""Study 5, `attention`: Figures 6, 7 and 11 drawn from the best-trained ViT the project has
(`Scale.best_vit`: at the cpu scale configs/cifar10_vit_ti4.py's, else the data-size study's ViT
trained on all of CIFAR-10), each measure beside the same architecture untrained (seed 0), the
control: random weights already attend at a distance and have position embeddings.

The figures command records, for the model and the control, each head's attention distance and
entropy on every image (Figure 7 right) and the position embeddings' structure (Figure 7
centre): neighbours against distant patches, and rows and columns each on their own. The rules
that decide the claims are in `replicate.figures.studies` (`ATTENTION_RULES`), fixed before
the runs.
"""

from __future__ import annotations

from replicate.study.definitions import data_size
from replicate.study.spec import RunSpec, Scale, Study, weights_of

NAME = "attention"
IMAGES = 1_000  # test images the distances and entropies are measured on (Figure 11: 128)


def runs(scale: Scale) -> list[RunSpec]:
    checkpoint = scale.best_vit or weights_of(data_size.NAME, data_size.run_name("vit", 1.0))
    trained = scale.best_vit or f"trained on all of {scale.upstream_name}"
    return [
        RunSpec(
            "vit",
            "figures",
            {"checkpoint": checkpoint, "only": ("fig1", "fig6", "fig7"), "num_images": IMAGES},
            label=f"{scale.vit_name}, {trained}",
        )
    ]


STUDY = Study(
    name=NAME,
    title="What the ViT learned: Figures 6, 7 and 11",
    claim=(
        'Section 4.5: the embedding filters resemble plausible basis functions; "the model '
        'learns to encode distance within the image in the similarity of position embeddings", '
        "with row-column structure; some heads attend globally already in the lowest layers, "
        "and attention distance grows with depth."
    ),
    runs=runs,
)
