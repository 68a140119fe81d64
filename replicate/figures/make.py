"""The figures: a model and images in, a PNG out, one function per figure of the paper."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from einops import rearrange

from replicate.figures import plots
from replicate.figures.attention_distance import attention_distances, patch_distances
from replicate.figures.embeddings import filter_principal_components, position_similarity
from replicate.figures.images import ImageSet
from replicate.figures.rollout import attention_rollout, output_token_maps, upsample_maps
from replicate.runs.files import write_json
from replicate.runs.read import Run
from replicate.sources import Source

FIGURE_1 = "fig1_patch_embedding.png"
FIGURE_7_LEFT = "fig7_left_embedding_filters.png"
FIGURE_7_CENTRE = "fig7_centre_position_similarity.png"
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


def figure_7_position_similarity(subject: Source, out: Path) -> Path:
    """Figure 7 centre: cosine similarity between the position embeddings E_pos."""
    model = subject.model
    similarity = position_similarity(
        model.embedding.position_embedding, class_token=model.config.has_class_token
    )
    return plots.draw_position_similarity(similarity, out / FIGURE_7_CENTRE, subject.label)


def figure_7_attention_distance(
    subject: Source, images: ImageSet, out: Path, batch_size: int = 8
) -> list[Path]:
    """Figure 7 right (and Figure 11): mean attention distance of every head by depth; beside
    the PNG, its numbers and each image's mean over the heads by depth (for intervals)."""
    config = subject.model.config
    per_image = attention_distances(
        subject.model, images.batches(subject.mean, subject.std, batch_size), len(images.images)
    )
    distances = per_image.mean(dim=0)  # (L, heads)
    uniform = patch_distances(config.grid_size, config.downsampling).mean().item()
    numbers = out / FIGURE_7_RIGHT_NUMBERS
    write_json(
        numbers,
        {
            "uniform_px": uniform,
            "by_layer_px": distances.tolist(),  # (L, heads), averaged over the images
            "per_image_px": per_image.mean(dim=-1).tolist(),  # (images, L), averaged over heads
            "images": images.label,
        },
    )
    title = (
        f"Mean attention distance by head and depth ({config.image_size}x{config.image_size} "
        f"input)\n{subject.label}; {images.label}"
    )
    figure = plots.draw_attention_distance(distances.numpy(), out / FIGURE_7_RIGHT, title, uniform)
    return [figure, numbers]


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
