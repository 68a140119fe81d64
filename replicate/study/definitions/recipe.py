"""Study 0, `recipe`: the training recipe of the studies chosen on the dev split, the same
search for both models, and the sanity check of what it trains.

For the ViT and the ResNet alike, one grid (`Scale.search`): every learning rate with every
weight decay and every floor of the inception crop, each candidate trained for a short budget
on CIFAR-10 minus its 2% dev split and scored on that split (Appendix B.1.1's protocol, with
the same number of trials for each model). The crop the studies use is the floor whose best
candidates score higher over both models together; each model keeps its best learning rate
and weight decay at that floor. The chosen candidate is then trained on the whole training set
for as long as the scale's budget allows and tested once: the sanity check that the training
behind every study is sound.
"""

from __future__ import annotations

from replicate.study.definitions import data_size
from replicate.study.spec import RunSpec, Scale, Study

NAME = "recipe"


def run_name(model: str) -> str:
    return f"{model}-search"


def runs(scale: Scale) -> list[RunSpec]:
    search = scale.search
    return [
        RunSpec(
            run_name(model),
            "sweep",
            {
                "lrs": search.lrs,
                "weight_decays": search.weight_decays,
                "crop_scales": search.crop_scales,
                "val_fraction": scale.dev_fraction,
                "final_steps": search.final_steps[model],
            },
            label=data_size.model_name(scale, model),
            train={
                **scale.models[model],
                "dataset": scale.upstream,
                "image_size": scale.image_size,
                "batch_size": scale.batch_size,
                "workers": scale.workers,
                "checkpoint_every": scale.checkpoint_every,
                "steps": search.steps,
            },
        )
        for model in data_size.MODELS
    ]


STUDY = Study(
    name=NAME,
    title="The studies' recipe, chosen on the dev split, and the sanity check",
    claim=(
        "Appendix B.1.1: hyper-parameters are chosen on a small dev split held out of the "
        "training set. The same grid for both models (learning rate x weight decay x crop "
        "floor). Sanity: the chosen candidate, trained on the whole training set from scratch "
        "within the cpu budget, reaches what a sound run of its model reaches there."
    ),
    runs=runs,
)
