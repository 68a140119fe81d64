"""Figure 7 (left and centre): what the patch and position embeddings of Eq. 1 learned.

Left, "RGB embedding filters (first 28 principal components)": "The first layer of the Vision
Transformer linearly projects the flattened patches into a lower-dimensional space (Eq. 1).
Figure 7 (left) shows the top principal components of the the learned embedding filters."

Centre, "Position embedding similarity": "Tiles show the cosine similarity between the position
embedding of the patch with the indicated row and column and the position embeddings of all
other patches."
"""

from __future__ import annotations

import math

import numpy as np
import torch


def filter_principal_components(
    projection_weight: torch.Tensor, num_components: int = 28
) -> tuple[np.ndarray, np.ndarray]:
    """E as stored, (D, C, P, P) -> the top principal components of its D filters, each shaped
    (C, P, P) like a patch, and the fraction of the filters' variance each one explains."""
    from sklearn.decomposition import PCA  # imported when used: --help stays fast

    filters = projection_weight.detach().flatten(1).double().cpu().numpy()  # (D, C P P)
    pca = PCA(n_components=min(num_components, *filters.shape)).fit(filters)
    components = pca.components_.reshape(-1, *projection_weight.shape[1:])
    return components, pca.explained_variance_ratio_


def position_similarity(position_embedding: torch.Tensor, *, class_token: bool) -> np.ndarray:
    """E_pos (1, [1 +] N, D) -> (g, g, g, g): entry [r, c] is the tile of the patch at row r,
    column c, the cosine similarity of its embedding to every patch's. The class token's
    embedding (index 0, when there is one) has no grid position and is left out."""
    from sklearn.metrics.pairwise import cosine_similarity

    patches = position_embedding.detach().reshape(-1, position_embedding.shape[-1])
    patches = patches[int(class_token) :]
    grid_size = math.isqrt(len(patches))
    if grid_size**2 != len(patches):
        raise ValueError(f"{len(patches)} patch position embeddings do not form a square grid")
    similarity = cosine_similarity(patches.double().cpu().numpy())  # (N, N)
    return similarity.reshape(grid_size, grid_size, grid_size, grid_size)


def position_structure(similarity: np.ndarray) -> float:
    """One number for the 2-D structure Figure 7 centre shows: the mean cosine similarity of
    the position embeddings of neighbouring patches (sharing an edge) minus that of distant
    patches (half the grid or more apart along a row or a column). Near 0 for embeddings that
    know nothing of the grid (e.g. at initialisation); large when they encode it.

    similarity: (g, g, g, g), as `position_similarity` returns it.
    """
    grid_size, pairs, row_gap, col_gap = _pairs_and_gaps(similarity)
    neighbours = row_gap + col_gap == 1
    distant = np.maximum(row_gap, col_gap) >= grid_size / 2
    return float(pairs[neighbours].mean() - pairs[distant].mean())


def row_column_structure(similarity: np.ndarray) -> dict[str, float]:
    """Section 4.5's "row-column structure" as two numbers, one per axis: the mean cosine
    similarity of patches in the same row (columns) half the grid or more apart, minus that of
    patches half the grid or more apart in both the row and the column. Near 0 for each axis the
    embeddings do not encode; a grid that encodes rows alone scores on "rows" alone.

    similarity: (g, g, g, g), as `position_similarity` returns it.
    """
    grid_size, pairs, row_gap, col_gap = _pairs_and_gaps(similarity)
    far = grid_size / 2
    unrelated = pairs[(row_gap >= far) & (col_gap >= far)].mean()
    return {
        "rows": float(pairs[(row_gap == 0) & (col_gap >= far)].mean() - unrelated),
        "columns": float(pairs[(col_gap == 0) & (row_gap >= far)].mean() - unrelated),
    }


def _pairs_and_gaps(similarity: np.ndarray) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
    """(g, g, g, g) -> g, and (N, N) each: the similarities, and the row and column gaps
    between the two patches of every pair (patches in row-major order)."""
    grid_size = similarity.shape[0]
    rows, cols = (axis.ravel() for axis in np.indices((grid_size, grid_size)))
    row_gap = np.abs(rows[:, None] - rows[None, :])
    col_gap = np.abs(cols[:, None] - cols[None, :])
    return grid_size, similarity.reshape(grid_size**2, grid_size**2), row_gap, col_gap
