"""Study 5, `attention`: Figures 6, 7 and 11 drawn from a ViT that has learned something: the
data-size study's ViT trained on all of CIFAR-10.

Figure 7 centre should show the 2-D structure of the image in the position embeddings (Section
4.5: "closer patches tend to have more similar position embeddings ... row-column structure");
the summary records a number for it, `position_structure`: the mean cosine similarity of
neighbouring patches' embeddings minus that of distant ones (`replicate.figures.embeddings`).
Figure 7 right's distances go in it too: each head's by depth, and each image's mean over the
heads, from which the last layer's lead over the first gets its interval.
"""

from __future__ import annotations

from replicate.study.definitions import data_size
from replicate.study.spec import RunSpec, Scale, Study, weights_of

NAME = "attention"


def runs(scale: Scale) -> list[RunSpec]:
    checkpoint = weights_of(data_size.NAME, data_size.run_name("vit", 1.0))
    return [
        RunSpec(
            "vit-100",
            "figures",
            {"checkpoint": checkpoint, "only": ("fig1", "fig6", "fig7")},
            label=f"{scale.vit_name} trained on all of {scale.upstream_name}",
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
