"""Appendix A, Eq. 5-8: multi-head self-attention (MSA).

    [q, k, v] = z U_qkv                     U_qkv in R^{D x 3 D_h}          (5)
    A = softmax(q k^T / sqrt(D_h))          A in R^{N x N}                  (6)
    SA(z) = A v                                                             (7)
    MSA(z) = [SA_1(z); ...; SA_k(z)] U_msa  U_msa in R^{k D_h x D}          (8)

The k heads' U_qkv are fused into one (D -> 3D) linear layer, laid out [q; k; v] as in timm,
torchvision and the official checkpoints. Eq. 6-7 run through
`torch.nn.functional.scaled_dot_product_attention`, which on a GPU uses a fused (flash)
kernel that never materialises A. In bf16 on a CPU, SDPA's flash backward is the slow one: at
a ViT's sequence lengths two bf16 matrix products and a softmax (oneDNN, AMX) measured 6x
faster in a training step, so training takes that form there (`attend`). The figures need A,
so `attention_weights` computes Eq. 6 explicitly; it is a separate method, so the fast path
carries no flag and no hook.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from vit.config import ViTConfig
from vit.dropout import Dropout


class MultiHeadSelfAttention(nn.Module):
    def __init__(self, config: ViTConfig) -> None:
        super().__init__()
        self.num_heads = config.num_heads
        self.qkv = nn.Linear(config.hidden_size, 3 * config.hidden_size)  # U_qkv, all heads
        self.proj = nn.Linear(config.hidden_size, config.hidden_size)  # U_msa
        self.dropout = Dropout(config.dropout)  # after a dense layer (not after qkv)

    def _qkv(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Eq. 5: (B, N, D) -> q, k, v, each (B, k, N, D_h)."""
        qkv = rearrange(self.qkv(z), "b n (three h d) -> three b h n d", three=3, h=self.num_heads)
        return qkv.unbind(0)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """(B, N, D) -> (B, N, D); Eq. 6-7 fused, Eq. 8 the output projection."""
        q, k, v = self._qkv(z)
        heads = attend(q, k, v)  # softmax(q k^T / sqrt(D_h)) v
        heads = rearrange(heads, "b h n d -> b n (h d)")  # [SA_1; ...; SA_k]
        return self.dropout(self.proj(heads))

    def attention_weights(self, z: torch.Tensor) -> torch.Tensor:
        """Eq. 6 made explicit: A = softmax(q k^T / sqrt(D_h)), (B, N, D) -> (B, k, N, N)."""
        q, k, _ = self._qkv(z)
        return _attention_logits(q.float(), k.float()).softmax(dim=-1)


def _attention_logits(q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """q k^T / sqrt(D_h): (B, k, N, D_h) twice -> (B, k, N, N)."""
    return q @ k.transpose(-2, -1) * q.shape[-1] ** -0.5


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Eq. 6-7, (B, k, N, D_h) -> (B, k, N, D_h): SDPA's fused kernels, except when training in
    bf16 on a CPU, where A is formed explicitly (the softmax in fp32, as autocast runs it): the
    CPU's flash kernel is fast forward (5x the explicit form at N = 197), slow backward."""
    training = torch.is_grad_enabled() and q.requires_grad
    if training and q.device.type == "cpu" and q.dtype == torch.bfloat16:
        return _attention_logits(q, k).softmax(dim=-1).to(v.dtype) @ v
    return F.scaled_dot_product_attention(q, k, v)
