"""Drawing: arrays in, PNG out. The math lives in the sibling modules, the models in `make`.

matplotlib's object API (`Figure`, not pyplot): no global state, no display, Agg canvas.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib as mpl
import numpy as np
from einops import rearrange
from matplotlib.axes import Axes
from matplotlib.figure import Figure, SubFigure
from matplotlib.ticker import MaxNLocator

from replicate.runs.files import atomic_path
from replicate.runs.read import Run

DPI = 150
PATCH_GAP = 0.5  # mid-grey between patches: visible on white and on black backgrounds


def save(fig: Figure, path: Path) -> Path:
    """Atomically, in the format of the path's suffix: a full disk leaves no half-written file,
    and the error names the file."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=DPI, bbox_inches="tight", format=path.suffix[1:])
    except OSError as error:
        raise ValueError(f"cannot write {path}: {error.strerror or error}") from error
    return path


def tile(tiles: np.ndarray, gap: int, fill: float = np.nan) -> np.ndarray:
    """(rows, cols, h, w[, c]) -> one (rows h + gaps, cols w + gaps[, c]) image, the tiles
    separated by `gap` pixels of `fill` (NaN shows as the colour map's "bad" colour)."""
    rows, cols, h, w = tiles.shape[:4]
    padding = [(0, 0), (0, 0), (0, gap), (0, gap)] + [(0, 0)] * (tiles.ndim - 4)
    padded = np.pad(tiles.astype(float), padding, constant_values=fill)
    image = rearrange(padded, "r c h w ... -> (r h) (c w) ...")
    return image[: rows * (h + gap) - gap, : cols * (w + gap) - gap]


