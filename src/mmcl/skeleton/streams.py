"""Skeleton input streams: joint, bone, joint motion and bone motion (REFERENCE §3.2).

Every function works on numpy arrays and torch tensors alike, for a single sample
``C×T×V×M`` or any batch ``...×C×T×V×M`` (time is axis -3, joints axis -2), so the same
code serves the data pipeline (numpy, per sample) and on-device stream conversion (torch,
per batch). Nothing here loops over joints or frames.
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np

from mmcl.skeleton.layouts import SkeletonLayout, get_layout

__all__ = ["STREAMS", "joint", "bone", "motion", "to_stream", "bone_reference_index"]

# The four streams of the CTR-GCN / MMCL ensembles (REFERENCE §3.2: J, B, JM, BM).
STREAMS: tuple[str, ...] = ("joint", "bone", "joint_motion", "bone_motion")

ArrayT = TypeVar("ArrayT")  # np.ndarray or torch.Tensor; the output has the input's type

_TIME_AXIS = -3
_JOINT_AXIS = -2


def _is_torch(x: object) -> bool:
    # Avoid importing torch just to test the type: a tensor's class lives in module "torch".
    return type(x).__module__.startswith("torch")


def bone_reference_index(layout: SkeletonLayout | str) -> np.ndarray:
    """``ref[v]`` = the joint that joint ``v``'s bone points from, so ``bone = X - X[..., ref, :]``.

    Every joint starts exactly one bone pair (validated by :class:`SkeletonLayout`), so this
    is a permutation-free gather that keeps the joint order of the input.
    """
    lay = get_layout(layout)
    ref = np.empty(lay.num_joints, dtype=np.int64)
    for v1, v2 in lay.bone_pairs:
        ref[v1] = v2
    return ref


def joint(x: ArrayT) -> ArrayT:
    """The joint stream is the (cropped, resized, rotated) coordinates themselves."""
    return x


def bone(x: ArrayT, layout: SkeletonLayout | str) -> ArrayT:
    """Bone stream: ``B[..., v1, :] = X[..., v1, :] - X[..., v2, :]`` for each pair (REFERENCE §3.2).

    One fancy-index gather and one subtraction; root joints (pair ``(r, r)``) get a zero bone.
    """
    ref = bone_reference_index(layout)
    if x.shape[_JOINT_AXIS] != ref.shape[0]:  # type: ignore[attr-defined]
        raise ValueError(
            f"bone(): input has {x.shape[_JOINT_AXIS]} joints on axis -2 but layout "  # type: ignore[attr-defined]
            f"{get_layout(layout).name!r} has {ref.shape[0]}"
        )
    if _is_torch(x):
        import torch

        idx = torch.as_tensor(ref, device=x.device)  # type: ignore[attr-defined]
        return x - x.index_select(x.dim() + _JOINT_AXIS, idx)  # type: ignore[attr-defined,operator,return-value]
    return x - x[..., ref, :]  # type: ignore[index,operator,return-value]


def motion(x: ArrayT) -> ArrayT:
    """Forward difference over time, ``D[t] = Y[t+1] - Y[t]``, last frame zero (REFERENCE §3.2)."""
    if _is_torch(x):
        import torch

        out = torch.zeros_like(x)  # type: ignore[arg-type]
    else:
        out = np.zeros_like(x)
    out[..., :-1, :, :] = x[..., 1:, :, :] - x[..., :-1, :, :]  # type: ignore[index,operator]
    return out  # type: ignore[return-value]


def to_stream(x: ArrayT, stream: str, layout: SkeletonLayout | str) -> ArrayT:
    """Convert joint coordinates to one of :data:`STREAMS` (bone motion = bone, then motion)."""
    if stream == "joint":
        return joint(x)
    if stream == "bone":
        return bone(x, layout)
    if stream == "joint_motion":
        return motion(x)
    if stream == "bone_motion":
        return motion(bone(x, layout))
    raise ValueError(f"unknown stream {stream!r}; choose from {list(STREAMS)}")
