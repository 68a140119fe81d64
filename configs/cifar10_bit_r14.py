"""The studies' ResNet on all of CIFAR-10 from scratch: a BiT ResNet (pre-activation,
GroupNorm, weight standardisation) of one bottleneck block per stage at half width with a 3x3
stride-1 stem, BiT-R14x0.5, of about the ViT-Ti/4's cost. Data as configs/cifar10_vit_ti4.py,
7 epochs: what fits 30 minutes of the 2-core AMD EPYC (about 3.9 minutes an epoch). The recipe
is `scratch-small-resnet`, what the same dev-split search chose for the ResNet
(results/recipe-ablation/bit.md: lr 4e-3, weight decay 0.3, the inception crop with a 50% floor).

Should reach: 75.9% test top-1 after 7 epochs (results/cifar10-bit_r14), in
27 minutes on the 2-core AMD EPYC in bf16. The anchor: airbench's 2M-parameter CNN
reaches 94% in 9.9 epochs (KellerJordan/cifar10-airbench).

    python -m replicate.train --config configs/cifar10_bit_r14.py
"""

import runpy
from pathlib import Path

VIT = Path(__file__).with_name("cifar10_vit_ti4.py")


def get_config() -> dict:
    return {
        **runpy.run_path(str(VIT))["get_config"](),
        "variant": "bit_r50x1",
        "model_arg": ["stem=small", "layers=(1,1,1,1)", "width=0.5"],
        "recipe": "scratch-small-resnet",
        "epochs": 7,
        "out": "runs/cifar10-bit_r14",
    }
