"""Section 3.1, the hybrid: E on a ResNet (BiT) feature map. Parameter counts equal timm's,
a random timm hybrid's weights give timm's logits, the official .npz layout round-trips (read
back by timm's own .npz loader too), E_pos interpolates, and the figures cope."""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import timm
import torch
from timm.layers import HybridEmbed, StdConv2dSame
from timm.models.resnetv2 import ResNetV2

import vit
from replicate.figures import make
from replicate.figures.__main__ import main as figures_main
from replicate.figures.images import digit_images
from replicate.sources import Source
from replicate.training.checkpoint import CheckpointInfo, save_weights
from vit.layouts import from_ours, npz_layout

# A small hybrid both sides can build: 2 ResNet stages of width 32 (stride 8), D = 32, 2 layers.
SMALL = dict(
    image_size=32,
    num_classes=5,
    hidden_size=32,
    depth=2,
    num_heads=4,
    mlp_size=64,
    resnet_layers=(1, 1),
    resnet_width=32,
)


def small_timm_hybrid() -> torch.nn.Module:
    """timm's hybrid ViT as `vit_base_r50_s16_384` builds it, shrunk, every tensor random."""
    backbone = ResNetV2(
        layers=(1, 1),
        channels=(128, 256),
        stem_chs=32,
        num_classes=0,
        global_pool="",
        preact=False,
        stem_type="same",
        conv_layer=partial(StdConv2dSame, eps=1e-8),
    )
    model = timm.models.vision_transformer.VisionTransformer(
        img_size=32,
        patch_size=1,
        num_classes=5,
        embed_dim=32,
        depth=2,
        num_heads=4,
        mlp_ratio=2.0,
        embed_layer=partial(HybridEmbed, backbone=backbone),
    )
    with torch.no_grad():
        for name, p in model.named_parameters():  # GroupNorm scales and the head are not 1 or 0
            if p.ndim == 1 or "head" in name:
                p.normal_(std=0.5 if "norm" in name else 0.02)
    return model.eval()


def assert_same_logits(reference: torch.nn.Module, ours: torch.nn.Module, size: int = 32) -> None:
    images = torch.randn(2, 3, size, size)
    with torch.no_grad():
        torch.testing.assert_close(ours.eval()(images), reference(images), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize(
    "name,timm_name,grid",
    [("vit_r50_b16", "vit_base_r50_s16_384", 24), ("vit_r50_l32", "vit_large_r50_s32_384", 12)],
)
def test_parameter_counts_equal_timms(name: str, timm_name: str, grid: int) -> None:
    with torch.device("meta"):
        ours = vit.create_model(name, num_classes=1000, image_size=384)
        reference = timm.create_model(timm_name, pretrained=False, num_classes=1000)
    count = sum(p.numel() for p in ours.parameters())
    assert count == sum(p.numel() for p in reference.parameters())
    assert count == {"vit_r50_b16": 98_950_952, "vit_r50_l32": 329_092_136}[name]
    assert ours.config.patch_size == 1 and ours.config.grid_size == grid  # 384 / 16, 384 / 32
    assert ours.embedding.position_embedding.shape[1] == grid**2 + 1


def test_option_ii_gives_a_4x_longer_sequence() -> None:
    """Appendix D.2: "Option (ii) results in a 4x longer sequence length"."""
    with torch.device("meta"):
        b16, l32 = (vit.create_model(n, image_size=224) for n in ("vit_r50_b16", "vit_r50_l32"))
    assert (b16.config.downsampling, l32.config.downsampling) == (16, 32)
    assert b16.config.num_patches == 4 * l32.config.num_patches == 196
    assert b16.embedding.projection.in_channels == 1024  # stage 3's output, 4 * 64 * 2^2
    assert l32.embedding.projection.in_channels == 2048


@pytest.fixture(scope="module")
def timm_hybrid_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[torch.nn.Module, Path]:
    torch.manual_seed(0)
    reference = small_timm_hybrid()
    path = tmp_path_factory.mktemp("hybrid") / "timm_hybrid.pth"
    torch.save(reference.state_dict(), path)
    return reference, path


def test_timm_hybrid_weights_give_timm_logits(timm_hybrid_file) -> None:
    reference, path = timm_hybrid_file
    ours = vit.create_model("vit_r50_b16", pretrained=str(path), **SMALL)
    assert ours.pretrained_info.layout == "timm"
    assert ours.pretrained_info.image_size == 32
    assert_same_logits(reference, ours)


def test_official_npz_layout_round_trips(timm_hybrid_file, tmp_path: Path) -> None:
    """Ours -> the official names (`models_resnet.py`, `models_vit.py`) -> ours; and timm's own
    .npz loader reads the same file into timm's hybrid with the same logits."""
    reference, path = timm_hybrid_file
    ours = vit.create_model("vit_r50_b16", pretrained=str(path), **SMALL)
    arrays = {k: v.numpy() for k, v in from_ours(ours.state_dict(), npz_layout(4)).items()}
    assert arrays["conv_root/kernel"].shape == (7, 7, 3, 32)  # (kh, kw, C_in, C_out)
    assert arrays["block2/unit1/conv_proj/kernel"].shape == (1, 1, 128, 256)
    assert arrays["block1/unit1/gn3/scale"].shape == (128,)
    assert arrays["embedding/kernel"].shape == (1, 1, 256, 32)  # patch size 1 on the features
    assert "block1/unit1/conv1/bias" not in arrays  # StdConvs have no bias
    # The 2020 release stores GroupNorm parameters as (1, 1, 1, C) (flax < 0.3.6).
    arrays = {k: v.reshape(1, 1, 1, -1) if "/gn" in k else v for k, v in arrays.items()}
    npz = tmp_path / "R50+ViT-tiny.npz"
    np.savez(npz, **arrays)

    loaded = vit.create_model("vit_r50_b16", pretrained=str(npz), **SMALL)
    assert loaded.pretrained_info.layout == "npz"
    for key, value in ours.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    timm_read = small_timm_hybrid()
    timm_read.load_pretrained(str(npz))
    assert_same_logits(reference, timm_read)
    assert_same_logits(reference, loaded)


def test_position_embedding_interpolation(timm_hybrid_file) -> None:
    """Section 3.2 on a hybrid: the grid is the feature map's, H / 8 here."""
    reference, path = timm_hybrid_file
    model = vit.create_model("vit_r50_b16", pretrained=str(path), **{**SMALL, "image_size": 64})
    assert model.config.grid_size == 8
    assert model.embedding.position_embedding.shape == (1, 8 * 8 + 1, 32)
    assert torch.equal(model.embedding.position_embedding[:, 0], reference.pos_embed[:, 0])
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 5)
    with pytest.raises(ValueError, match="not divisible by the total downsampling 8"):
        model.resize_position_embedding(60)


