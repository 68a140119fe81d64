"""The two scales every study runs at (`--scale`).

full    what `results/studies/` holds: CIFAR-10 upstream (`.data/cifar10`, unpacked from
        `../shared/data/cifar10.tar.xz`), the ants vs bees photos downstream, ViT-S with 4x4
        patches and BiT-R50x1 with the small-input stem at 32x32, a fixed budget of optimiser
        steps per run. Sized for one H100: about 45 minutes of device time for all studies.
smoke   the same runs on scikit-learn's digits with one-layer models and two steps each: the
        whole pipeline (training, fine-tuning, sweeps, few-shot, figures) on a CPU in seconds.
"""

from __future__ import annotations

from replicate.study.spec import Scale

FULL = Scale(
    name="full",
    upstream="imagefolder:.data/cifar10",
    downstream="imagefolder:.data/hymenoptera_160",
    # ViT-S (Table 1's width 384, 12 layers, 6 heads) with 4x4 patches: an 8x8 grid at 32x32.
    vit=("--variant", "vit_s16", "--model-arg", "patch_size=4"),
    # BiT-R50x1 with a 3x3 stride-1 stem and no max-pool, so stage 1 sees 32x32.
    bit=("--variant", "bit_r50x1", "--model-arg", "stem=small"),
    image_size=32,
    batch_size=256,
    steps=4_000,  # ~20 epochs of the full training set; as many steps on every subset
    finetune_steps=500,  # Table 4's budget for the small datasets (Pets, Flowers)
    fractions=(0.05, 0.1, 0.2, 0.5, 1.0),
    shots=(1, 5, 10),
    finetune_sizes=(48, 64),
    learning_rates=(0.001, 0.003, 0.01, 0.03),  # Table 4's grid
    workers=8,
)

_TINY_VIT = (
    *("--variant", "vit_ti16", "--model-arg", "patch_size=8", "--model-arg", "depth=1"),
    *("--model-arg", "hidden_size=32", "--model-arg", "num_heads=2", "--model-arg", "mlp_size=64"),
)
SMOKE = Scale(
    name="smoke",
    upstream="digits",
    downstream="digits",
    vit=_TINY_VIT,
    bit=("--variant", "bit_r50x1", "--model-arg", "stem=small"),
    image_size=16,
    batch_size=32,
    steps=2,
    finetune_steps=2,
    fractions=(0.1, 1.0),
    shots=(1, 2),
    finetune_sizes=(24,),
    learning_rates=(0.01, 0.03),
)
SCALES = {scale.name: scale for scale in (FULL, SMOKE)}
