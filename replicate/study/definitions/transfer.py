"""Study 2, `transfer`: Tables 2 and 5 in miniature.

The ViT and the ResNet of the data-size study, pre-trained on all of CIFAR-10, are fine-tuned on
the ants vs bees photos with the paper's protocol (Appendix B.1.1, Table 4): SGD with momentum,
the head replaced by a zero-initialised layer, twice the pre-training resolution with E_pos
interpolated (Section 3.2), the learning rate chosen from Table 4's grid on a 10% dev split, then
trained on the whole training set and evaluated once on the test set. Beside each: the same model
trained from scratch on the photos with the same budget, and the few-shot linear accuracy of the
frozen pre-trained model (Section 4.1, "Metrics").
"""

from __future__ import annotations

from replicate.study.definitions import data_size
from replicate.study.definitions.common import downstream, finetune
from replicate.study.spec import RunSpec, Scale, Study, weights_of

NAME = "transfer"
DEV_FRACTION = 0.1  # Appendix B.1.1: 10% for the small datasets (Pets, Flowers)


def runs(scale: Scale) -> list[RunSpec]:
    specs = []
    for model in data_size.MODELS:
        paper_name = data_size.model_name(scale, model)
        pretrained = weights_of(data_size.NAME, data_size.run_name(model, 1.0))
        specs += [
            RunSpec(
                f"{model}-finetune",
                "sweep",
                {
                    "lrs": scale.learning_rates,
                    "val_fraction": DEV_FRACTION,
                    "seeds": scale.finetune_seeds,
                },
                label=f"{paper_name}, {scale.upstream_name} pre-trained, fine-tuned",
                train={
                    **scale.models[model],
                    **downstream(scale),
                    **finetune(pretrained, scale.finetune_batch_size),
                },
            ),
            RunSpec(
                f"{model}-scratch",
                "train",
                {**scale.models[model], **downstream(scale)},
                label=f"{paper_name}, from scratch on the photos",
            ),
            RunSpec(
                f"{model}-fewshot",
                "fewshot",
                {"checkpoint": pretrained, "dataset": scale.downstream, "shots": scale.shots},
                label=f"{paper_name}, {scale.upstream_name} pre-trained, frozen: few-shot linear",
            ),
        ]
    return specs


STUDY = Study(
    name=NAME,
    title="Transfer to a small dataset, in miniature (Tables 2 and 5)",
    claim=(
        "Section 4.2 and Appendix B.1.1: pre-trained models fine-tuned with SGD, a "
        "zero-initialised head and a higher resolution transfer well to small datasets, far "
        "above training from scratch on them; at small pre-training scale (ImageNet) BiT "
        "ResNets transfer better than ViTs (Table 5, Figure 3)."
    ),
    runs=runs,
)
