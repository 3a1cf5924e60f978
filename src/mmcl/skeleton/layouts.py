"""Joint layouts as data: joint names, bone pairs, graph edges and the centre joint.

Every joint order in mmcl lives here. Indices stored in a :class:`SkeletonLayout` are
0-based; the tables below are written 1-based (as in the NTU documentation and in the
reference sources, REFERENCE §1.3, §3.2, §4.2-4.3) and converted once.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SkeletonLayout", "NTU25", "KINECT20", "get_layout", "LAYOUTS", "LAYOUT_BY_JOINTS"]


@dataclass(frozen=True)
class SkeletonLayout:
    """A skeleton joint layout.

    Attributes:
        name: short identifier used in configs and the CLI (``"ntu25"``, ``"kinect20"``).
        joint_names: one name per joint, in storage order.
        bone_pairs: ``(joint, reference)`` 0-based pairs; the bone of ``joint`` is
            ``X[joint] - X[reference]``. Every joint appears first in exactly one pair, so
            the bone stream has the same shape as the joint stream (REFERENCE §3.2).
        inward_edges: ``(child, parent)`` 0-based edges pointing towards the graph root,
            used to build the spatial-labelling adjacency (REFERENCE §4).
        center_joint: 0-based joint used as the origin when centring a sequence.
        root_joint: 0-based root of the graph (the joint with a zero bone).
    """

    name: str
    joint_names: tuple[str, ...]
    bone_pairs: tuple[tuple[int, int], ...]
    inward_edges: tuple[tuple[int, int], ...]
    center_joint: int
    root_joint: int

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    @property
    def outward_edges(self) -> tuple[tuple[int, int], ...]:
        return tuple((j, i) for i, j in self.inward_edges)

    def joint_index(self, name: str) -> int:
        """0-based index of a joint by name (raises ``KeyError`` naming the layout)."""
        try:
            return self.joint_names.index(name)
        except ValueError:
            raise KeyError(f"layout {self.name!r} has no joint named {name!r}") from None

    def __post_init__(self) -> None:
        v = len(self.joint_names)
        firsts = sorted(a for a, _ in self.bone_pairs)
        if firsts != list(range(v)):
            raise ValueError(f"layout {self.name}: every joint must start exactly one bone pair")
        for a, b in self.bone_pairs + self.inward_edges:
            if not (0 <= a < v and 0 <= b < v):
                raise ValueError(f"layout {self.name}: joint index out of range in ({a}, {b})")


def _zero_based(pairs: list[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    return tuple((a - 1, b - 1) for a, b in pairs)


# Kinect v2 joint order of NTU RGB+D (REFERENCE §1.3), J1..J25.
NTU25_JOINT_NAMES = (
    "spine base", "spine middle", "neck", "head",
    "left shoulder", "left elbow", "left wrist", "left hand",
    "right shoulder", "right elbow", "right wrist", "right hand",
    "left hip", "left knee", "left ankle", "left foot",
    "right hip", "right knee", "right ankle", "right foot",
    "spine shoulder", "left hand tip", "left thumb", "right hand tip", "right thumb",
)

# CTR-GCN bone pairs for NTU (REFERENCE §3.2), 1-based (v1, v2): bone(v1) = X[v1] - X[v2].
NTU25_BONE_PAIRS_1BASED = [
    (1, 2), (2, 21), (3, 21), (4, 3), (5, 21), (6, 5), (7, 6), (8, 7), (9, 21), (10, 9),
    (11, 10), (12, 11), (13, 1), (14, 13), (15, 14), (16, 15), (17, 1), (18, 17), (19, 18),
    (20, 19), (22, 23), (21, 21), (23, 8), (24, 25), (25, 12),
]

# CTR-GCN NTU graph, inward (child, parent) edges, 1-based (REFERENCE §4.2); root J21.
NTU25_INWARD_1BASED = [
    (1, 2), (2, 21), (3, 21), (4, 3), (5, 21), (6, 5), (7, 6), (8, 7), (9, 21), (10, 9),
    (11, 10), (12, 11), (13, 1), (14, 13), (15, 14), (16, 15), (17, 1), (18, 17), (19, 18),
    (20, 19), (22, 23), (23, 8), (24, 25), (25, 12),
]

NTU25 = SkeletonLayout(
    name="ntu25",
    joint_names=NTU25_JOINT_NAMES,
    bone_pairs=_zero_based(NTU25_BONE_PAIRS_1BASED),
    inward_edges=_zero_based(NTU25_INWARD_1BASED),
    center_joint=1,  # J2 spine middle: origin of the NTU centring (REFERENCE §2.6)
    root_joint=20,  # J21 spine shoulder
)

# Kinect v1 20-joint order as stored by NW-UCLA (shared/data/README.md).
KINECT20_JOINT_NAMES = (
    "hip center", "spine", "shoulder center", "head",
    "left shoulder", "left elbow", "left wrist", "left hand",
    "right shoulder", "right elbow", "right wrist", "right hand",
    "left hip", "left knee", "left ankle", "left foot",
    "right hip", "right knee", "right ankle", "right foot",
)

# CTR-GCN NW-UCLA bone pairs (REFERENCE §3.2), 1-based; J3 is the root (zero bone).
KINECT20_BONE_PAIRS_1BASED = [
    (1, 2), (2, 3), (3, 3), (4, 3), (5, 3), (6, 5), (7, 6), (8, 7), (9, 3), (10, 9),
    (11, 10), (12, 11), (13, 1), (14, 13), (15, 14), (16, 15), (17, 1), (18, 17), (19, 18),
    (20, 19),
]

# CTR-GCN NW-UCLA graph, inward edges, 1-based (REFERENCE §4.3); root J3.
KINECT20_INWARD_1BASED = [
    (1, 2), (2, 3), (4, 3), (5, 3), (6, 5), (7, 6), (8, 7), (9, 3), (10, 9), (11, 10),
    (12, 11), (13, 1), (14, 13), (15, 14), (16, 15), (17, 1), (18, 17), (19, 18), (20, 19),
]

KINECT20 = SkeletonLayout(
    name="kinect20",
    joint_names=KINECT20_JOINT_NAMES,
    bone_pairs=_zero_based(KINECT20_BONE_PAIRS_1BASED),
    inward_edges=_zero_based(KINECT20_INWARD_1BASED),
    center_joint=1,  # "spine": the NW-UCLA feeder centres on joint index 1 (REFERENCE §3.3)
    root_joint=2,  # shoulder center
)

LAYOUTS: dict[str, SkeletonLayout] = {NTU25.name: NTU25, KINECT20.name: KINECT20}
LAYOUT_BY_JOINTS: dict[int, str] = {layout.num_joints: name for name, layout in LAYOUTS.items()}  # files say only V


def get_layout(name: str | SkeletonLayout) -> SkeletonLayout:
    """Look a layout up by name; passes layouts through unchanged."""
    if isinstance(name, SkeletonLayout):
        return name
    try:
        return LAYOUTS[name]
    except KeyError:
        raise ValueError(f"unknown skeleton layout {name!r}; choose from {sorted(LAYOUTS)}") from None
