"""Joint layouts as data: joint names, bone pairs, graph edges and the centre joint.

Every joint order in mmcl lives here. Indices stored in a :class:`SkeletonLayout` are
0-based; the tables below are written 1-based (as in the NTU documentation and in the
reference sources, REFERENCE §1.3, §3.2, §4.2-4.3) and converted once.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "SkeletonLayout", "NTU25", "KINECT20", "COCO17", "OPENPOSE18", "MEDIAPIPE33", "get_layout", "LAYOUTS", "LAYOUT_BY_JOINTS",
    "layout_from_dict", "layout_to_dict", "layout_key", "load_layout_file", "com_choices",
]


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
        mirror_pairs: 0-based (left, right) joint pairs that swap under a left-right flip.
    """

    name: str
    joint_names: tuple[str, ...]
    bone_pairs: tuple[tuple[int, int], ...]
    inward_edges: tuple[tuple[int, int], ...]
    center_joint: int
    root_joint: int
    mirror_pairs: tuple[tuple[int, int], ...] = ()

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
        for a, b in self.bone_pairs + self.inward_edges + self.mirror_pairs:
            if not (0 <= a < v and 0 <= b < v):
                raise ValueError(f"layout {self.name}: joint index out of range in ({a}, {b})")
        if not (0 <= self.center_joint < v and 0 <= self.root_joint < v):
            raise ValueError(f"layout {self.name}: centre or root joint out of range")
        mirrored = [j for pair in self.mirror_pairs for j in pair]
        if len(mirrored) != len(set(mirrored)):
            raise ValueError(f"layout {self.name}: a joint appears in two mirror pairs")


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
    mirror_pairs=_zero_based([(5, 9), (6, 10), (7, 11), (8, 12), (13, 17), (14, 18), (15, 19), (16, 20), (22, 24), (23, 25)]),
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
    mirror_pairs=_zero_based([(5, 9), (6, 10), (7, 11), (8, 12), (13, 17), (14, 18), (15, 19), (16, 20)]),
)


def _tree_layout(name: str, joints: tuple[str, ...], parent: dict[str, str], root: str, centre: str) -> SkeletonLayout:
    """A layout from a ``child -> parent`` tree by joint name: every non-root joint's bone points to its
    parent, the root's bone is zero (as the NTU/NW-UCLA tables do), the graph uses the same edges, and
    ``left``/``right`` name pairs become the mirror pairs."""
    idx = {n: i for i, n in enumerate(joints)}
    if set(parent) | {root} != set(joints) or root in parent:
        raise ValueError(f"layout {name}: the tree must give every joint but the root one parent")
    inward = tuple((idx[c], idx[p]) for c, p in parent.items())
    bones = tuple(sorted(inward + ((idx[root], idx[root]),)))
    mirror = tuple((idx[n], idx["right" + n[4:]]) for n in joints if n.startswith("left") and "right" + n[4:] in idx)
    return SkeletonLayout(name, joints, bones, inward, idx[centre], idx[root], mirror)


# COCO-17 keypoints (COCO person keypoints; RTMPose, YOLO-pose, ViTPose, PYSKL's "coco" graph). No
# torso joint: the nose is root and centre, shoulders hang from it as in PYSKL's coco edges.
COCO17_JOINT_NAMES = (
    "nose", "left eye", "right eye", "left ear", "right ear", "left shoulder", "right shoulder",
    "left elbow", "right elbow", "left wrist", "right wrist", "left hip", "right hip",
    "left knee", "right knee", "left ankle", "right ankle",
)
COCO17 = _tree_layout("coco17", COCO17_JOINT_NAMES, {
    "left eye": "nose", "right eye": "nose", "left ear": "left eye", "right ear": "right eye",
    "left shoulder": "nose", "right shoulder": "nose", "left elbow": "left shoulder", "right elbow": "right shoulder",
    "left wrist": "left elbow", "right wrist": "right elbow", "left hip": "left shoulder", "right hip": "right shoulder",
    "left knee": "left hip", "right knee": "right hip", "left ankle": "left knee", "right ankle": "right knee",
}, root="nose", centre="nose")

