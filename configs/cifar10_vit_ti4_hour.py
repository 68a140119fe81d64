"""The 1-hour run: configs/cifar10_vit_ti4.py's ViT-Ti/4 (5 layers, 2.25M parameters) and recipe
(`scratch-small`) for 17 epochs, what fits one hour of a 2-core AMD EPYC with AVX512-BF16 (the
10-epoch run's 3.4 minutes an epoch, the test split evaluated after each). Its target: 80% in
the hour (the CCT paper: 80% in 30 minutes on 12 desktop cores, with a convolutional tokenizer).

Should reach: not yet measured (the flagship's 40-epoch schedule, with pixels mapped to [-1, 1],
was at 64% after 17 epochs).

    python -m replicate.train --config configs/cifar10_vit_ti4_hour.py
"""

import runpy
from pathlib import Path

VIT = Path(__file__).with_name("cifar10_vit_ti4.py")


def get_config() -> dict:
    return {
        **runpy.run_path(str(VIT))["get_config"](),
        "epochs": 17,
        "out": "runs/cifar10-vit_ti4-hour",
    }
