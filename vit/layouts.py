"""Checkpoint key layouts: timm, torchvision, the official JAX `.npz` and big_vision, mapped to
this project's parameter names, in both directions.

Each layout is a table of `Rule`s. A rule names one of our tensors, the tensor(s) it comes from
in the other layout, and the two transforms between them; every transposition and reshape is
listed here and nowhere else. `{i}` stands for the encoder layer index. Optional rules cover
tensors only some models have: the class token, the pre-logits layer, `norm` or `fc_norm`.

    ours                                 timm                   torchvision                 official .npz
    embedding.projection (Conv2d)        patch_embed.proj       conv_proj                   embedding/kernel (P,P,C,D)
    embedding.class_token                cls_token              class_token                 cls
    embedding.position_embedding         pos_embed              encoder.pos_embedding       Transformer/posembed_input/pos_embedding
    encoder.layers.{i}.norm1, norm2      blocks.{i}.norm1/2     ...ln_1, ln_2               LayerNorm_0, LayerNorm_1
    encoder.layers.{i}.attention.qkv     blocks.{i}.attn.qkv    self_attention.in_proj_*    MultiHeadDotProductAttention_0/{query,key,value}
    encoder.layers.{i}.attention.proj    blocks.{i}.attn.proj   self_attention.out_proj     MultiHeadDotProductAttention_0/out
    encoder.layers.{i}.mlp.fc1, fc2      blocks.{i}.mlp.fc1/2   mlp.0, mlp.3                MlpBlock_0/Dense_0, Dense_1
    head.norm (on every token)           norm                   encoder.ln                  Transformer/encoder_norm
    head.fc_norm (on the pooled vector)  fc_norm                -                           -
    head.pre_logits.0                    pre_logits.fc          heads.pre_logits            pre_logits
    head.classifier                      head                   heads.head                  head

A hybrid's ResNet (`vit.hybrid`, timm's ResNetV2) keeps timm's names under `embedding.backbone.`
(timm: `patch_embed.backbone.`); the official .npz names them as `models_resnet.py` does:

    ours (embedding.backbone.)           official .npz
    stem.conv, stem.norm                 conv_root (kernel (7,7,C,64)), gn_root (scale, bias)
    stages.{s}.blocks.{u}.conv1..3       block{s+1}/unit{u+1}/conv1..3
    stages.{s}.blocks.{u}.norm1..3       block{s+1}/unit{u+1}/gn1..3
    stages.{s}.blocks.0.downsample.conv  block{s+1}/unit1/conv_proj
    stages.{s}.blocks.0.downsample.norm  block{s+1}/unit1/gn_proj

The official names inside `encoderblock_{i}` come in two numberings. The 2020 release (pre-Linen
flax) numbered a block's modules with one counter: `LayerNorm_0, MultiHeadDotProductAttention_1,
LayerNorm_2, MlpBlock_3`; Linen (today's `vit_jax/models_vit.py`, big_vision) numbers each module
type on its own: `LayerNorm_0, MultiHeadDotProductAttention_0, LayerNorm_1, MlpBlock_0`. As flax's
`convert_pre_linen` (which the official `checkpoint.load` calls) does, each type's modules are
renumbered in order, so the first LayerNorm is the one before attention under either numbering.

big_vision files (`params/...`) differ further, and are brought to the official layout first:
E_pos at the top (`pos_embedding`) without a class-token row, the class token (pool_type="tok")
appended after E_pos is added (so its row of E_pos here is zero), and with `scan=True` the
blocks stacked along a leading axis under `Transformer/encoderblock/`. MAP-head
(pool_type="map") and fixed sin-cos E_pos (posemb="sincos2d") models are refused.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

import torch
from torch import Tensor

OURS = "vit-replicate"
LAYER = "encoder.layers.{i}."
NPZ_LAYER = "Transformer/encoderblock_{i}/"
NPZ_POSITION_EMBEDDING = "Transformer/posembed_input/pos_embedding"


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
    optional: bool = False  # applies only when the tensors are there (class token, pre-logits)

    def for_layer(self, i: int) -> Rule:
        return self.at(i=i)

    def at(self, **indices: int) -> Rule:
        """The rule with `{i}`, `{s}`, `{u}` ... filled in."""
        return replace(
            self,
            ours=self.ours.format(**indices),
            theirs=tuple(k.format(**indices) for k in self.theirs),
        )


def _linear(
    ours: str, theirs: str, *, weight_is_kernel: bool = False, optional: bool = False
) -> list[Rule]:
    """A dense layer: weight + bias. JAX kernels are (in, out), PyTorch weights (out, in)."""
    if weight_is_kernel:
        return [
            Rule(f"{ours}.weight", (f"{theirs}/kernel",), _transpose, _transpose_back, optional),
            Rule(f"{ours}.bias", (f"{theirs}/bias",), optional=optional),
        ]
    return [Rule(f"{ours}.{p}", (f"{theirs}.{p}",), optional=optional) for p in ("weight", "bias")]


def _norm(
    ours: str,
    theirs: str,
    *,
    jax: bool = False,
    to_ours: Callable[..., Tensor] = _same,
    optional: bool = False,
) -> list[Rule]:
    if jax:
        return [
            Rule(f"{ours}.weight", (f"{theirs}/scale",), to_ours, optional=optional),
            Rule(f"{ours}.bias", (f"{theirs}/bias",), to_ours, optional=optional),
        ]
    return _linear(ours, theirs, optional=optional)  # weight + bias, same names


def _conv_from_jax(kernel: Tensor) -> Tensor:
    return kernel.permute(3, 2, 0, 1)  # (kh, kw, C_in, C_out) -> (C_out, C_in, kh, kw)


def _conv_to_jax(weight: Tensor) -> tuple[Tensor, ...]:
    return (weight.permute(2, 3, 1, 0),)


def _flat(tensor: Tensor) -> Tensor:
    return tensor.reshape(-1)  # flax GroupNorm params were (1, 1, 1, C) before flax 0.3.6


@dataclass(frozen=True)
class ResNetRules:
    """A hybrid's ResNet: the root, every bottleneck unit, and the projection shortcut of each
    stage's first unit. `{s}` and `{u}` number stages and units from 0, `{s1}` and `{u1}` from 1.
    """

    root: tuple[Rule, ...]
    unit: tuple[Rule, ...]
    projection: tuple[Rule, ...]

    def rules(self, units: list[tuple[int, int]]) -> list[Rule]:
        per_unit = [
            r.at(s=s, u=u, s1=s + 1, u1=u + 1)
            for s, u in units
            for r in (*self.unit, *(self.projection if u == 0 else ()))
        ]
        return [*self.root, *per_unit] if units else []

    def units(self, keys: Iterable[str], ours: bool) -> list[tuple[int, int]]:
        """(stage, unit), from 0, of every bottleneck unit whose first tensor is in `keys`."""
        marker = self.unit[0].ours if ours else self.unit[0].theirs[0]
        pattern = re.escape(marker)
        for name in ("s1", "u1", "s", "u"):
            pattern = pattern.replace(re.escape(f"{{{name}}}"), rf"(?P<{name}>\d+)")
        found = []
        for key in keys:
            if match := re.fullmatch(pattern, key):
                # {s1} and {u1} count from 1: "s1" -> "s", minus 1
                n = {k.rstrip("1"): int(v) - k.endswith("1") for k, v in match.groupdict().items()}
                found.append((n["s"], n["u"]))
        return sorted(found)


# A hybrid's ResNet, part by part: (our name, which is timm's; the official name).
_RESNET_NAMES = {
    "root": (("stem.conv", "conv_root"), ("stem.norm", "gn_root")),
    "unit": tuple(
        pair for r in (1, 2, 3) for pair in ((f"conv{r}", f"conv{r}"), (f"norm{r}", f"gn{r}"))
    ),
    "projection": (("downsample.conv", "conv_proj"), ("downsample.norm", "gn_proj")),
}
RESNET = "embedding.backbone."
RESNET_UNIT = "stages.{s}.blocks.{u}."


def _timm_resnet_rules(prefix: str) -> ResNetRules:
    """The same names under another prefix; convolutions have no bias."""

    def rules(part: str) -> tuple[Rule, ...]:
        at = "" if part == "root" else RESNET_UNIT
        return tuple(
            Rule(f"{RESNET}{at}{name}.{p}", (f"{prefix}{at}{name}.{p}",))
            for name, _ in _RESNET_NAMES[part]
            for p in (("weight",) if "conv" in name else ("weight", "bias"))
        )

    return ResNetRules(rules("root"), rules("unit"), rules("projection"))


def _npz_resnet_rules() -> ResNetRules:
    """`models_resnet.py`: StdConv kernels (kh, kw, C_in, C_out), GroupNorm scale and bias."""

    def rules(part: str) -> tuple[Rule, ...]:
        at, npz_at = ("", "") if part == "root" else (RESNET_UNIT, "block{s1}/unit{u1}/")
        made: list[Rule] = []
        for name, official in _RESNET_NAMES[part]:
            ours, theirs = f"{RESNET}{at}{name}", f"{npz_at}{official}"
            if "conv" in name:
                made.append(
                    Rule(f"{ours}.weight", (f"{theirs}/kernel",), _conv_from_jax, _conv_to_jax)
                )
            else:
                made += _norm(ours, theirs, jax=True, to_ours=_flat)
        return tuple(made)

    return ResNetRules(rules("root"), rules("unit"), rules("projection"))


@dataclass(frozen=True)
class Layout:
    name: str
    marker: str  # a key only this layout has, used to detect it
    layer_marker: str  # a per-layer key, to count the layers
    model_rules: tuple[Rule, ...]
    layer_rules: tuple[Rule, ...]
    resnet: ResNetRules | None = None  # a hybrid's ResNet, where the layout has hybrids

    def rules(self, depth: int, units: list[tuple[int, int]] | None = None) -> list[Rule]:
        """units: the (stage, unit) pairs of a hybrid's ResNet."""
        layers = [r.for_layer(i) for i in range(depth) for r in self.layer_rules]
        resnet = self.resnet.rules(units) if self.resnet and units else []
        return [*self.model_rules, *resnet, *layers]

    def depth(self, state: dict[str, Tensor]) -> int:
        pattern = re.compile(re.escape(self.layer_marker).replace(r"\{i\}", r"(\d+)") + "$")
        return sum(1 for k in state if pattern.match(k))


