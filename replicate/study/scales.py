"""The three scales every study runs at (`--scale`).

cpu     what `results/studies/` holds: CIFAR-10 (`.data/cifar10`, unpacked from
        `../shared/data/cifar10.tar.xz`) at 32x32, two models of comparable cost (Section 4.3):
        a ViT-Ti/4 of 5 layers (D 192, 3 heads, MLP 768, 4x4 patches: an 8x8 grid; 2.25M
        parameters, 0.31 GFLOPs a forward pass) and a BiT ResNet shrunk to one bottleneck block
        per stage at half width, BiT-R14x0.5 (small stem; 2.0M parameters, 0.22 GFLOPs), each
        trained from scratch with the recipe the dev-split ablation chose for it
        (results/recipe-ablation): `scratch-small` and `scratch-small-resnet`. A 2% dev split
        (Appendix B.1.1's for CIFAR) chooses every rate and every checkpoint (Section 4.3).
        Sized for this project's 2-core CPU, resumable across sessions: the data-size study's
        all-data runs take up to 2.5 hours each, every other run minutes.
gpu     the same studies larger (ViT-S/4 and BiT-R50x1 with the small stem, batch 256), for
        one H100/H200 beside the GPU checks; smoke-tested here.
smoke   the same runs on scikit-learn's digits with one-layer models and two steps each: the
        whole pipeline (training, fine-tuning, sweeps, few-shot, figures) on a CPU in seconds.
"""

from __future__ import annotations

from dataclasses import replace

from replicate.data.datasets import CIFAR10_MEAN, CIFAR10_STD
from replicate.study.spec import Scale

CIFAR10_STATS = {"mean": CIFAR10_MEAN, "std": CIFAR10_STD}

CPU = Scale(
    name="cpu",
    upstream="imagefolder:.data/cifar10",
    upstream_name="CIFAR-10",
    # The ViT's inputs normalised by CIFAR-10's mean and std, as its ablation chose (+3.8 points
    # at 10 epochs); the ResNet's as its ablation ran them, pixels to [-1, 1].
    vit={"variant": "vit_ti16", "model_arg": ("patch_size=4", "depth=5"), **CIFAR10_STATS},
    bit={"variant": "bit_r50x1", "model_arg": ("stem=small", "layers=(1,1,1,1)", "width=0.5")},
    vit_name="ViT-Ti/4 (5 layers)",
    bit_name="BiT-R14x0.5",
    recipes={"vit": "scratch-small", "bit": "scratch-small-resnet"},
    # Around each recipe's rate: its ablation found 2e-3 worse for the ViT, 8e-3 for BiT.
    scratch_lrs={"vit": (0.00025, 0.0005, 0.001, 0.002), "bit": (0.001, 0.002, 0.004, 0.008)},
    image_size=32,
    batch_size=128,
    dev_fraction=0.02,  # Appendix B.1.1: 2% of CIFAR's training set
    eval_every=150,
    checkpoint_every=200,  # lost to a stop at most: ~3 min on AMX, ~10 at one AVX2 thread
    learning_rates=(0.001, 0.003, 0.01, 0.03),  # Table 4's grid
    shots=(1, 5, 10),
    few_label_steps=500,  # Table 4's for the small data sets
    best_vit="results/cifar10-vit_ti4-flagship/model-bf16.safetensors",  # the flagship
)
GPU = replace(
    CPU,
    name="gpu",
    # ViT-S (Table 1's width 384, 12 layers, 6 heads) with 4x4 patches: an 8x8 grid at 32x32.
    vit={"variant": "vit_s16", "model_arg": ("patch_size=4",), **CIFAR10_STATS},
    # BiT-R50x1 with a 3x3 stride-1 stem and no max-pool, so stage 1 sees 32x32.
    bit={"variant": "bit_r50x1", "model_arg": ("stem=small",)},
    vit_name="ViT-S/4",
    bit_name="BiT-R50x1",
    batch_size=256,
    eval_every=400,
    checkpoint_every=1_000,
    best_vit=None,  # its own data-size ViT-S/4
    workers=8,
)
SMOKE = Scale(
    name="smoke",
    upstream="digits",
    upstream_name="digits",
    vit={
        "variant": "vit_ti16",
        "model_arg": ("patch_size=8", "depth=1", "hidden_size=32", "num_heads=2", "mlp_size=64"),
    },
    bit={"variant": "bit_r50x1", "model_arg": ("stem=small", "layers=(1,1)", "width=0.5")},
    vit_name="ViT (1 layer)",
    bit_name="BiT (2 blocks)",
    recipes=CPU.recipes,
    scratch_lrs={"vit": (0.001, 0.003), "bit": (0.003, 0.01)},
    image_size=16,
    batch_size=32,
    dev_fraction=0.1,
    eval_every=1,
    checkpoint_every=1,
    learning_rates=(0.01, 0.03),
    shots=(1, 2),
    few_label_steps=2,
    finetune_seeds=1,
)
SCALES = {scale.name: scale for scale in (CPU, GPU, SMOKE)}
