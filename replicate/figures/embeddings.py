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
from sklearn.decomposition import PCA
from sklearn.metrics.pairwise import cosine_similarity


def filter_principal_components(
    projection_weight: torch.Tensor, num_components: int = 28
) -> tuple[np.ndarray, np.ndarray]:
    """E as stored, (D, C, P, P) -> the top principal components of its D filters, each shaped
    (C, P, P) like a patch, and the fraction of the filters' variance each one explains."""
    filters = projection_weight.detach().flatten(1).double().cpu().numpy()  # (D, C P P)
    pca = PCA(n_components=min(num_components, *filters.shape)).fit(filters)
    components = pca.components_.reshape(-1, *projection_weight.shape[1:])
    return components, pca.explained_variance_ratio_


def position_similarity(position_embedding: torch.Tensor, *, class_token: bool) -> np.ndarray:
    """E_pos (1, [1 +] N, D) -> (g, g, g, g): entry [r, c] is the tile of the patch at row r,
    column c, the cosine similarity of its embedding to every patch's. The class token's
    embedding (index 0, when there is one) has no grid position and is left out."""
    patches = position_embedding.detach().reshape(-1, position_embedding.shape[-1])
    patches = patches[int(class_token) :]
    grid_size = math.isqrt(len(patches))
    if grid_size**2 != len(patches):
        raise ValueError(f"{len(patches)} patch position embeddings do not form a square grid")
    similarity = cosine_similarity(patches.double().cpu().numpy())  # (N, N)
    return similarity.reshape(grid_size, grid_size, grid_size, grid_size)