TIMM = Layout(
    name="timm",
    marker="patch_embed.proj.weight",
    layer_marker="blocks.{i}.attn.qkv.weight",
    model_rules=(
        *_linear("embedding.projection", "patch_embed.proj"),
        Rule("embedding.class_token", ("cls_token",), optional=True),
        Rule("embedding.position_embedding", ("pos_embed",)),
        *_norm("head.norm", "norm", optional=True),  # LN on every token (class token, GAP)
        *_norm("head.fc_norm", "fc_norm", optional=True),  # LN after the mean (timm's GAP)
        *_linear("head.pre_logits.0", "pre_logits.fc", optional=True),
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
    resnet=_timm_resnet_rules("patch_embed.backbone."),
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
        *_linear("head.pre_logits.0", "heads.pre_logits", optional=True),
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
)


# The official checkpoints split heads: q/k/v kernels are (D, heads, D_h), out is (heads, D_h, D).
def _qkv_from_jax(q: Tensor, k: Tensor, v: Tensor) -> Tensor:
    """Three (D, heads, D_h) kernels -> one fused (3D, D) weight, laid out [q; k; v]."""
    return torch.cat([t.reshape(t.shape[0], -1).T for t in (q, k, v)])


def _qkv_bias_from_jax(q: Tensor, k: Tensor, v: Tensor) -> Tensor:
    return torch.cat([t.reshape(-1) for t in (q, k, v)])


# A block's modules by role, under each numbering (see the module docstring).
NPZ_NAMINGS: dict[str, dict[str, str]] = {
    "linen": dict(
        norm1="LayerNorm_0",
        attention="MultiHeadDotProductAttention_0",
        norm2="LayerNorm_1",
        mlp="MlpBlock_0",
    ),
    "2020": dict(
        norm1="LayerNorm_0",
        attention="MultiHeadDotProductAttention_1",
        norm2="LayerNorm_2",
        mlp="MlpBlock_3",
    ),
}


def _npz_rules(num_heads: int, naming: str) -> tuple[tuple[Rule, ...], tuple[Rule, ...]]:
    def qkv_to_jax(w: Tensor) -> tuple[Tensor, ...]:
        return tuple(t.T.reshape(t.shape[1], num_heads, -1) for t in w.chunk(3))

    def qkv_bias_to_jax(b: Tensor) -> tuple[Tensor, ...]:
        return tuple(t.reshape(num_heads, -1) for t in b.chunk(3))

    names = NPZ_NAMINGS[naming]
    attn = NPZ_LAYER + names["attention"] + "/"
    mlp = NPZ_LAYER + names["mlp"] + "/"
    qkv = tuple(attn + f"{n}/kernel" for n in ("query", "key", "value"))
    qkv_bias = tuple(attn + f"{n}/bias" for n in ("query", "key", "value"))
    model_rules = (
        Rule("embedding.projection.weight", ("embedding/kernel",), _conv_from_jax, _conv_to_jax),
        Rule("embedding.projection.bias", ("embedding/bias",)),
        Rule("embedding.class_token", ("cls",), optional=True),
        Rule("embedding.position_embedding", (NPZ_POSITION_EMBEDDING,)),
        *_norm("head.norm", "Transformer/encoder_norm", jax=True),
        *_linear("head.pre_logits.0", "pre_logits", weight_is_kernel=True, optional=True),
        *_linear("head.classifier", "head", weight_is_kernel=True),
    )
    layer_rules = (
        *_norm(LAYER + "norm1", NPZ_LAYER + names["norm1"], jax=True),
        Rule(LAYER + "attention.qkv.weight", qkv, _qkv_from_jax, qkv_to_jax),
        Rule(LAYER + "attention.qkv.bias", qkv_bias, _qkv_bias_from_jax, qkv_bias_to_jax),
        Rule(
            LAYER + "attention.proj.weight",
            (attn + "out/kernel",),
            lambda k: k.reshape(-1, k.shape[-1]).T,  # (heads, D_h, D) -> (D, heads * D_h)
            lambda w: (w.T.reshape(num_heads, -1, w.shape[0]),),
        ),
        Rule(LAYER + "attention.proj.bias", (attn + "out/bias",)),
        *_norm(LAYER + "norm2", NPZ_LAYER + names["norm2"], jax=True),
        *_linear(LAYER + "mlp.fc1", mlp + "Dense_0", weight_is_kernel=True),
        *_linear(LAYER + "mlp.fc2", mlp + "Dense_1", weight_is_kernel=True),
    )
    return model_rules, layer_rules


def npz_layout(num_heads: int, naming: str = "2020") -> Layout:
    """The official layout; `naming` is the block numbering written ("2020", as the released
    files and timm's .npz reader have it, or "linen"), while reading accepts both. Converting
    back to it needs the number of heads."""
    model_rules, layer_rules = _npz_rules(num_heads, naming)
    return Layout(
        name="npz",
        marker="embedding/kernel",
        layer_marker=NPZ_LAYER + NPZ_NAMINGS[naming]["attention"] + "/query/kernel",
        model_rules=model_rules,
        layer_rules=layer_rules,
        resnet=_npz_resnet_rules(),
    )


# Key spellings other writers use for the same tensors, rewritten before a layout is applied.
_ALIASES = (
    (re.compile(r"^(module|_orig_mod)\."), ""),  # DistributedDataParallel, torch.compile
    (re.compile(r"^(opt/target|params(/img)?)/"), ""),  # flax optimizer, big_vision checkpoints
    (re.compile(r"\.mlp\.linear_1\."), ".mlp.0."),  # torchvision before 0.13
    (re.compile(r"\.mlp\.linear_2\."), ".mlp.3."),
)
_FLAX_MODULE = re.compile(r"^(Transformer/encoderblock_\d+/)([A-Za-z]+)_(\d+)/(.*)$")


# A masked-patch pre-training checkpoint (`vit.masked_patch.MaskedPatchPredictor`): the ViT
# under `vit.`, beside the [mask] embedding and the colour head, which a classifier drops
# (Appendix B.1.1: "we remove the whole head").
PRETRAINING_ONLY = ("corruption.", "colour_head.")


def _drop_pretraining_objective(state: dict[str, Tensor]) -> dict[str, Tensor]:
    if not any(key.startswith(PRETRAINING_ONLY) for key in state):
        return state
    return {
        key.removeprefix("vit."): value
        for key, value in state.items()
        if not key.startswith(PRETRAINING_ONLY)
    }


def _normalise_keys(state: dict[str, Tensor]) -> dict[str, Tensor]:
    normalised = {}
    for key, value in state.items():
        for pattern, repl in _ALIASES:
            key = pattern.sub(repl, key)
        normalised[key] = value
    return normalised


def _unstack_scanned_blocks(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """big_vision's `scan=True`: `Transformer/encoderblock/X` of shape (L, ...) ->
    `Transformer/encoderblock_{i}/X`, as its own `scan_to_pyloop` does."""
    stacked = "Transformer/encoderblock/"
    unstacked = {}
    for key, value in state.items():
        if key.startswith(stacked):
            rest = key.removeprefix(stacked)
            unstacked.update({NPZ_LAYER.format(i=i) + rest: v for i, v in enumerate(value)})
        else:
            unstacked[key] = value
    return unstacked


def _renumber_block_modules(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """flax's `convert_pre_linen`: within each block, each module type numbered 0, 1, ... in the
    order of its old numbers; the 2020 numbering becomes Linen's, Linen's stays as it is."""
    numbers: dict[tuple[str, str], set[int]] = {}
    for key in state:
        if match := _FLAX_MODULE.match(key):
            block, kind, number, _ = match.groups()
            numbers.setdefault((block, kind), set()).add(int(number))
    renumbered = {}
    for key, value in state.items():
        if match := _FLAX_MODULE.match(key):
            block, kind, number, rest = match.groups()
            rank = sorted(numbers[block, kind]).index(int(number))
            key = f"{block}{kind}_{rank}/{rest}"
        renumbered[key] = value
    return renumbered


def _official_position_embedding(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """E_pos where the official layout keeps it, with a class-token row when there is a class
    token; big_vision adds E_pos before it prepends the class token (`fix_old_checkpoints`),
    which is a zero row of E_pos here."""
    state = dict(state)
    for key in ("pos_embedding", "Transformer/pos_embedding"):  # big_vision, then 2021 code
        if key in state:
            state[NPZ_POSITION_EMBEDDING] = state.pop(key)
    if any(k.startswith("MAPHead_") for k in state):
        raise ValueError(
            "a big_vision MAP-head checkpoint (pool_type='map', attention pooling) is not "
            "supported: this ViT pools by class token or by mean (pool='cls' or 'gap')"
        )
    if NPZ_POSITION_EMBEDDING not in state:
        raise ValueError(
            "the checkpoint has no learned position embedding (big_vision posemb='sincos2d'?): "
            "fixed sin-cos position embeddings are not supported"
        )
    pos = state[NPZ_POSITION_EMBEDDING]
    if "cls" in state and math.isqrt(pos.shape[1]) ** 2 == pos.shape[1]:
        state[NPZ_POSITION_EMBEDDING] = torch.cat([pos.new_zeros(1, 1, pos.shape[2]), pos], 1)
    return state


def _flax_flavour(state: dict[str, Tensor]) -> str:
    scanned = any(k.startswith("Transformer/encoderblock/") for k in state)
    return "big_vision" if scanned or "pos_embedding" in state else "npz"


def _to_official_names(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Any flax ViT file (2020 or Linen numbering, big_vision, scanned or not) -> the official
    layout with Linen numbering, which `npz_layout(heads, "linen")` reads."""
    return _official_position_embedding(_renumber_block_modules(_unstack_scanned_blocks(state)))


def detect_layout(state: dict[str, Tensor], num_heads: int) -> Layout | None:
    """The layout of `state`; None when it is already this project's."""
    if "embedding.projection.weight" in state:
        return None
    for layout in (TIMM, TORCHVISION, npz_layout(num_heads, "linen")):
        if layout.marker in state:
            return layout
    sample = ", ".join(sorted(state)[:5])
    raise ValueError(
        f"unrecognised checkpoint layout (first keys: {sample}); expected a ViT state dict "
        "from this project, timm, torchvision, an official .npz or big_vision"
    )


def to_ours(state: dict[str, Tensor], num_heads: int) -> tuple[dict[str, Tensor], str]:
    """Convert a state dict of any known layout to ours; also returns the layout's name
    ("timm", "torchvision", "npz", "big_vision" or "vit-replicate")."""
    state = _drop_pretraining_objective(_normalise_keys(state))
    layout = detect_layout(state, num_heads)
    if layout is None:
        return state, OURS
    name = layout.name
    if name == "npz":
        name = _flax_flavour(state)
        state = _to_official_names(state)
    units = layout.resnet.units(state, ours=False) if layout.resnet else []
    converted, used = {}, set()
    for rule in layout.rules(layout.depth(state), units):
        missing = [k for k in rule.theirs if k not in state]
        if missing and rule.optional:
            continue
        if missing:
            raise ValueError(f"{name} checkpoint lacks {missing[0]!r} (for {rule.ours!r})")
        converted[rule.ours] = rule.to_ours(*(state[k] for k in rule.theirs))
        used.update(rule.theirs)
    unused = sorted(set(state) - used)
    if unused:
        raise ValueError(
            f"{name} checkpoint has {len(unused)} tensor(s) this ViT has no place for, "
            f"e.g. {unused[0]!r}: is it a plain ViT (no register tokens, no layer scale)?"
        )
    return converted, name


def from_ours(state: dict[str, Tensor], layout: Layout) -> dict[str, Tensor]:
    """Convert our state dict to `layout`: the inverse of `to_ours`."""
    depth = sum(1 for k in state if k.endswith("attention.qkv.weight"))
    hybrid = any(k.startswith(RESNET) for k in state)
    if hybrid and layout.resnet is None:
        raise ValueError(f"the {layout.name} layout has no hybrid (ResNet + ViT) models")
    units = layout.resnet.units(state, ours=True) if hybrid else []
    converted = {}
    for rule in layout.rules(depth, units):
        if rule.optional and rule.ours not in state:
            continue
        converted.update(zip(rule.theirs, rule.to_theirs(state[rule.ours]), strict=True))
    return converted
