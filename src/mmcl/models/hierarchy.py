"""HD-GCN's hierarchically decomposed graph, derived from any layout (Lee et al., ICCV 2023).

The construction rule: pick a centre of mass (CoM) joint; hierarchy level ``k`` holds the joints
``k`` bones away from it in the body tree. Neighbouring levels ``(k, k+1)`` form one HD-graph
layer with three subsets: identity over both levels, level k -> level k+1 ("forward") and
level k+1 -> level k ("reverse"), column-normalised as CTR-GCN's graphs (each sender's weight is
shared among its receivers). The official code
ships this only as fixed NTU tables (graph/tools.py ``get_groups``); written as a rule it gives:

* **NTU (Kinect v2)**: the official groups for CoM 1, 2 and 21 exactly, with HD-GCN's body tree,
  in which hand tip and thumb both hang off the hand (CTR-GCN's graph chains tip -> thumb -> hand),
  and with at most :data:`MAX_LEVELS` levels: CoM 1 reaches the fingers at depth 7, and the official
  table puts them in the last (hand) level.
* **NW-UCLA (Kinect v1, 20 joints)**, which the official repository only ships compiled: CoM 1
  (hip centre), 2 (spine) and 3 (shoulder centre, the analogue of NTU's 21 and the official
  ensemble's ``CoM_3``). CoM 2 gives six levels, so five layers.
* any other layout: its own tree, CoM = its root joint unless given.

CoM numbers are 1-based joint numbers, as in the HD-GCN configs (``CoM: 21``).
"""

from __future__ import annotations

from collections import deque

import numpy as np

from mmcl.models.graph import edges_to_matrix, normalize_columns
from mmcl.skeleton.layouts import SkeletonLayout, com_choices, get_layout

__all__ = [
    "MAX_LEVELS",
    "NUM_SUBSETS",
    "hierarchy_groups",
    "hierarchy_adjacency",
    "default_com",
    "com_choices",
    "guess_com",
]

MAX_LEVELS = 7  # HD-GCN graph/tools.py: seven groups (six layers) for every NTU CoM
NUM_SUBSETS = 3  # identity, forward (towards the extremities), reverse
EDGE_KNN = 5  # HD_Gconv's EdgeConv neighbours (over joints)
ATTENTION_KNN = 3  # AHA's EdgeConv neighbours (over layers)

# HD-GCN's body tree differs from the layout's CTR-GCN graph at the hands: both hand tip and thumb
# hang off the hand (0-based child -> parent).
_TREE_OVERRIDES: dict[str, dict[int, int]] = {"ntu25": {21: 7, 23: 11}}


def default_com(layout: SkeletonLayout | str) -> int:
    """HD-GCN's default CoM: NTU joint 21 (spine shoulder), Kinect-20 joint 3 (shoulder centre), else the root."""
    return com_choices(layout)[0]


def _tree(layout: SkeletonLayout) -> list[list[int]]:
    parents = dict(layout.inward_edges)
    parents.update(_TREE_OVERRIDES.get(layout.name, {}))
    neighbours: list[list[int]] = [[] for _ in range(layout.num_joints)]
    for child, parent in parents.items():
        if child != parent:
            neighbours[child].append(parent)
            neighbours[parent].append(child)
    return neighbours


def hierarchy_groups(layout: SkeletonLayout | str, com: int | None = None, max_levels: int = MAX_LEVELS) -> list[list[int]]:
    """0-based joints per hierarchy level, level 0 = ``[com - 1]``; deeper levels than ``max_levels`` merge into the last."""
    layout = get_layout(layout)
    com = default_com(layout) if com is None else int(com)
    v = layout.num_joints
    if not 1 <= com <= v:
        raise ValueError(f"CoM joint {com} is outside {layout.name}'s joints 1..{v} (1-based, as in HD-GCN's configs)")
    neighbours = _tree(layout)
    depth = {com - 1: 0}
    queue = deque([com - 1])
    while queue:
        j = queue.popleft()
        for n in sorted(neighbours[j]):
            if n not in depth:
                depth[n] = depth[j] + 1
                queue.append(n)
    if len(depth) != v:
        missing = sorted(set(range(v)) - set(depth))
        raise ValueError(f"layout {layout.name}: joints {[m + 1 for m in missing]} are not connected to CoM joint {com}")
    levels = min(max(depth.values()) + 1, max_levels)
    groups: list[list[int]] = [[] for _ in range(levels)]
    for j in range(v):
        groups[min(depth[j], levels - 1)].append(j)
    if levels < ATTENTION_KNN + 1 or v < EDGE_KNN:
        raise ValueError(
            f"HD-GCN needs at least {ATTENTION_KNN + 1} hierarchy levels and {EDGE_KNN} joints; "
            f"{layout.name} with CoM {com} gives {levels} levels and {v} joints"
        )
    return groups


def hierarchy_adjacency(layout: SkeletonLayout | str, com: int | None = None) -> np.ndarray:
    """L × 3 × V × V float32: per layer, identity over two levels, forward and reverse (column-normalised)."""
    layout = get_layout(layout)
    groups = hierarchy_groups(layout, com)
    v = layout.num_joints
    layers = []
    for upper, lower in zip(groups[:-1], groups[1:]):
        identity = edges_to_matrix(((j, j) for j in upper + lower), v)
        forward = normalize_columns(edges_to_matrix(((a, b) for a in upper for b in lower), v))
        reverse = normalize_columns(edges_to_matrix(((b, a) for b in lower for a in upper), v))
        layers.append(np.stack([identity, forward, reverse]))
    return np.stack(layers).astype(np.float32)


def guess_com(layout: SkeletonLayout | str, adjacency: np.ndarray) -> int:
    """The CoM whose hierarchy is nearest to a (trained) HD-GCN adjacency: checkpoints without a card
    do not say which one they were trained with, and training keeps PA near its start."""
    layout = get_layout(layout)
    best: tuple[float, int] | None = None
    for com in com_choices(layout):
        start = hierarchy_adjacency(layout, com)
        if start.shape == tuple(adjacency.shape):
            dist = float(np.linalg.norm(start - adjacency))
            if best is None or dist < best[0]:
                best = (dist, com)
    if best is None:
        raise ValueError(
            f"an HD-GCN adjacency of shape {list(adjacency.shape)} fits no {layout.name} hierarchy "
            f"(CoM {', '.join(map(str, com_choices(layout)))})"
        )
    return best[1]
