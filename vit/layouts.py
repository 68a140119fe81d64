"""Checkpoint key layouts: timm, torchvision and the official JAX `.npz`, mapped to this
project's parameter names, in both directions.

Each layout is a table of `Rule`s. A rule names one of our tensors, the tensor(s) it comes from
in the other layout, and the two transforms between them; every transposition and reshape is
listed here and nowhere else. `{i}` stands for the encoder layer index.

    ours                                 timm                   torchvision                 official .npz
    embedding.projection (Conv2d)        patch_embed.proj       conv_proj                   embedding/kernel (P,P,C,D)
    embedding.class_token                cls_token              class_token                 cls
    embedding.position_embedding         pos_embed              encoder.pos_embedding       Transformer/posembed_input/pos_embedding
    encoder.layers.{i}.norm1, norm2      blocks.{i}.norm1/2     ...ln_1, ln_2               LayerNorm_0, LayerNorm_2
    encoder.layers.{i}.attention.qkv     blocks.{i}.attn.qkv    self_attention.in_proj_*    MultiHeadDotProductAttention_1/{query,key,value}
    encoder.layers.{i}.attention.proj    blocks.{i}.attn.proj   self_attention.out_proj     MultiHeadDotProductAttention_1/out
    encoder.layers.{i}.mlp.fc1, fc2      blocks.{i}.mlp.fc1/2   mlp.0, mlp.3                MlpBlock_3/Dense_0, Dense_1
    head.norm                            norm (fc_norm: GAP)    encoder.ln                  Transformer/encoder_norm
    head.pre_logits.0                    pre_logits.fc          heads.pre_logits            pre_logits
    head.classifier                      head                   heads.head                  head
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

OURS = "vit-replicate"
LAYER = "encoder.layers.{i}."
NPZ_LAYER = "Transformer/encoderblock_{i}/"


def _same(*tensors: Tensor) -> Tensor:
    return tensors[0]


def _one(tensor: Tensor) -> tuple[Tensor, ...]:
    return (tensor,)


def _transpose(*tensors: Tensor) -> Tensor:
    return tensors[0].T


def _transpose_back(tensor: Tensor) -> tuple[Tensor, ...]:
    return (tensor.T,)


@dataclass(frozen=True)
class Rule:
    ours: str
    theirs: tuple[str, ...]
    to_ours: Callable[..., Tensor] = _same  # their tensors -> ours
    to_theirs: Callable[[Tensor], tuple[Tensor, ...]] = _one  # ours -> theirs

    def for_layer(self, i: int) -> Rule:
        return Rule(
            self.ours.format(i=i),
            tuple(k.format(i=i) for k in self.theirs),
            self.to_ours,
            self.to_theirs,
        )


def _linear(ours: str, theirs: str, *, weight_is_kernel: bool = False) -> list[Rule]:
    """A dense layer: weight + bias. JAX kernels are (in, out), PyTorch weights (out, in)."""
    if weight_is_kernel:
        return [
            Rule(f"{ours}.weight", (f"{theirs}/kernel",), _transpose, _transpose_back),
            Rule(f"{ours}.bias", (f"{theirs}/bias",)),
        ]
    return [Rule(f"{ours}.{p}", (f"{theirs}.{p}",)) for p in ("weight", "bias")]


def _norm(ours: str, theirs: str, *, jax: bool = False) -> list[Rule]:
    if jax:
        return [
            Rule(f"{ours}.weight", (f"{theirs}/scale",)),
            Rule(f"{ours}.bias", (f"{theirs}/bias",)),
        ]
    return _linear(ours, theirs)  # weight + bias, same names


@dataclass(frozen=True)
class Layout:
    name: str
    marker: str  # a key only this layout has, used to detect it
    layer_marker: str  # a per-layer key, to count the layers
    model_rules: tuple[Rule, ...]
    layer_rules: tuple[Rule, ...]
    pre_logits_rules: tuple[Rule, ...]

    def rules(self, depth: int, pre_logits: bool) -> list[Rule]:
        layers = [r.for_layer(i) for i in range(depth) for r in self.layer_rules]
        return [*self.model_rules, *layers, *(self.pre_logits_rules if pre_logits else ())]

    def depth(self, state: dict[str, Tensor]) -> int:
        pattern = re.compile(re.escape(self.layer_marker).replace(r"\{i\}", r"(\d+)") + "$")
        return sum(1 for k in state if pattern.match(k))


TIMM = Layout(
    name="timm",
    marker="patch_embed.proj.weight",
    layer_marker="blocks.{i}.attn.qkv.weight",
    model_rules=(
        *_linear("embedding.projection", "patch_embed.proj"),
        Rule("embedding.class_token", ("cls_token",)),
        Rule("embedding.position_embedding", ("pos_embed",)),
        *_norm("head.norm", "norm"),
        *_linear("head.classifier", "head"),
    ),
    layer_rules=(
        *_norm(LAYER + "norm1", "blocks.{i}.norm1"),
        *_linear(LAYER + "attention.qkv", "blocks.{i}.attn.qkv"),
        *_linear(LAYER + "attention.proj", "blocks.{i}.attn.proj"),
        *_norm(LAYER + "norm2", "blocks.{i}.norm2"),
        *_linear(LAYER + "mlp.fc1", "blocks.{i}.mlp.fc1"),
        *_linear(LAYER + "mlp.fc2", "blocks.{i}.mlp.fc2"),
    ),
    pre_logits_rules=tuple(_linear("head.pre_logits.0", "pre_logits.fc")),
)

_TV_LAYER = "encoder.layers.encoder_layer_{i}."
TORCHVISION = Layout(
    name="torchvision",
    marker="conv_proj.weight",
    layer_marker=_TV_LAYER + "self_attention.in_proj_weight",
    model_rules=(
        *_linear("embedding.projection", "conv_proj"),
        Rule("embedding.class_token", ("class_token",)),
        Rule("embedding.position_embedding", ("encoder.pos_embedding",)),
        *_norm("head.norm", "encoder.ln"),
        *_linear("head.classifier", "heads.head"),
    ),
    layer_rules=(
        *_norm(LAYER + "norm1", _TV_LAYER + "ln_1"),
        Rule(LAYER + "attention.qkv.weight", (_TV_LAYER + "self_attention.in_proj_weight",)),
        Rule(LAYER + "attention.qkv.bias", (_TV_LAYER + "self_attention.in_proj_bias",)),
        *_linear(LAYER + "attention.proj", _TV_LAYER + "self_attention.out_proj"),
        *_norm(LAYER + "norm2", _TV_LAYER + "ln_2"),
        *_linear(LAYER + "mlp.fc1", _TV_LAYER + "mlp.0"),
        *_linear(LAYER + "mlp.fc2", _TV_LAYER + "mlp.3"),
    ),
    pre_logits_rules=tuple(_linear("head.pre_logits.0", "heads.pre_logits")),
)


# The official checkpoints split heads: q/k/v kernels are (D, heads, D_h), out is (heads, D_h, D).
def _qkv_from_jax(q: Tensor, k: Tensor, v: Tensor) -> Tensor:
    """Three (D, heads, D_h) kernels -> one fused (3D, D) weight, laid out [q; k; v]."""
    return torch.cat([t.reshape(t.shape[0], -1).T for t in (q, k, v)])


def _qkv_bias_from_jax(q: Tensor, k: Tensor, v: Tensor) -> Tensor:
    return torch.cat([t.reshape(-1) for t in (q, k, v)])


def _npz_rules(num_heads: int) -> tuple[tuple[Rule, ...], tuple[Rule, ...]]:
    def qkv_to_jax(w: Tensor) -> tuple[Tensor, ...]:
        return tuple(t.T.reshape(t.shape[1], num_heads, -1) for t in w.chunk(3))

    def qkv_bias_to_jax(b: Tensor) -> tuple[Tensor, ...]:
        return tuple(t.reshape(num_heads, -1) for t in b.chunk(3))

    attn = NPZ_LAYER + "MultiHeadDotProductAttention_1/"
    qkv = tuple(attn + f"{n}/kernel" for n in ("query", "key", "value"))
    qkv_bias = tuple(attn + f"{n}/bias" for n in ("query", "key", "value"))
    model_rules = (
        Rule(
            "embedding.projection.weight",
            ("embedding/kernel",),
            lambda k: k.permute(3, 2, 0, 1),  # (P, P, C, D) -> (D, C, P, P)
            lambda w: (w.permute(2, 3, 1, 0),),
        ),
        Rule("embedding.projection.bias", ("embedding/bias",)),
        Rule("embedding.class_token", ("cls",)),
        Rule("embedding.position_embedding", ("Transformer/posembed_input/pos_embedding",)),
        *_norm("head.norm", "Transformer/encoder_norm", jax=True),
        *_linear("head.classifier", "head", weight_is_kernel=True),
    )
    layer_rules = (
        *_norm(LAYER + "norm1", NPZ_LAYER + "LayerNorm_0", jax=True),
        Rule(LAYER + "attention.qkv.weight", qkv, _qkv_from_jax, qkv_to_jax),
        Rule(LAYER + "attention.qkv.bias", qkv_bias, _qkv_bias_from_jax, qkv_bias_to_jax),
        Rule(
            LAYER + "attention.proj.weight",
            (attn + "out/kernel",),
            lambda k: k.reshape(-1, k.shape[-1]).T,  # (heads, D_h, D) -> (D, heads * D_h)
            lambda w: (w.T.reshape(num_heads, -1, w.shape[0]),),
        ),
        Rule(LAYER + "attention.proj.bias", (attn + "out/bias",)),
        *_norm(LAYER + "norm2", NPZ_LAYER + "LayerNorm_2", jax=True),
        *_linear(LAYER + "mlp.fc1", NPZ_LAYER + "MlpBlock_3/Dense_0", weight_is_kernel=True),
        *_linear(LAYER + "mlp.fc2", NPZ_LAYER + "MlpBlock_3/Dense_1", weight_is_kernel=True),
    )
    return model_rules, layer_rules


def npz_layout(num_heads: int) -> Layout:
    """The official layout; converting back to it needs the number of heads."""
    model_rules, layer_rules = _npz_rules(num_heads)
    return Layout(
        name="npz",
        marker="embedding/kernel",
        layer_marker=NPZ_LAYER + "MultiHeadDotProductAttention_1/query/kernel",
        model_rules=model_rules,
        layer_rules=layer_rules,
        pre_logits_rules=tuple(_linear("head.pre_logits.0", "pre_logits", weight_is_kernel=True)),
    )


# Key spellings other writers use for the same tensors, rewritten before a layout is applied.
_ALIASES = (
    (re.compile(r"^(module|_orig_mod)\."), ""),  # DistributedDataParallel, torch.compile
    (re.compile(r"^(opt/target|params)/"), ""),  # flax optimizer / big_vision checkpoints
    (re.compile(r"^fc_norm\."), "norm."),  # timm GAP models normalise after pooling
    (re.compile(r"\.mlp\.linear_1\."), ".mlp.0."),  # torchvision before 0.13
    (re.compile(r"\.mlp\.linear_2\."), ".mlp.3."),
    (re.compile(r"/MlpBlock_\d+/"), "/MlpBlock_3/"),
)


def _normalise_keys(state: dict[str, Tensor]) -> dict[str, Tensor]:
    normalised = {}
    for key, value in state.items():
        for pattern, repl in _ALIASES:
            key = pattern.sub(repl, key)
        normalised[key] = value
    return normalised


def detect_layout(state: dict[str, Tensor], num_heads: int) -> Layout | None:
    """The layout of `state`; None when it is already this project's."""
    if "embedding.projection.weight" in state:
        return None
    for layout in (TIMM, TORCHVISION, npz_layout(num_heads)):
        if layout.marker in state:
            return layout
    sample = ", ".join(sorted(state)[:5])
    raise ValueError(
        f"unrecognised checkpoint layout (first keys: {sample}); expected a ViT state dict "
        "from this project, timm, torchvision or an official .npz"
    )


