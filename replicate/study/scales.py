"""The three scales every study runs at (`--scale`).

cpu     what `results/studies/` holds: CIFAR-10 upstream (`.data/cifar10`, unpacked from
        `../shared/data/cifar10.tar.xz`), the ants vs bees photos downstream, at 32x32 two
        models of comparable cost (Section 4.3): a ViT-Ti/4 of 5 layers (D 192, 3 heads, MLP
        768, 4x4 patches: an 8x8 grid; 2.29M parameters with the tanh pre-training head, 0.31
        GFLOPs a forward pass) and a BiT ResNet shrunk to one bottleneck block per stage at
        half width, BiT-R14x0.5 (small stem; 2.0M parameters, 0.22 GFLOPs). A fixed budget
        of optimiser steps per run, a 2% dev split (Appendix B.1.1's for CIFAR) with early
        stopping on it (Section 4.3); each model's learning rate and weight decay, and the
        inception crop's area floor for both, as the `recipe` study chose them on that split.
        Sized for this project's 2-core CPU (bf16 on AMX): each run at most about 30 minutes,
        the whole set about 5 hours.
gpu     the same studies larger (ViT-S/4 and BiT-R50x1 with the small stem, 3,000 steps of
        256), for one H100/H200 beside the GPU checks; smoke-tested here.
smoke   the same runs on scikit-learn's digits with one-layer models and two steps each: the
        whole pipeline (training, fine-tuning, sweeps, few-shot, figures) on a CPU in seconds.
"""

from __future__ import annotations

from dataclasses import replace

from replicate.study.spec import Scale, Search

_CPU_VIT = {"variant": "vit_ti16", "model_arg": ("patch_size=4", "depth=5")}
_SMALL_BIT = {"variant": "bit_r50x1", "model_arg": ("stem=small", "layers=(1,1,1,1)", "width=0.5")}
CPU = Scale(
    name="cpu",
    upstream="imagefolder:.data/cifar10",
    upstream_name="CIFAR-10",
    downstream="imagefolder:.data/hymenoptera_160",
    vit=_CPU_VIT,
    bit=_SMALL_BIT,
    vit_name="ViT-Ti/4 (5 layers)",
    bit_name="BiT-R14x0.5",
    image_size=32,
    batch_size=128,
    steps=1_500,  # ~4 epochs of the 49,000 training images; as many steps on every subset
    finetune_steps=100,
    finetune_batch_size=64,
    # Figures 3 and 4's subsets of JFT (9M, 30M, 90M and 300M images) as fractions of CIFAR-10
    fractions=(0.03, 0.1, 0.3, 1.0),
    shots=(1, 5, 10),
    finetune_sizes=(48, 64),
    learning_rates=(0.001, 0.003, 0.01, 0.03),  # Table 4's grid
    dev_fraction=0.02,  # Appendix B.1.1: 2% of CIFAR's training set
    eval_every=150,
    checkpoint_every=200,  # at most ~3 minutes of the slower model lost to a stop
    crop_scale=0.5,  # the recipe study's choice (results/studies/recipe), as `scratch` below
    # Both models train with Adam (Appendix D.1): one grid for both. The weight decays are
    # AdamW's coefficients: each step shrinks a weight by wd x the searched lr x the schedule
    # (`replicate.training.recipes`).
    search=Search(
        lrs=(0.001, 0.003),
        weight_decays=(0.05, 0.3),
        crop_scales=(0.25, 0.5),
        steps=300,  # ~0.8 epoch a candidate
        final_steps={"vit": 4_000, "bit": 2_500},  # ~25 minutes each on the 2-core CPU
    ),
    scratch={
        "vit": {"lr": 0.001, "weight_decay": 0.3},
        "bit": {"lr": 0.003, "weight_decay": 0.3},
    },
    best_vit="results/cifar10-vit_ti4/model-bf16.safetensors",  # configs/cifar10_vit_ti4.py
    transfer_split=(
        ("airplane", "automobile", "bird", "cat", "deer"),
        ("dog", "frog", "horse", "ship", "truck"),
    ),
    few_label_steps=500,  # Table 4's for the small data sets: 64 epochs of B's 500 labels
    pretext_lrs=(0.0005, 0.001, 0.002),  # around scratch-small's Adam rate at batch 128
    pretext_steps=3_000,  # about 8 epochs of the training images, without their labels
    # About 40 epochs of all of CIFAR-10 (2.5 hours of the ViT here): what the flagship run
    # (configs/cifar10_vit_ti4_flagship.py) trains; the small subsets stop far earlier.
    data_size_steps=15_000,
    patience=20,  # 3,000 steps: 8 epochs of all the data
    # The recipes the dev-split ablation chose (results/recipe-ablation), and around each
    # one's rate the from-scratch grid (its ablation: 2e-3 lost for the ViT, 8e-3 for BiT).
    recipes={"vit": "scratch-small", "bit": "scratch-small-resnet"},
    scratch_lrs={"vit": (0.00025, 0.0005, 0.001, 0.002), "bit": (0.001, 0.002, 0.004, 0.008)},
)
GPU = replace(
    CPU,
    name="gpu",
    # ViT-S (Table 1's width 384, 12 layers, 6 heads) with 4x4 patches: an 8x8 grid at 32x32.
    vit={"variant": "vit_s16", "model_arg": ("patch_size=4",)},
    # BiT-R50x1 with a 3x3 stride-1 stem and no max-pool, so stage 1 sees 32x32.
    bit={"variant": "bit_r50x1", "model_arg": ("stem=small",)},
    vit_name="ViT-S/4",
    bit_name="BiT-R50x1",
    batch_size=256,
    steps=3_000,  # ~16 epochs of the full training set; as many steps on every subset
    finetune_steps=250,  # half Table 4's 500 for the small datasets: the studies fit 8 minutes
    finetune_batch_size=256,
    eval_every=400,
    checkpoint_every=1_000,
    scratch={},  # the recipes' own until the recipe study has run at this scale on a GPU
    best_vit=None,  # its own data-size ViT-S/4
    search=replace(CPU.search, steps=100, final_steps={"vit": 1_500, "bit": 1_500}),
    workers=8,
)

