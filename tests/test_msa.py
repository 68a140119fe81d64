"""Appendix A, Eq. 5-8: multi-head self-attention against a naive, explicit implementation."""

import torch

from vit import ViTConfig
from vit.attention import MultiHeadSelfAttention


def naive_msa(msa: MultiHeadSelfAttention, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. 5-8 written out head by head, with loops and no fused kernels."""
    k_heads = msa.num_heads
    D = z.shape[-1]
    D_h = D // k_heads
    U_qkv_w, U_qkv_b = msa.qkv.weight, msa.qkv.bias  # (3D, D), rows laid out [q; k; v]
    heads, weights = [], []
    for h in range(k_heads):
        rows = [slice(part * D + h * D_h, part * D + (h + 1) * D_h) for part in range(3)]
        q, k, v = (z @ U_qkv_w[r].T + U_qkv_b[r] for r in rows)  # Eq. 5
        A = torch.softmax(q @ k.transpose(-2, -1) / D_h**0.5, dim=-1)  # Eq. 6
        heads.append(A @ v)  # Eq. 7
        weights.append(A)
    out = torch.cat(heads, dim=-1) @ msa.proj.weight.T + msa.proj.bias  # Eq. 8
    return out, torch.stack(weights, dim=1)


def test_msa_equals_naive_equations(tiny_config: ViTConfig) -> None:
    msa = MultiHeadSelfAttention(tiny_config).eval()
    for p in msa.parameters():
        torch.nn.init.normal_(p, std=0.2)
    z = torch.randn(3, 17, tiny_config.hidden_size)
    expected_out, expected_A = naive_msa(msa, z)
    torch.testing.assert_close(msa(z), expected_out, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(msa.attention_weights(z), expected_A, atol=1e-5, rtol=1e-5)


def test_attention_rows_sum_to_one(tiny_config: ViTConfig) -> None:
    msa = MultiHeadSelfAttention(tiny_config)
    A = msa.attention_weights(torch.randn(2, 17, tiny_config.hidden_size))
    assert A.shape == (2, tiny_config.num_heads, 17, 17)
    torch.testing.assert_close(A.sum(-1), torch.ones(2, tiny_config.num_heads, 17))
    assert (A >= 0).all()


def test_dropout_after_output_projection_only_in_training(tiny_config: ViTConfig) -> None:
    msa = MultiHeadSelfAttention(tiny_config.replace(dropout=0.5))
    z = torch.randn(2, 17, tiny_config.hidden_size)
    assert (msa.train()(z) == 0).float().mean() > 0.3
    torch.testing.assert_close(msa.eval()(z), naive_msa(msa, z)[0], atol=1e-5, rtol=1e-5)
