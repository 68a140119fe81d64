"""The studies' ViT on all of CIFAR-10 (the data-size study's vit-100 at the cpu scale): a
ViT-Ti/4 of 5 layers (D 192, 3 heads, 4x4 patches: an 8x8 grid), 1,500 steps of 128 with the
paper's scratch recipe, a 2% dev split held out for early stopping (Section 4.3), the inception
crop with a 25% area floor. Needs CIFAR-10 in .data/cifar10 (README, Results).

Should reach: about 46% test top-1 (results/studies/data-size/vit-100: 46.5%), about 15 minutes
on a 2-core CPU with AMX; a plain PyTorch loop of the same budget gets as far
(python -m replicate.study.plain_loop).

    python -m replicate.train --config configs/cifar10_vit_ti4.py
"""


def get_config() -> dict:
    return {
        "variant": "vit_ti16",
        "model_arg": ["patch_size=4", "depth=5"],
        "dataset": "imagefolder:.data/cifar10",
        "image_size": 32,
        "batch_size": 128,
        "workers": 0,
        "val_fraction": 0.02,
        "early_stopping": True,
        "eval_every": 150,
        "checkpoint_every": 200,
        "crop_scale": 0.25,
        "steps": 1500,
        "out": "runs/cifar10-vit_ti4",
    }
