"""The reference initialisation (`vit_jax/models_vit.py`), tensor by tensor."""

from __future__ import annotations

import math

import pytest

from vit import VisionTransformer, ViTConfig


def test_q_k_v_are_xavier_uniform_each_as_a_d_by_d_kernel() -> None:
    """flax's MultiHeadDotProductAttention holds query, key and value as three DenseGeneral
    kernels (D, heads, D_h), each initialised by xavier_uniform on its (D, D) flattening:
    U(-a, a) with a = sqrt(6 / (D + D)), std a / sqrt(3). Over the fused (3D, D) matrix the
    bound would be sqrt(6 / 4D), a factor sqrt(2) narrower."""
    d = 256
    model = VisionTransformer(
        ViTConfig(image_size=16, patch_size=8, hidden_size=d, depth=1, num_heads=4, mlp_size=64)
    )
    bound = math.sqrt(6 / (d + d))
    attention = model.encoder.layers[0].attention
    for name, weight in zip(("q", "k", "v"), attention.qkv.weight.chunk(3), strict=True):
        assert weight.abs().max() <= bound, name
        assert weight.abs().max() > 0.99 * bound, name
        assert weight.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.02), name
    out = attention.proj.weight  # U_msa: the (heads, D_h, D) "out" kernel, also D x D
    assert out.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.02)
    assert not attention.qkv.bias.any()
