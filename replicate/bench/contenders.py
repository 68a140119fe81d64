"""The implementations timed side by side, all randomly initialised (no downloads) at the same
variant, resolution and number of classes:

    ours          this project's VisionTransformer (`vit.registry`)
    timm          timm's VisionTransformer of the same size
    torchvision   torchvision's vit_b_16 and its siblings (no Ti or S)

Each is a `Contender`. One that cannot run here raises `Unavailable`, and its row in the report
says why.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from replicate.errors import Unavailable
from replicate.models import create_model
from replicate.runtime import autocast, float8_training, fused_optimizer, synchronize
from vit.references import TIMM_NAMES, TORCHVISION_NAMES

CONTENDERS = ("ours", "timm", "torchvision")
Step = Callable[[], object]


@dataclass(frozen=True)
class BenchConfig:
    variant: str = "vit_b16"  # a registered ViT: vit_ti16, vit_s16, vit_b16, ..., vit_h14
    models: tuple[str, ...] = CONTENDERS  # implementations to time, in this order
    batch_size: int = 256  # per step
    image_size: int = 224
    num_classes: int = 1000
    precision: str | None = None  # "bf16" autocast, "fp32" or "fp8"; None: bf16 on CUDA
    compile_mode: str | None = None  # a torch.compile mode ("default", "max-autotune"); None: eager
    warmup: int = 5  # untimed steps first: compilation, autotuning, allocator warm-up
    steps: int = 20  # steps per timed block
    repeats: int = 5  # timed blocks; the median is reported
    grad_checkpointing: bool = False  # recompute the encoder's activations in the backward
    device: str | None = None  # None: cuda when available, else cpu
    train: bool = True  # time training steps (inference is always timed)
    model_overrides: dict = field(default_factory=dict)  # create_model(**) for ours alone


def build_contender(
    kind: str, config: BenchConfig, device: torch.device, precision: str
) -> Contender:
    """Contender `kind` of `config.variant`; raises Unavailable when it cannot run here."""
    with device:  # initialise on the device: seconds, not minutes, for ViT-H
        model = _torch_model(kind, config)
    return Contender(label(kind, config.variant), model, config, device, precision)


def label(kind: str, variant: str) -> str:
    """How a contender is named in the report, e.g. "timm vit_base_patch16_224"."""
    names = {
        "ours": {variant: variant},
        "timm": TIMM_NAMES,
        "torchvision": TORCHVISION_NAMES,
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


class Contender:
    """One implementation, built for one device, precision and compile mode: a PyTorch model
    under autocast with the trainer's fused AdamW, optionally torch.compile'd, float8 (torchao)
    or with gradient checkpointing. It hands out closures that each run one step on a fixed
    synthetic batch, and lets go of its memory on `close`."""

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
        """One training step (forward, cross-entropy, backward, AdamW); its optimiser state
        lives as long as the closure."""
        images, labels = self._batch(batch_size)
        self.model.train()
        optimizer = torch.optim.AdamW(
            self.model.parameters(), lr=1e-4, fused=fused_optimizer(self.device)
        )

        def step() -> None:
            with autocast(self.device, self.precision):
                loss = F.cross_entropy(self.forward(images), labels)
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
        synchronize(self.device)

    def reset_peak_memory(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)

    def peak_memory(self) -> int | None:
        """torch.cuda.max_memory_allocated: what the tensors took, not the allocator's cache."""
        return torch.cuda.max_memory_allocated(self.device) if self.device.type == "cuda" else None

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