# OpenPose COCO-18 order (pose_keypoints_2d of the COCO model; ST-GCN's Kinetics-Skeleton): neck is root and centre.
OPENPOSE18_JOINT_NAMES = (
    "nose", "neck", "right shoulder", "right elbow", "right wrist", "left shoulder", "left elbow",
    "left wrist", "right hip", "right knee", "right ankle", "left hip", "left knee", "left ankle",
    "right eye", "left eye", "right ear", "left ear",
)
OPENPOSE18 = _tree_layout("openpose18", OPENPOSE18_JOINT_NAMES, {
    "nose": "neck", "right shoulder": "neck", "left shoulder": "neck", "right elbow": "right shoulder",
    "right wrist": "right elbow", "left elbow": "left shoulder", "left wrist": "left elbow",
    "right hip": "right shoulder", "right knee": "right hip", "right ankle": "right knee",  # ST-GCN: hips hang from shoulders
    "left hip": "left shoulder", "left knee": "left hip", "left ankle": "left knee",
    "right eye": "nose", "left eye": "nose", "right ear": "right eye", "left ear": "left eye",
}, root="neck", centre="neck")

# MediaPipe Pose landmarks (33). No torso joint: the nose is root and centre.
MEDIAPIPE33_JOINT_NAMES = (
    "nose", "left eye inner", "left eye", "left eye outer", "right eye inner", "right eye", "right eye outer",
    "left ear", "right ear", "left mouth", "right mouth", "left shoulder", "right shoulder", "left elbow",
    "right elbow", "left wrist", "right wrist", "left pinky", "right pinky", "left index", "right index",
    "left thumb", "right thumb", "left hip", "right hip", "left knee", "right knee", "left ankle",
    "right ankle", "left heel", "right heel", "left foot index", "right foot index",
)
_MEDIAPIPE_PARENT = {"left mouth": "nose", "right mouth": "nose"}
for _side in ("left", "right"):
    _MEDIAPIPE_PARENT.update({
        f"{_side} eye inner": "nose", f"{_side} eye": f"{_side} eye inner", f"{_side} eye outer": f"{_side} eye",
        f"{_side} ear": f"{_side} eye outer", f"{_side} shoulder": "nose", f"{_side} elbow": f"{_side} shoulder",
        f"{_side} wrist": f"{_side} elbow", f"{_side} pinky": f"{_side} wrist", f"{_side} index": f"{_side} wrist",
        f"{_side} thumb": f"{_side} wrist", f"{_side} hip": f"{_side} shoulder", f"{_side} knee": f"{_side} hip",
        f"{_side} ankle": f"{_side} knee", f"{_side} heel": f"{_side} ankle", f"{_side} foot index": f"{_side} ankle",
    })
MEDIAPIPE33 = _tree_layout("mediapipe33", MEDIAPIPE33_JOINT_NAMES, _MEDIAPIPE_PARENT, root="nose", centre="nose")

LAYOUTS: dict[str, SkeletonLayout] = {x.name: x for x in (NTU25, KINECT20, COCO17, OPENPOSE18, MEDIAPIPE33)}
LAYOUT_BY_JOINTS: dict[int, str] = {layout.num_joints: name for name, layout in LAYOUTS.items()}  # files say only V