_TINY_VIT = {
    "variant": "vit_ti16",
    "model_arg": ("patch_size=8", "depth=1", "hidden_size=32", "num_heads=2", "mlp_size=64"),
}
_TINY_BIT = {"variant": "bit_r50x1", "model_arg": ("stem=small", "layers=(1,1)", "width=0.5")}
SMOKE = Scale(
    name="smoke",
    upstream="digits",
    upstream_name="digits",
    downstream="digits",
    vit=_TINY_VIT,
    bit=_TINY_BIT,
    vit_name="ViT (1 layer)",
    bit_name="BiT (2 blocks)",
    image_size=16,
    batch_size=32,
    steps=2,
    finetune_steps=2,
    finetune_batch_size=32,
    fractions=(0.1, 1.0),
    shots=(1, 2),
    finetune_sizes=(24,),
    learning_rates=(0.01, 0.03),
    dev_fraction=0.1,
    eval_every=1,
    checkpoint_every=1,
    crop_scale=0.25,
    search=Search(
        lrs=(0.003,),
        weight_decays=(0.05, 0.3),
        crop_scales=(0.5,),
        steps=2,
        final_steps={"vit": 3, "bit": 3},
    ),  # fmt: skip
    finetune_seeds=1,
    transfer_split=(("0", "1", "2", "3", "4"), ("5", "6", "7", "8", "9")),
    few_label_steps=2,
    pretext_lrs=(0.001, 0.003),
    pretext_steps=3,
    data_size_steps=3,
    patience=1,
    recipes={"vit": "scratch-small", "bit": "scratch-small-resnet"},
    scratch_lrs={"vit": (0.001, 0.003), "bit": (0.003, 0.01)},
)
SCALES = {scale.name: scale for scale in (CPU, GPU, SMOKE)}
