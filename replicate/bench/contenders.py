"""The implementations timed side by side, all randomly initialised (no downloads) at the same
variant, resolution and number of classes:

    ours          this project's VisionTransformer (`vit.registry`)
    timm          timm's VisionTransformer of the same size
    torchvision   torchvision's vit_b_16 and its siblings (no Ti or S)
    official      the authors' Flax model, google-research/vision_transformer's
                  `vit_jax/models_vit.py`, read from a checkout given with --official-src
                  (never copied here) and jit-compiled, as a JAX user would run it

Each is a `Contender`: it hands out closures that run one training step (forward,
cross-entropy, backward, AdamW) or one inference forward on a fixed synthetic batch, and says
how to wait for the device and how much memory the steps took. One that cannot run here raises
`Unavailable`, and its row in the report says why.
"""

from __future__ import annotations

import gc
import importlib
import os
import sys
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from replicate.errors import Unavailable
from replicate.models import create_model
from replicate.runtime import autocast, float8_training, fused_optimizer
from vit.references import TIMM_NAMES, TORCHVISION_NAMES

if TYPE_CHECKING:
    from replicate.bench.measure import BenchConfig

CONTENDERS = ("ours", "timm", "torchvision", "official")
Step = Callable[[], object]


class Contender(ABC):
    """One implementation, built for one device, precision and compile mode."""

    name: str  # as the report names it, e.g. "timm vit_base_patch16_224"
    params: int

    @abstractmethod
    def train_step(self, batch_size: int) -> Step:
        """A closure running one training step on a fixed batch (its optimiser state lives as
        long as the closure)."""

    @abstractmethod
    def inference_step(self, batch_size: int) -> Step:
        """A closure running one inference forward on a fixed batch."""

    @abstractmethod
    def synchronize(self) -> None:
        """Wait for the work queued on the device."""

    @abstractmethod
    def reset_peak_memory(self) -> None:
        """Start counting the peak memory afresh."""

    @abstractmethod
    def peak_memory(self) -> int | None:
        """Bytes at the peak since the last reset; None where it is not measured."""

    def largest_training_batch(self, start: int) -> int:
        raise Unavailable(f"{self.name}: the largest batch is searched for PyTorch models only")

    @abstractmethod
    def close(self) -> None:
        """Let go of the device memory and compiled code, before the next contender runs."""


def build_contender(
    kind: str, config: BenchConfig, device: torch.device, precision: str
) -> Contender:
    """Contender `kind` of `config.variant`; raises Unavailable when it cannot run here."""
    if kind == "official":
        return OfficialFlax(config, device, precision)
    with device:  # initialise on the device: seconds, not minutes, for ViT-H
        model = _torch_model(kind, config)
    return TorchContender(label(kind, config.variant), model, config, device, precision)


def label(kind: str, variant: str) -> str:
    """How a contender is named in the report, e.g. "timm vit_base_patch16_224"."""
    names = {
        "ours": {variant: variant},
        "timm": TIMM_NAMES,
        "torchvision": TORCHVISION_NAMES,
        "official": {variant: "vit_jax (Flax, jit)"},
    }
    name = names[kind].get(variant)
    return f"{kind} {name}" if name else kind


def _torch_model(kind: str, config: BenchConfig) -> nn.Module:
    variant, size, classes = config.variant, config.image_size, config.num_classes
    if kind == "ours":
        return create_model(variant, num_classes=classes, image_size=size, **config.model_overrides)
    if kind == "timm":
        if variant not in TIMM_NAMES:
            raise Unavailable(f"timm has no equivalent of {variant}")
        import timm

        return timm.create_model(
            TIMM_NAMES[variant],
            pretrained=False,
            img_size=size,
            num_classes=classes,
            **timm_arguments(config.model_overrides),
        )
    if config.model_overrides:
        raise Unavailable("--model-arg changes our model and timm's only")
    if kind == "torchvision":
        if variant not in TORCHVISION_NAMES:
            raise Unavailable(f"torchvision has no equivalent of {variant}")
        if config.grad_checkpointing:
            raise Unavailable("torchvision's ViT has no gradient checkpointing")
        import torchvision

        return torchvision.models.get_model(
            TORCHVISION_NAMES[variant], weights=None, image_size=size, num_classes=classes
        )
    raise ValueError(f"unknown contender {kind!r}; choose from {', '.join(CONTENDERS)}")