def _tile_ticks(ax: Axes, rows: int, cols: int, size: int, gap: int, max_labels: int = 16) -> None:
    """Number the tiles' rows and columns from 1, ticks at the tiles' centres."""
    step, centre = size + gap, (size - 1) / 2
    every = -(-max(rows, cols) // max_labels)  # ceil: at most max_labels labels per axis
    ax.set_xticks(np.arange(0, cols, every) * step + centre, np.arange(1, cols + 1, every))
    ax.set_yticks(np.arange(0, rows, every) * step + centre, np.arange(1, rows + 1, every))
    ax.tick_params(length=0)


def _no_ticks(ax: Axes) -> None:
    ax.set_xticks([])
    ax.set_yticks([])


def _patches(image: np.ndarray, patch_size: int) -> np.ndarray:
    """(H, W, C) -> (H/P, W/P, P, P, C): the image cut into its grid of patches."""
    return rearrange(image, "(gh p1) (gw p2) c -> gh gw p1 p2 c", p1=patch_size, p2=patch_size)


def draw_patch_embedding(
    image: np.ndarray,
    patch_size: int,
    embedding: np.ndarray,
    path: Path,
    title: str,
    channels: int = 5,
    shown_in_sequence: int = 10,
) -> Path:
    """Figure 1, left half, in pictures: the image (H, W, 3) in [0, 1], its patches, the
    flattened sequence, and the patch embedding x_p E, given as (D, H/P, W/P)."""
    fig = Figure(figsize=(12, 14), layout="constrained")
    fig.suptitle(title, fontsize=12)
    rows = fig.subfigures(4, 1, height_ratios=[3.6, 1.5, 2.3, 2.6])
    patches = _patches(image, patch_size)
    _draw_image_and_patches(rows[0], image, patches)
    _draw_patch_sequence(rows[1], patches, shown_in_sequence)
    _draw_embedding_channels(rows[2], embedding, patch_size, channels)
    _draw_embedded_sequence(rows[3], embedding)
    return save(fig, path)


def _draw_image_and_patches(fig: SubFigure, image: np.ndarray, patches: np.ndarray) -> None:
    size, grid, patch_size = image.shape[0], patches.shape[0], patches.shape[2]
    ax_image, ax_grid = fig.subplots(1, 2)
    ax_image.imshow(image)
    for edge in range(patch_size, size, patch_size):
        ax_image.axhline(edge - 0.5, color="cyan", lw=0.7)
        ax_image.axvline(edge - 0.5, color="cyan", lw=0.7)
    ax_image.set(title=f"1. Input image x, {size}x{size}", xlabel="pixel", ylabel="pixel")
    gap = max(1, patch_size // 8)
    ax_grid.imshow(tile(patches, gap, fill=PATCH_GAP))
    _tile_ticks(ax_grid, grid, grid, patch_size, gap)
    ax_grid.set(
        title=f"2. N = {grid}x{grid} = {grid * grid} patches $x_p$ of {patch_size}x{patch_size}",
        xlabel="patch column",
        ylabel="patch row",
    )


def _draw_patch_sequence(fig: SubFigure, patches: np.ndarray, shown: int) -> None:
    grid, patch_size, channels = patches.shape[0], patches.shape[2], patches.shape[-1]
    count, gap = min(shown, grid * grid), max(2, patch_size // 3)
    ax = fig.subplots()
    strip = rearrange(patches, "gh gw p1 p2 c -> (gh gw) p1 p2 c")[None, :count]
    ax.imshow(tile(strip, gap, fill=PATCH_GAP))
    ax.set_xticks(
        np.arange(count) * (patch_size + gap) + (patch_size - 1) / 2,
        [f"$x_p^{{{i + 1}}}$" for i in range(count)],
    )
    ax.set_yticks([])
    first = f" (first {count} shown)" if count < grid * grid else ""
    ax.set_title(
        f"3. Flattened into a sequence, row by row: $x_p^1, \\ldots, x_p^{{{grid * grid}}}$, "
        f"each a vector of P²C = {patch_size**2 * channels} values{first}",
        fontsize=11,
    )


def _draw_embedding_channels(
    fig: SubFigure, embedding: np.ndarray, patch_size: int, channels: int
) -> None:
    dim, grid = embedding.shape[:2]
    chosen = list(range(min(channels, dim)))
    axes = np.atleast_1d(fig.subplots(1, len(chosen)))
    limit = np.abs(embedding[chosen]).max()
    for ax, channel in zip(axes, chosen, strict=True):
        shown = ax.imshow(embedding[channel], cmap="coolwarm", vmin=-limit, vmax=limit)
        ax.set_title(f"channel {channel + 1} of {dim}", fontsize=10)
        _tile_ticks(ax, grid, grid, 1, 0, max_labels=7)
    axes[0].set(xlabel="patch column", ylabel="patch row")
    fig.colorbar(shown, ax=list(axes), label="value", shrink=0.9)
    fig.suptitle(
        f"4. Linear projection E (stored as a {patch_size}x{patch_size}, stride-{patch_size} "
        f"convolution): the first {len(chosen)} of its D = {dim} output channels on the patch grid",
        fontsize=11,
    )


def _draw_embedded_sequence(fig: SubFigure, embedding: np.ndarray) -> None:
    dim, grid = embedding.shape[:2]
    ax = fig.subplots()
    sequence = rearrange(embedding, "d gh gw -> (gh gw) d")
    extent = (0.5, dim + 0.5, grid * grid + 0.5, 0.5)  # ticks count patches and dimensions from 1
    shown = ax.imshow(
        sequence, aspect="auto", cmap="coolwarm", interpolation="nearest", extent=extent
    )
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set(xlabel="embedding dimension", ylabel="patch $x_p^i$")
    ax.set_title(
        f"5. The embedded patches $x_p^i E$: a sequence of N x D = {grid * grid} x {dim}, "
        "to which Eq. 1 prepends $x_{class}$ and adds $E_{pos}$",
        fontsize=11,
    )
    fig.colorbar(shown, ax=ax, label="value")


def draw_embedding_filters(
    components: np.ndarray, explained: np.ndarray, path: Path, title: str, cols: int = 7
) -> Path:
    """Figure 7 left: principal components (n, C, P, P) of E's filters as RGB patches, each
    scaled on its own with 0 at mid-grey (a component's sign is arbitrary)."""
    n, channels, patch, _ = components.shape
    scale = 2 * np.abs(components).reshape(n, -1).max(axis=1)
    rgb = rearrange(components / scale[:, None, None, None] + 0.5, "n c h w -> n h w c")
    if channels == 1:
        rgb = np.repeat(rgb, 3, axis=-1)
    rows = -(-n // cols)
    blank = np.ones((rows * cols - n, patch, patch, 3))  # white for the unused tail
    tiles = rearrange(np.concatenate([rgb, blank]), "(r c) h w k -> r c h w k", c=cols)
    gap = max(1, patch // 8)
    fig = Figure(figsize=(7, 1.0 * rows + 1.3), layout="constrained")
    ax = fig.subplots()
    ax.imshow(tile(tiles, gap, fill=1.0), interpolation="nearest")
    _no_ticks(ax)
    ax.set_xlabel(f"components 1-{n}, left to right, top to bottom")
    ax.set_title(
        f"RGB embedding filters (first {n} principal components, "
        f"{100 * explained.sum():.0f}% of the variance)\n{title}",
        fontsize=10,
    )
    return save(fig, path)


def draw_position_similarity(similarity: np.ndarray, path: Path, title: str) -> Path:
    """Figure 7 centre: (g, g, g, g) cosine similarities, one g x g tile per patch position."""
    grid = similarity.shape[0]
    gap = max(1, grid // 6)
    cmap = mpl.colormaps["viridis"].with_extremes(bad="white")  # NaN gaps show white
    fig = Figure(figsize=(7.2, 6.2), layout="constrained")
    ax = fig.subplots()
    shown = ax.imshow(tile(similarity, gap), cmap=cmap, vmin=-1, vmax=1)
    _tile_ticks(ax, grid, grid, grid, gap)
    ax.set(xlabel="Input patch column", ylabel="Input patch row")
    ax.set_title(f"Position embedding similarity\n{title}", fontsize=10)
    fig.colorbar(shown, ax=ax, label="Cosine similarity", shrink=0.85)
    return save(fig, path)


def draw_attention_distance(
    distances: np.ndarray,
    path: Path,
    title: str,
    uniform: float | None = None,
    control: np.ndarray | None = None,
) -> Path:
    """Figure 7 right / Figure 11: distances (L, heads), one dot per head and layer; the
    untrained control's (L, heads), where given, as grey rings a little to the right."""
    layers, heads = distances.shape
    fig = Figure(figsize=(7, 4.8), layout="constrained")
    ax = fig.subplots()
    colours = mpl.colormaps["tab20" if heads > 10 else "tab10"]
    depth = np.arange(1, layers + 1)
    if control is not None:
        ax.scatter(np.repeat(depth + 0.25, heads), control.ravel(), s=18, facecolors="none",
                   edgecolors="grey", label="untrained (each head)")  # fmt: skip
    for head in range(heads):
        ax.scatter(depth, distances[:, head], s=18, color=colours(head), label=f"Head {head + 1}")
    if uniform is not None:
        ax.axhline(uniform, color="grey", ls="--", lw=1, label="uniform attention")
    ax.set(
        xlabel="Network depth (layer)",
        ylabel="Mean attention distance (pixels)",
        ylim=(0, None),
        xticks=depth if layers <= 16 else np.arange(0, layers + 1, 4),
    )
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    return save(fig, path)


_ROLLOUT_COLUMNS = ("Input", "Attention rollout", "Attention (input x rollout)")


def draw_rollout(
    images: np.ndarray,
    maps: np.ndarray,
    path: Path,
    title: str,
    captions: Sequence[str] | None = None,
) -> Path:
    """Figure 6: per image (n, S, S, 3), the input, the rollout map (n, S, S) in [0, 1], and
    the input weighted by the map, as the paper shows "Attention"."""
    n = len(images)
    fig = Figure(figsize=(8.4, 2.6 * n + 0.6), layout="constrained")
    fig.suptitle(title, fontsize=10)
    axes = fig.subplots(n, 3, squeeze=False)
    for row, (image, heat) in enumerate(zip(images, maps, strict=True)):
        axes[row, 0].imshow(image)
        shown = axes[row, 1].imshow(heat, cmap="inferno", vmin=0, vmax=1)
        axes[row, 2].imshow(image * heat[..., None])
        for ax in axes[row]:
            _no_ticks(ax)
        if captions:
            axes[row, 0].set_ylabel(captions[row], fontsize=9)
    for ax, name in zip(axes[0], _ROLLOUT_COLUMNS, strict=True):
        ax.set_title(name, fontsize=11)
    fig.colorbar(shown, ax=axes, label="rollout weight (max = 1)", shrink=0.5)
    return save(fig, path)


_CURVES = (  # (metric key, panel title, y label, scale); {split}: the run's evaluation split
    ("train_loss", "Train loss", "loss", 1),
    ("{split}_loss", "Evaluation loss", "loss", 1),
    ("train_acc", "Train accuracy", "top-1 accuracy (%)", 100),
    ("{split}_acc", "Evaluation accuracy", "top-1 accuracy (%)", 100),
)


def draw_training_curves(runs: Sequence[Run], path: Path, title: str) -> Path:
    """Loss and accuracy per epoch, train and evaluation, one colour per run across the panels;
    the evaluation panels name the split they show (test, or the dev split of --val-fraction)."""
    fig = Figure(figsize=(11, 7.5 + 0.22 * len(runs)), layout="constrained")
    fig.suptitle(title, fontsize=12)
    axes = fig.subplots(2, 2)
    colours = mpl.colormaps["tab10" if len(runs) <= 10 else "tab20"]
    splits = " and ".join(sorted({run.eval_split for run in runs}))
    for ax, (key, name, ylabel, scale) in zip(axes.flat, _CURVES, strict=True):
        keys = [key.format(split=run.eval_split) for run in runs]
        for index, (run, run_key) in enumerate(zip(runs, keys, strict=True)):
            epochs, values = run.series(run_key)
            ax.plot(epochs, np.asarray(values) * scale, marker="o", ms=3, color=colours(index))
        if not any(run.series(k)[0] for run, k in zip(runs, keys, strict=True)):
            ax.text(0.5, 0.5, f"no run logged {keys[0]}", ha="center", transform=ax.transAxes)
        split_note = f" ({splits} split)" if "{split}" in key else ""
        ax.set(title=name + split_note, xlabel="epoch", ylabel=ylabel)
        ax.grid(alpha=0.3)
    handles = [
        mpl.lines.Line2D([], [], color=colours(i), marker="o", ms=3) for i in range(len(runs))
    ]
    fig.legend(
        handles, [run.label for run in runs], loc="outside lower center", fontsize=8, ncols=2
    )
    return save(fig, path)


def draw_predictions(
    images: Sequence[np.ndarray], titles: Sequence[str], path: Path, columns: int = 4
) -> Path:
    """Each image (H, W, 3 in [0, 1]) with its top classes as the title, in a grid: the
    course's `pred_and_plot_image`, for several images at once."""
    columns = min(columns, len(images))
    rows = -(-len(images) // columns)
    fig = Figure(figsize=(3 * columns, 3.4 * rows), layout="constrained")
    for i, ax in enumerate(fig.subplots(rows, columns, squeeze=False).flat):
        ax.set_axis_off()
        if i < len(images):
            ax.imshow(images[i])
            ax.set_title(titles[i], fontsize=9)
    return save(fig, path)
