"""The figures: a model and images in, a PNG out, one function per figure of the paper."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from einops import rearrange

from replicate.figures import plots
from replicate.figures.attention_distance import attention_measures, patch_distances
from replicate.figures.embeddings import (
    filter_principal_components,
    position_similarity,
    position_structure,
    row_column_structure,
)
from replicate.figures.images import ImageSet
from replicate.figures.rollout import attention_rollout, output_token_maps, upsample_maps
from replicate.runs.files import write_json
from replicate.runs.read import Run
from replicate.sources import Source, untrained_twin

FIGURE_1 = "fig1_patch_embedding.png"
FIGURE_7_LEFT = "fig7_left_embedding_filters.png"
FIGURE_7_CENTRE = "fig7_centre_position_similarity.png"
FIGURE_7_CENTRE_NUMBERS = "fig7_centre_position_similarity.json"  # its structure, as numbers
FIGURE_7_RIGHT = "fig7_right_attention_distance.png"
FIGURE_7_RIGHT_NUMBERS = "fig7_right_attention_distance.json"  # what the figure draws, and more
FIGURE_6 = "fig6_attention_rollout.png"
TRAINING_CURVES = "training_curves.png"


class FigureNotApplicable(ValueError):
    """The figure has no meaning for this model (e.g. RGB patch filters of a hybrid)."""


def _require_pixel_patches(subject: Source, figure: str) -> None:
    """Figures 1 and 7 left show E acting on RGB pixel patches, which a hybrid does not have."""
    config = subject.model.config
    if config.resnet_layers:
        raise FigureNotApplicable(
            f"{figure} shows E on RGB pixel patches, but {subject.label} is a hybrid: its E "
            f"projects 1x1 cells of a ResNet feature map ({config.downsampling}x downsampled, "
            f"{subject.model.embedding.projection.in_channels} channels), so it has no RGB patch "
            "filters to draw (Section 3.1)"
        )


def _as_hwc(images: torch.Tensor) -> np.ndarray:
    return rearrange(images, "... c h w -> ... h w c").numpy()


@torch.no_grad()
def figure_1(subject: Source, images: ImageSet, out: Path) -> Path:
    """Figure 1 in pictures, on the first image: patches, sequence, patch embedding."""
    _require_pixel_patches(subject, "Figure 1")
    image = images.normalised(subject.mean, subject.std)[:1]
    grid = subject.model.config.grid_size
    x_p_E = subject.model.embedding.embed_patches(image)[0]  # Eq. 1's x_p E, (N, D)
    embedding = rearrange(x_p_E, "(gh gw) d -> d gh gw", gh=grid)  # on the patch grid
    return plots.draw_patch_embedding(
        _as_hwc(images.images[0]),
        subject.model.config.patch_size,
        embedding.numpy(),
        out / FIGURE_1,
        f"Figure 1, the patch embedding in pictures: {subject.label}; {images.label}",
    )


def figure_7_filters(subject: Source, out: Path, num_components: int = 28) -> Path:
    """Figure 7 left: the top principal components of the patch-embedding filters E."""
    _require_pixel_patches(subject, "Figure 7 left (RGB embedding filters)")
    weight = subject.model.embedding.projection.weight
    components, explained = filter_principal_components(weight, num_components)
    return plots.draw_embedding_filters(components, explained, out / FIGURE_7_LEFT, subject.label)


def figure_7_position_similarity(subject: Source, out: Path) -> list[Path]:
    """Figure 7 centre: cosine similarity between the position embeddings E_pos; beside it,
    how much of the grid they encode, for the model and (where it is trained) its untrained
    twin, the control."""
    record = {}
    for name, source in with_control(subject).items():
        similarity = _position_similarity(source)
        structure = position_structure(similarity)
        record[name] = {"label": source.label, "neighbours_minus_distant": structure,
                        **row_column_structure(similarity)}  # fmt: skip
    numbers = out / FIGURE_7_CENTRE_NUMBERS
    write_json(numbers, record)
    figure = plots.draw_position_similarity(
        _position_similarity(subject), out / FIGURE_7_CENTRE, subject.label
    )
    return [figure, numbers]


def with_control(subject: Source) -> dict[str, Source]:
    """{"model": subject}, and where it is trained {"control": its untrained twin}: the one
    twin both Figure 7 measures use."""
    if not subject.trained:
        return {"model": subject}
    return {"model": subject, "control": untrained_twin(subject)}


def _position_similarity(subject: Source) -> np.ndarray:
    model = subject.model
    return position_similarity(
        model.embedding.position_embedding, class_token=model.config.has_class_token
    )


def figure_7_attention_distance(
    subject: Source, images: ImageSet, out: Path, batch_size: int = 8
) -> list[Path]:
    """Figure 7 right (and Figure 11): mean attention distance of every head by depth, a trained
    model's beside its untrained twin's (the control: random weights attend at a distance too).
    Beside the PNG, its numbers: each head's distance and entropy for every image (for paired
    intervals), for the model and, where it is trained, for the control."""
    config = subject.model.config
    record: dict = {
        "uniform_px": patch_distances(config.grid_size, config.downsampling).mean().item(),
        "uniform_entropy": float(np.log(config.grid_size**2)),
        "images": images.label,
    }
    for name, source in with_control(subject).items():
        distance, entropy = attention_measures(
            source.model, images.batches(source.mean, source.std, batch_size), len(images.images)
        )  # each (images, L, heads)
        record[name] = {
            "label": source.label,
            "by_layer_px": distance.mean(dim=0).tolist(),  # (L, heads): what the figure draws
            "by_layer_entropy": entropy.mean(dim=0).tolist(),
            "per_image_px": _rounded(distance),  # 0.001 px and nats: a quarter of the bytes
            "per_image_entropy": _rounded(entropy),
        }
    numbers = out / FIGURE_7_RIGHT_NUMBERS
    write_json(numbers, record, indent=None)  # one line: a number per image, layer and head
    title = (
        f"Mean attention distance by head and depth ({config.image_size}x{config.image_size} "
        f"input)\n{subject.label}; {images.label}"
    )
    control = record.get("control")
    figure = plots.draw_attention_distance(
        np.array(record["model"]["by_layer_px"]), out / FIGURE_7_RIGHT, title,
        record["uniform_px"], np.array(control["by_layer_px"]) if control else None,
    )  # fmt: skip
    return [figure, numbers]


def _rounded(values: torch.Tensor) -> list:
    return np.round(values.double().numpy(), 3).tolist()


@torch.no_grad()
def figure_6_rollout(subject: Source, images: ImageSet, out: Path, num_images: int = 4) -> Path:
    """Figure 6: attention from the output token to the input space, by attention rollout, on
    `num_images` spread over the set (over its classes, for a sorted image folder)."""
    chosen = np.unique(np.linspace(0, len(images.images) - 1, num_images).round().astype(int))
    shown = images.images[chosen]
    inputs = images.normalised(subject.mean, subject.std)[chosen]
    true = [images.classes[i] for i in chosen] if images.classes else None
    rollout = attention_rollout(subject.model.attention_maps(inputs))
    config = subject.model.config
    maps = output_token_maps(rollout, class_token=config.has_class_token)
    maps = upsample_maps(maps, config.image_size)
    title = f"Figure 6, attention rollout (Abnar & Zuidema 2020)\n{subject.label}; {images.label}"
    return plots.draw_rollout(
        _as_hwc(shown), maps.numpy(), out / FIGURE_6, title, _captions(subject, inputs, true)
    )


def _captions(subject: Source, inputs: torch.Tensor, true: list[str] | None) -> list[str] | None:
    """ "true: bees\npredicted: bees (87%)" per image, as far as the classes are known."""
    predicted = None
    if subject.classes:
        best, index = subject.model(inputs).softmax(dim=-1).max(dim=-1)
        predicted = [f"predicted: {subject.classes[i]} ({100 * p:.0f}%)"
                     for p, i in zip(best.tolist(), index.tolist(), strict=True)]  # fmt: skip
    if true is None:
        return predicted
    true = [f"true: {name}" for name in true]
    return [f"{t}\n{p}" for t, p in zip(true, predicted, strict=True)] if predicted else true


def training_curves(runs: list[Run], out: Path, source: str) -> Path:
    """Train and test loss and accuracy per epoch of every run, on one figure."""
    title = f"Training curves: {len(runs)} run{'s' * (len(runs) != 1)} from {source}"
    return plots.draw_training_curves(runs, out / TRAINING_CURVES, title)