def layout_from_dict(spec: Mapping[str, Any], where: str = "layout") -> SkeletonLayout:
    """A user layout from its description (docs/custom-data.md): ``name``, ``joints`` (names, storage
    order), ``bones`` ``[child, parent]`` pairs by name (the root's pair is ``[root, root]`` or left
    out), ``centre`` (a joint name) and optional ``mirror`` ``[left, right]`` pairs. The bone stream,
    the graph and the transforms derive from it, as for the built-in layouts."""
    if not isinstance(spec, Mapping):
        raise ValueError(f"{where}: a layout must be a mapping with name, joints, bones, centre")
    missing = [k for k in ("name", "joints", "bones", "centre") if k not in spec]
    if missing:
        raise ValueError(f"{where}: the layout lacks {missing}")
    joints = spec["joints"]
    if not isinstance(joints, list) or not joints or not all(isinstance(j, str) and j for j in joints) or len(set(joints)) != len(joints):
        raise ValueError(f"{where}: joints must be a list of distinct names")
    pairs = spec["bones"]
    if not isinstance(pairs, list) or not all(isinstance(b, list | tuple) and len(b) == 2 for b in pairs):
        raise ValueError(f"{where}: bones must be a list of [child, parent] joint-name pairs")
    unknown = sorted({str(n) for b in pairs for n in b} - set(joints))
    if unknown:
        raise ValueError(f"{where}: bones name joints that are not in joints: {unknown[:5]}")
    parent = {c: p for c, p in pairs if c != p}
    if len(parent) != sum(1 for c, p in pairs if c != p):
        raise ValueError(f"{where}: a joint has two parents")
    roots = [j for j in joints if j not in parent]
    if len(roots) != 1:
        raise ValueError(f"{where}: the bones must form one tree (joints without a parent: {roots[:5]})")
    for j in joints:  # no cycles: every joint reaches the root
        seen, k = set(), j
        while k in parent:
            if k in seen:
                raise ValueError(f"{where}: the bones form a cycle through {k!r}")
            seen.add(k)
            k = parent[k]
    centre = spec["centre"]
    if centre not in joints:
        raise ValueError(f"{where}: centre {centre!r} is not a joint")
    idx = {n: i for i, n in enumerate(joints)}
    mirror = spec.get("mirror") or []
    if not isinstance(mirror, list) or not all(isinstance(m, list | tuple) and len(m) == 2 and all(n in idx for n in m) for m in mirror):
        raise ValueError(f"{where}: mirror must be a list of [left, right] joint-name pairs")
    inward = tuple((idx[c], idx[p]) for c, p in parent.items())
    bones = tuple(sorted(inward + ((idx[roots[0]], idx[roots[0]]),)))
    return SkeletonLayout(str(spec["name"]), tuple(joints), bones, inward, idx[centre], idx[roots[0]],
                          tuple((idx[a], idx[b]) for a, b in mirror))


def layout_to_dict(layout: SkeletonLayout) -> dict[str, Any]:
    """The description :func:`layout_from_dict` reads (what a model card or a store embeds)."""
    n = layout.joint_names
    return {
        "name": layout.name, "joints": list(n), "bones": [[n[c], n[p]] for c, p in layout.bone_pairs],
        "centre": n[layout.center_joint], "mirror": [[n[a], n[b]] for a, b in layout.mirror_pairs],
    }


def layout_key(layout: str | SkeletonLayout) -> str:
    """How a layout is written into configs, stores and model cards: a built-in's name, otherwise the
    full description as compact JSON (so a trained model never depends on the user's YAML file)."""
    lay = get_layout(layout)
    if LAYOUTS.get(lay.name) == lay:
        return lay.name
    return json.dumps(layout_to_dict(lay), separators=(",", ":"), ensure_ascii=False)


@lru_cache(maxsize=64)
def _layout_from_json(text: str) -> SkeletonLayout:
    try:
        spec = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"invalid layout description ({exc})") from None
    return layout_from_dict(spec)


def load_layout_file(path: str | os.PathLike[str]) -> SkeletonLayout:
    """A user layout from a YAML (or JSON) file; errors name the file."""
    p = Path(path)
    try:
        spec = yaml.safe_load(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ValueError(f"{p}: cannot read the layout ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
    return layout_from_dict(spec, where=str(p))


def get_layout(name: str | SkeletonLayout) -> SkeletonLayout:
    """A layout by built-in name, by its JSON description (:func:`layout_key`) or from a ``.yaml`` file;
    passes layouts through unchanged."""
    if isinstance(name, SkeletonLayout):
        return name
    if isinstance(name, str) and name in LAYOUTS:
        return LAYOUTS[name]
    if isinstance(name, str) and name.lstrip().startswith("{"):
        return _layout_from_json(name)
    if isinstance(name, str) and name.lower().endswith((".yaml", ".yml", ".json")) and Path(name).is_file():
        return load_layout_file(name)
    raise ValueError(f"unknown skeleton layout {name!r}; choose from {sorted(LAYOUTS)} or give a layout .yaml file")


# HD-GCN centres of mass (1-based joints; the first is the default): the official NTU configs' CoM
# 21, 1, 2 and their Kinect v1 analogues (shoulder centre, hip centre, spine; the official ensemble's CoM_3).
_COM_CHOICES: dict[str, tuple[int, ...]] = {"ntu25": (21, 1, 2), "kinect20": (3, 1, 2)}


def com_choices(layout: SkeletonLayout | str) -> tuple[int, ...]:
    """The layout's usual HD-GCN centre-of-mass joints (1-based), the default first; other layouts: their root."""
    layout = get_layout(layout)
    return _COM_CHOICES.get(layout.name, (layout.root_joint + 1,))