def to_ours(state: dict[str, Tensor], num_heads: int) -> tuple[dict[str, Tensor], str]:
    """Convert a state dict of any known layout to ours; also returns the layout's name."""
    state = _normalise_keys(state)
    layout = detect_layout(state, num_heads)
    if layout is None:
        return state, OURS
    pre_logits = any(key in state for r in layout.pre_logits_rules for key in r.theirs)
    converted, used = {}, set()
    for rule in layout.rules(layout.depth(state), pre_logits):
        missing = [k for k in rule.theirs if k not in state]
        if missing:
            raise ValueError(f"{layout.name} checkpoint lacks {missing[0]!r} (for {rule.ours!r})")
        converted[rule.ours] = rule.to_ours(*(state[k] for k in rule.theirs))
        used.update(rule.theirs)
    unused = sorted(set(state) - used)
    if unused:
        raise ValueError(
            f"{layout.name} checkpoint has {len(unused)} tensor(s) this ViT has no place for, "
            f"e.g. {unused[0]!r}: is it a plain ViT (no register tokens, no layer scale)?"
        )
    return converted, layout.name


def from_ours(state: dict[str, Tensor], layout: Layout) -> dict[str, Tensor]:
    """Convert our state dict to `layout`: the inverse of `to_ours`."""
    depth = sum(1 for k in state if k.endswith("attention.qkv.weight"))
    converted = {}
    for rule in layout.rules(depth, pre_logits="head.pre_logits.0.weight" in state):
        converted.update(zip(rule.theirs, rule.to_theirs(state[rule.ours]), strict=True))
    return converted
