"""The studies' ResNet on all of CIFAR-10 (the data-size study's bit-100 at the cpu scale): a
BiT ResNet (pre-activation, GroupNorm, weight standardisation) of one bottleneck block per stage
at half width with a 3x3 stride-1 stem, BiT-R14x0.5, of about the ViT-Ti/4's cost; the same
budget, dev split and crop as configs/cifar10_vit_ti4.py, with Table 3's ResNet row (Adam).

Should reach: about 51% test top-1 (results/studies/data-size/bit-100: 50.7%).

    python -m replicate.train --config configs/cifar10_bit_r14.py
"""


def get_config() -> dict:
    return {
        "variant": "bit_r50x1",
        "model_arg": ["stem=small", "layers=(1,1,1,1)", "width=0.5"],
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
        "out": "runs/cifar10-bit_r14",
    }
