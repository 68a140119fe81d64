"""The flagship CPU run: configs/cifar10_vit_ti4.py's ViT-Ti/4 (5 layers, 2.25M parameters,
4.5 MB in bf16) and recipe (`scratch-small`, the one the dev-split ablation kept,
results/recipe-ablation), trained for 40 epochs instead of 10: what fits 2.5 hours of a 2-core
AMD EPYC with AVX512-BF16 (about 270 images a second, plus an evaluation of the test split
after every epoch). Resumable: `--resume --out runs/cifar10-vit_ti4-flagship`.

Should reach: 77.9% test top-1 after 40 epochs (results/cifar10-vit_ti4-flagship), in
about 8.6 hours of a 2-core AMD EPYC with AVX2 alone (fp32; 12.9 minutes an epoch, the
median by the run's own log, its last 14 beside another run). With pixels mapped to [-1, 1]
(`mean` and `std` left out) it reached 74.8% in 2.4 hours of the AVX512-BF16 one (3.6 minutes
an epoch). The anchors at 40 epochs: kentaroy47's ViT/4 (6 layers, D 512, ~4x the FLOPs)
78.6%, omihub777's (6.3M, AutoAugment, a 200-epoch cosine) about 82%; 90% takes omihub777
about 150 epochs.

    python -m replicate.train --config configs/cifar10_vit_ti4_flagship.py
"""

import runpy
from pathlib import Path

VIT = Path(__file__).with_name("cifar10_vit_ti4.py")


def get_config() -> dict:
    return {
        **runpy.run_path(str(VIT))["get_config"](),
        "epochs": 40,
        "out": "runs/cifar10-vit_ti4-flagship",
    }