@pytest.fixture(scope="module")
def hybrid_subject() -> Source:
    model = vit.create_model("vit_r50_b16", **{**SMALL, "num_classes": 3}).eval()
    return Source(model, "vit_r50_b16", model.config.image_size, (0.5,) * 3, (0.5,) * 3,
                  ("a", "b", "c"), None, "R50+ViT (tiny test)")  # fmt: skip


@pytest.mark.parametrize(
    "figure",
    [
        lambda s, i, out: make.figure_7_position_similarity(s, out)[0],
        lambda s, i, out: make.figure_7_attention_distance(s, i, out, batch_size=2)[0],
        lambda s, i, out: make.figure_6_rollout(s, i, out),
    ],
    ids=["fig7-centre", "fig7-right", "fig6"],
)
def test_figures_that_apply_to_a_hybrid(figure, hybrid_subject: Source, tmp_path: Path) -> None:
    path = figure(hybrid_subject, digit_images(num=2, image_size=32), tmp_path)
    assert path.is_file() and path.stat().st_size > 1000


def test_figure_7_left_says_a_hybrid_has_no_rgb_filters(
    hybrid_subject: Source, tmp_path: Path
) -> None:
    with pytest.raises(make.FigureNotApplicable, match="hybrid.*no RGB patch filters"):
        make.figure_7_filters(hybrid_subject, tmp_path)


def test_figures_command_skips_what_a_hybrid_lacks(
    hybrid_subject: Source, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A hybrid trained by replicate.train: Figure 7 centre and right, and a warning for left."""
    checkpoint = tmp_path / "model.safetensors"
    overrides = {k: v for k, v in SMALL.items() if k not in ("image_size", "num_classes")}
    info = CheckpointInfo(
        "vit_r50_b16", 3, 32, ["a", "b", "c"], [0.5] * 3, [0.5] * 3, overrides, None, "digits", 1, 1
    )
    save_weights(checkpoint, hybrid_subject.model, info)
    out = tmp_path / "figures"
    argv = ["--checkpoint", str(checkpoint), "--only", "fig7", "--num-images", "2", "--out"]
    with caplog.at_level(logging.WARNING):
        written = figures_main([*argv, str(out)])
    assert (
        sorted(p.name for p in written)
        == sorted(p.name for p in out.iterdir())
        == sorted(
            [
                make.FIGURE_7_CENTRE,
                make.FIGURE_7_CENTRE_NUMBERS,
                make.FIGURE_7_RIGHT,
                make.FIGURE_7_RIGHT_NUMBERS,
            ]
        )
    )
    assert "skipped: Figure 7 left" in caplog.text and "no RGB patch filters" in caplog.text
