"""The 1-hour run: configs/cifar10_vit_ti4.py's ViT-Ti/4 (5 layers, 2.25M parameters) and recipe
(`scratch-small`) for 17 epochs, what fits one hour of a 2-core AMD EPYC with AVX512-BF16 (the
10-epoch run's 3.4 minutes an epoch, the test split evaluated after each). Its target: 80% in
the hour (the CCT paper: 80% in 30 minutes on 12 desktop cores, with a convolutional tokenizer).

Should reach: 72.6% test top-1 after 17 epochs (results/cifar10-vit_ti4-hour; by epoch 35.0,
43.2, 50.7, 53.4, 55.8, 57.2, 60.1, 62.2, 64.2, 66.2, 67.3, 69.8, 71.0, 71.5, 72.5, 72.6, 72.6),
75.7% training accuracy under augmentation. On a 2-core AMD EPYC with AVX2 alone (fp32) the 17
epochs took 2.7 hours by the run's own log, not a quiet bench: 7.3 to 10.9 minutes an epoch with
the test split evaluated after each, the host slowing in the later epochs, and one 7-minute
pause for the test suite. The anchors at 17 epochs: kentaroy47's plain
ViT (6 layers, D 512, ~4x the FLOPs) 73.3%, omihub777's (6.3M, AutoAugment) about 75%.

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
