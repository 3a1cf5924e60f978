"""Skeleton adjacency with spatial labelling (REFERENCE §4.1-4.3).

The CTR-GCN graph is three V×V matrices: identity, normalised inward (child -> parent) and
normalised outward (parent -> child) edges. Row = receiving joint, column = sending joint, so a
graph convolution aggregates ``out[u] = sum_w A[k, u, w] * x[w]``.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from mmcl.skeleton.layouts import SkeletonLayout, get_layout

__all__ = ["edges_to_matrix", "normalize_columns", "spatial_adjacency", "identity_adjacency"]


def edges_to_matrix(edges: Iterable[tuple[int, int]], num_joints: int) -> np.ndarray:
    """V×V 0/1 matrix with ``A[j, i] = 1`` for each directed edge ``(i, j)`` (REFERENCE §4.1)."""
    a = np.zeros((num_joints, num_joints), dtype=np.float64)
    for i, j in edges:
        a[j, i] = 1.0
    return a


def normalize_columns(a: np.ndarray) -> np.ndarray:
    """Divide every column by its sum; all-zero columns stay zero (REFERENCE §4.1)."""
    col = a.sum(axis=0)
    scale = np.divide(1.0, col, out=np.zeros_like(col), where=col > 0)
    return a * scale[None, :]


def spatial_adjacency(layout: SkeletonLayout | str) -> np.ndarray:
    """3×V×V float32 stack (identity, inward, outward) of the spatial labelling (REFERENCE §4.1)."""
    layout = get_layout(layout)
    v = layout.num_joints
    identity = edges_to_matrix(((i, i) for i in range(v)), v)
    inward = normalize_columns(edges_to_matrix(layout.inward_edges, v))
    outward = normalize_columns(edges_to_matrix(layout.outward_edges, v))
    return np.stack([identity, inward, outward]).astype(np.float32)


def identity_adjacency(num_joints: int, num_subsets: int = 3) -> np.ndarray:
    """Stacked identity matrices: the (graph-free) starting adjacency of CTRS-GCN (REFERENCE §5.8)."""
    return np.stack([np.eye(num_joints, dtype=np.float32)] * num_subsets)