# Our ViT config fields as timm's VisionTransformer arguments, so that timm's model is the same
# network: (timm's name, the value from ours).
_TIMM_FIELDS = {
    "patch_size": ("patch_size", lambda v, _: v),
    "depth": ("depth", lambda v, _: v),
    "hidden_size": ("embed_dim", lambda v, _: v),
    "num_heads": ("num_heads", lambda v, _: v),
    "mlp_size": ("mlp_ratio", lambda v, o: v / o.get("hidden_size", v)),
}


def timm_arguments(overrides: dict) -> dict:
    """timm's arguments for our overrides; dropout as timm places it (after E_pos and after
    each dense layer but qkv: pos_drop_rate and proj_drop_rate)."""
    arguments = {}
    for key, value in overrides.items():
        if key == "dropout":
            arguments |= {"pos_drop_rate": value, "proj_drop_rate": value}
        elif key == "mlp_size" and "hidden_size" not in overrides:
            raise Unavailable("timm takes mlp_ratio: give hidden_size with mlp_size")
        elif key in _TIMM_FIELDS:
            name, convert = _TIMM_FIELDS[key]
            arguments[name] = convert(value, overrides)
        else:
            raise Unavailable(f"timm's ViT has no equivalent of --model-arg {key}")
    return arguments


class TorchContender(Contender):
    """A PyTorch model under autocast with the trainer's fused AdamW, optionally
    torch.compile'd, float8 (torchao) or with gradient checkpointing."""

    def __init__(
        self,
        name: str,
        model: nn.Module,
        config: BenchConfig,
        device: torch.device,
        precision: str,
    ) -> None:
        self.name, self.model, self.device, self.precision = name, model, device, precision
        self.image_size, self.num_classes = config.image_size, config.num_classes
        self.params = sum(p.numel() for p in model.parameters())
        if config.grad_checkpointing:
            model.set_grad_checkpointing(True)  # ours and timm's share timm's interface
        if precision == "fp8":
            float8_training(model)
        self.forward = compiled(model, config.compile_mode) if config.compile_mode else model

    def train_step(self, batch_size: int) -> Step:
        return self._train_step(self.forward, batch_size)

    def _train_step(self, forward: Callable, batch_size: int) -> Step:
        images, labels = self._batch(batch_size)
        self.model.train()
        optimizer = torch.optim.AdamW(
            self.model.parameters(), lr=1e-4, fused=fused_optimizer(self.device)
        )

        def step() -> None:
            with autocast(self.device, self.precision):
                loss = F.cross_entropy(forward(images), labels)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

        return step

    def inference_step(self, batch_size: int) -> Step:
        images, _ = self._batch(batch_size)
        self.model.eval()

        def step() -> None:
            with torch.inference_mode(), autocast(self.device, self.precision):
                self.forward(images)

        return step

    def _batch(self, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Random images and labels, the same for every model at a given batch size."""
        generator = torch.Generator(self.device).manual_seed(0)
        size, device = self.image_size, self.device
        images = torch.randn(batch_size, 3, size, size, device=device, generator=generator)
        labels = torch.randint(self.num_classes, (batch_size,), device=device, generator=generator)
        return images, labels

    def synchronize(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def reset_peak_memory(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)

    def peak_memory(self) -> int | None:
        """torch.cuda.max_memory_allocated: what the tensors took, not the allocator's cache."""
        return torch.cuda.max_memory_allocated(self.device) if self.device.type == "cuda" else None

    def largest_training_batch(self, start: int) -> int:
        """The largest batch for which two eager training steps run without running out of
        memory: the first allocates AdamW's state, the second runs at steady-state memory.
        Eager, as a compiled model would recompile for every batch size; compiled training
        usually needs less memory than eager, so the eager maximum fits it too."""
        if self.device.type != "cuda":
            raise ValueError(
                "finding the largest batch needs a GPU: on a CPU, running out of memory kills the "
                "process (or swaps) instead of raising"
            )

        def fits(batch_size: int) -> bool:
            try:
                step = self._train_step(self.model, batch_size)
                step()
                step()
                self.synchronize()
                fitted = True
            except torch.cuda.OutOfMemoryError:
                fitted = False
            step = None  # drops the optimiser state before the next probe
            self.model.zero_grad(set_to_none=True)
            release_memory(self.device)
            print(f"  batch {batch_size}: {'fits' if fitted else 'out of memory'}", flush=True)
            return fitted

        return largest_fitting(fits, start)

    def close(self) -> None:
        self.model = self.forward = None
        torch._dynamo.reset()  # drop compiled graphs, and the memory they hold on to
        release_memory(self.device)


def compiled(model: nn.Module, mode: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """`torch.compile(model, mode=mode)`, marking each call as a new step for the CUDA-graph
    modes ("reduce-overhead", "max-autotune"), which otherwise reuse the previous step's outputs."""
    compiled_model = torch.compile(model, mode=mode)

    def forward(images: torch.Tensor) -> torch.Tensor:
        torch.compiler.cudagraph_mark_step_begin()
        return compiled_model(images)

    return forward


def release_memory(device: torch.device) -> None:
    """Return freed blocks to the device, so the next model starts from a clean allocator."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


class OfficialFlax(Contender):
    """google-research/vision_transformer's `models_vit.VisionTransformer`, the code behind the
    paper's numbers. Mixed precision the JAX way: fp32 master weights cast to bf16 inside the
    jit-compiled step (gradients flow back through the cast), the loss in fp32; optax.adamw.
    Images are NHWC, as Flax's convolution takes them. Peak memory is not measured (XLA keeps
    its own allocator)."""

    def __init__(self, config: BenchConfig, device: torch.device, precision: str) -> None:
        if precision == "fp8":
            raise Unavailable("the official model has no float8 path")
        if config.grad_checkpointing:
            raise Unavailable("the official model has no gradient checkpointing switch")
        if config.model_overrides:
            raise Unavailable("--model-arg changes our model only")
        # Share the GPU with PyTorch: by default XLA takes 75% of its memory up front.
        os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
        try:
            import flax  # noqa: F401  (the official model's)
            import jax
            import jax.numpy as jnp
            import optax
        except ImportError as error:
            raise Unavailable("JAX, flax and optax are not installed") from error
        models_vit = _import_official(config.official_src)
        platform = "gpu" if device.type == "cuda" else "cpu"
        try:
            self.device = jax.devices(platform)[0]
        except RuntimeError as error:
            raise Unavailable(f"JAX sees no {platform} here ({error})") from error
        self.jax, self.jnp, self.optax = jax, jnp, optax
        self.dtype = jnp.bfloat16 if precision == "bf16" else jnp.float32
        self.image_size, self.num_classes = config.image_size, config.num_classes
        with torch.device("meta"):  # our model's Table 1 sizes, no weights allocated
            ours = create_model(config.variant, num_classes=config.num_classes).config
        self.model = models_vit.VisionTransformer(
            num_classes=config.num_classes,
            patches=SimpleNamespace(size=(ours.patch_size, ours.patch_size)),
            transformer=dict(
                num_layers=ours.depth,
                mlp_dim=ours.mlp_size,
                num_heads=ours.num_heads,
                dropout_rate=0.0,  # as the PyTorch contenders, built without dropout
                attention_dropout_rate=0.0,
            ),
            hidden_size=ours.hidden_size,
            classifier="token",
        )
        self.name = label("official", config.variant)
        images, _ = self._batch(1)
        self.weights = jax.jit(self.model.init, static_argnames="train")(
            jax.random.PRNGKey(0), images, train=False
        )["params"]
        self.params = sum(p.size for p in jax.tree_util.tree_leaves(self.weights))
        self.last = None  # the latest step's outputs, to wait for

    def _batch(self, batch_size: int):
        key_images, key_labels = self.jax.random.split(self.jax.random.PRNGKey(0))
        shape = (batch_size, self.image_size, self.image_size, 3)
        with self.jax.default_device(self.device):
            images = self.jax.random.normal(key_images, shape)
            labels = self.jax.random.randint(key_labels, (batch_size,), 0, self.num_classes)
        return images, labels

    def _logits(self, params, images, train: bool):
        cast = self.jax.tree_util.tree_map(lambda p: p.astype(self.dtype), params)
        logits = self.model.apply({"params": cast}, images.astype(self.dtype), train=train)
        return logits.astype(self.jnp.float32)

    def train_step(self, batch_size: int) -> Step:
        jax, optax = self.jax, self.optax
        images, labels = self._batch(batch_size)
        optimizer = optax.adamw(1e-4)

        def loss(params, images, labels):
            logits = self._logits(params, images, train=True)
            return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

        @jax.jit
        def update(params, state, images, labels):
            value, grads = jax.value_and_grad(loss)(params, images, labels)
            updates, state = optimizer.update(grads, state, params)
            return optax.apply_updates(params, updates), state, value

        state = [self.weights, optimizer.init(self.weights)]

        def step() -> None:
            state[0], state[1], self.last = update(*state, images, labels)

        return step

    def inference_step(self, batch_size: int) -> Step:
        images, _ = self._batch(batch_size)
        forward = self.jax.jit(lambda params, images: self._logits(params, images, train=False))

        def step() -> None:
            self.last = forward(self.weights, images)

        return step

    def synchronize(self) -> None:
        if self.last is not None:
            self.jax.block_until_ready(self.last)

    def reset_peak_memory(self) -> None:
        pass

    def peak_memory(self) -> None:
        return None

    def close(self) -> None:
        self.weights = self.last = None
        self.jax.clear_caches()


def _import_official(src: Path | None):
    """`vit_jax.models_vit` from a checkout of google-research/vision_transformer."""
    if src is None:
        raise Unavailable(
            "needs a checkout of google-research/vision_transformer: --official-src PATH"
        )
    if not (Path(src) / "vit_jax" / "models_vit.py").is_file():
        raise Unavailable(f"{src} holds no vit_jax/models_vit.py")
    sys.path.insert(0, str(Path(src).resolve()))
    try:
        return importlib.import_module("vit_jax.models_vit")
    finally:
        sys.path.pop(0)


def largest_fitting(
    fits: Callable[[int], bool], start: int, granularity: int = 8, limit: int = 1 << 16
) -> int:
    """The largest batch b with fits(b), to within `granularity` (or exactly, below it),
    assuming fits is monotone: every batch below a fitting one fits. Doubles from `start`
    until one does not fit (or halves until one does), then bisects."""
    lo, hi = start, None  # invariant: fits(lo); hi is None or not fits(hi)
    if not fits(start):
        hi, lo = start, start // 2
        while lo >= 1 and not fits(lo):
            hi, lo = lo, lo // 2
        if lo < 1:
            raise RuntimeError("not even a batch of 1 fits in memory")
    else:
        while lo * 2 <= limit and fits(lo * 2):
            lo *= 2
        if lo * 2 > limit:
            return lo
        hi = lo * 2
    while hi - lo > granularity:
        middle = (lo + hi) // 2
        rounded = middle // granularity * granularity  # tensor-core friendly when it can be
        middle = rounded if rounded > lo else middle
        lo, hi = (middle, hi) if fits(middle) else (lo, middle)
    return lo
