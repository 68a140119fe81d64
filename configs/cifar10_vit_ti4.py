"""The studies' ViT on all of CIFAR-10 from scratch, 10 epochs with the short-budget recipe for
small images (`scratch-small`: AdamW 1e-3 at batch 128, weight decay 0.05, no dropout, the
4-pixel padded crop and flip, warm-up then cosine), its inputs normalised by CIFAR-10's mean and
std, evaluated on the test split after every epoch. A ViT-Ti/4 of 5 layers (D 192, 3 heads, 4x4
patches: an 8x8 grid; 2.25M parameters), the paper's design: Eq. 1's linear patch embedding, a
class token, learned 1-D E_pos. Needs CIFAR-10 in .data/cifar10 (README, Results).

Should reach: 66.4% test top-1 after 10 epochs (results/recipe-ablation/vit-cifar-stats-10-epochs,
the same weights from the start), in about 35 minutes on a 2-core AMD EPYC with AVX512-BF16
(bf16), a plain PyTorch loop of the same recipe and budget 66.3% (results/plain-loop/
vit-cifar-stats.json); with pixels mapped to [-1, 1] instead, 62.6% (results/cifar10-vit_ti4).

    python -m replicate.train --config configs/cifar10_vit_ti4.py
"""

from replicate.data.datasets import CIFAR10_MEAN, CIFAR10_STD


def get_config() -> dict:
    return {
        "variant": "vit_ti16",
        "model_arg": ["patch_size=4", "depth=5"],
        "dataset": "imagefolder:.data/cifar10",
        "image_size": 32,
        "batch_size": 128,
        "workers": 0,
        "recipe": "scratch-small",
        "mean": CIFAR10_MEAN,
        "std": CIFAR10_STD,
        "epochs": 10,
        "out": "runs/cifar10-vit_ti4",
    }
