"""Table 1: the variants, their sizes and exact parameter counts; the shared registry."""

import re

import pytest
import torch

import vit
from vit.variants import VARIANTS


def count_parameters_on_meta(name: str, **kwargs) -> int:
    with torch.device("meta"):  # no memory is allocated for the weights
        model = vit.create_model(name, **kwargs)
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(
    "name,expected",
    [("vit_b16", 86_567_656), ("vit_l16", 304_326_632), ("vit_h14", 632_045_800)],
)
def test_parameter_counts_match_timm_and_torchvision(name: str, expected: int) -> None:
    assert count_parameters_on_meta(name, num_classes=1000) == expected


@pytest.mark.parametrize(
    "name,layers,hidden,mlp,heads",
    [
        ("vit_b16", 12, 768, 3072, 12),
        ("vit_l32", 24, 1024, 4096, 16),
        ("vit_h14", 32, 1280, 5120, 16),
    ],
)
def test_variant_sizes_are_table_1(
    name: str, layers: int, hidden: int, mlp: int, heads: int
) -> None:
    with torch.device("meta"):
        config = vit.create_model(name).config
    assert (config.depth, config.hidden_size, config.mlp_size, config.num_heads) == (
        layers,
        hidden,
        mlp,
        heads,
    )
    assert config.patch_size == int(name[5:])


def test_every_variant_is_registered() -> None:
    assert set(VARIANTS) <= set(vit.list_models("vit"))


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_every_variant_trains(name: str) -> None:
    """Forward and backward through every registered ViT, shrunk to two layers to stay fast;
    every parameter gets a gradient."""
    size = 2 * VARIANTS[name].config.downsampling  # 2 x 2 patches (a hybrid's: 32, 64 px)
    model = vit.create_model(name, num_classes=3, image_size=size, depth=2)
    for p in model.parameters():  # zero layers pass no gradient back: the head, and a
        if not p.any():  # hybrid's last GroupNorm scale in each unit (vit.hybrid)
            torch.nn.init.normal_(p)
    model(torch.randn(2, 3, size, size)).logsumexp(-1).sum().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.any()]
    assert not missing


def test_unknown_variant_names_the_closest_match() -> None:
    with pytest.raises(ValueError, match="unknown model 'vit_b61'.*'vit_b16'"):
        vit.create_model("vit_b61")


def test_unknown_config_field_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown ViT config field"):
        vit.create_model("vit_ti16", depths=3)


def test_no_weight_decay_names_exist() -> None:
    model = vit.create_model("vit_ti16", depth=1)
    assert model.no_weight_decay() <= dict(model.named_parameters()).keys()


def test_summary_totals_are_table_1s_and_every_block_is_a_row(capsys) -> None:
    """`python -m replicate.summary`: the total is the exact count above; Table 1's 12 blocks of
    ViT-B/16 each a row of N + 1 = 197 tokens of D = 768; the layer rows add up to the total."""
    from replicate.summary import main

    summary = main(["--variant", "vit_b16"])
    assert summary.parameters == summary.trainable == 86_567_656
    blocks = [layer for layer in summary.layers if layer.kind == "EncoderBlock"]
    assert len(blocks) == 12 and {b.output for b in blocks} == {(1, 197, 768)}
    top = [layer for layer in summary.layers if "." not in layer.name]
    assert sum(layer.parameters for layer in top) == summary.parameters
    printed = capsys.readouterr().out
    assert "parameters: 86,567,656 (86,567,656 trainable)" in printed
    assert re.search(r"encoder\.layers\.11 \(EncoderBlock\) +\[1, 197, 768\] +7,087,872", printed)
    at_384 = main(["--variant", "vit_b16", "--image-size", "384", "--depth", "1"])
    assert at_384.layers[0].output == (1, 577, 768)  # 24 x 24 patches + [class]
