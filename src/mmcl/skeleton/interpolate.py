"""Kinect v1 (20 joints) -> NTU / Kinect v2 (25 joints), for zero-shot transfer (REFERENCE §9.3).

The reference has no conversion code (the paper only says joints are "interpolated"), so mmcl
defines one. Shared joints are copied (REFERENCE §1.3 vs the Kinect-v1 names of ``KINECT20``):
hip center -> spine base (J1), spine -> spine middle (J2), shoulder center -> spine shoulder (J21),
head -> head (J4), and every limb joint (shoulders ... feet, J5-J20) to the joint of the same name.
The five NTU-only joints are placed by rules that use only the skeleton itself:

* neck (J3) = midpoint of shoulder center and head. Kinect v2 puts the neck between the spine
  shoulder and the head; v1 has no neck, and the midpoint keeps both bones J3-J21, J4-J3 non-zero.
* hand tip (J22, J24) = hand + ``HAND_TIP_RATIO`` * (hand - wrist): the wrist->hand direction
  continued by the same length (v2 wrist->hand and hand->tip are both about 8 cm).
* thumb (J23, J25) = hand + ``THUMB_RATIO`` * (hand - wrist): v1 carries no hand orientation, so
  the side of the thumb is unknown; placing it half-way to the tip keeps the bones J22-J23 and
  J23-J8 non-zero and points them in the hand direction (the NTU bone chain tip->thumb->hand).

Absent joints/persons stored as zeros stay zero (every rule is a linear combination of joints).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mmcl.skeleton.layouts import KINECT20, NTU25

__all__ = ["kinect20_to_ntu25", "HAND_TIP_RATIO", "THUMB_RATIO", "NECK_FRACTION", "DIRECT_MAP"]

NECK_FRACTION = 0.5  # neck = shoulder center + 0.5 (head - shoulder center)
HAND_TIP_RATIO = 1.0  # hand tip = hand + 1.0 (hand - wrist)
THUMB_RATIO = 0.5  # thumb = hand + 0.5 (hand - wrist)

# NTU joint name -> Kinect v1 joint name for the joints both skeletons have.
DIRECT_MAP: dict[str, str] = {
    "spine base": "hip center",
    "spine middle": "spine",
    "spine shoulder": "shoulder center",
    "head": "head",
    **{n: n for n in NTU25.joint_names if n in KINECT20.joint_names and n != "head"},
}


def kinect20_to_ntu25(x: np.ndarray, joint_order: Sequence[str] = KINECT20.joint_names, joint_axis: int = -2) -> np.ndarray:
    """Map 20 Kinect-v1 joints (in ``joint_order``, names of ``KINECT20``) to the 25 NTU joints.

    ``x`` has the joints on ``joint_axis`` and xyz on the last axis, e.g. T x 20 x 3 or
    M x T x 20 x 3; the result has 25 joints in NTU order on the same axis. Float32 out.
    """
    order = list(joint_order)
    if sorted(order) != sorted(KINECT20.joint_names):
        unknown = sorted(set(order) - set(KINECT20.joint_names))
        missing = sorted(set(KINECT20.joint_names) - set(order))
        raise ValueError(f"joint_order must name the 20 Kinect-v1 joints once each; unknown {unknown}, missing {missing}")
    x = np.asarray(x, dtype=np.float32)
    axis = joint_axis % x.ndim
    if x.shape[axis] != 20 or x.shape[-1] != 3 or axis == x.ndim - 1:
        raise ValueError(f"expected 20 joints on axis {joint_axis} and xyz last, got shape {x.shape}")
    v = np.moveaxis(x, axis, -2)  # ... x 20 x 3

    def j(name: str) -> np.ndarray:
        return v[..., order.index(name), :]

    out = np.zeros(v.shape[:-2] + (25, 3), dtype=np.float32)
    for ntu_name, v1_name in DIRECT_MAP.items():
        out[..., NTU25.joint_index(ntu_name), :] = j(v1_name)
    sc, head = j("shoulder center"), j("head")
    out[..., NTU25.joint_index("neck"), :] = sc + NECK_FRACTION * (head - sc)
    for side in ("left", "right"):
        hand, wrist = j(f"{side} hand"), j(f"{side} wrist")
        out[..., NTU25.joint_index(f"{side} hand tip"), :] = hand + HAND_TIP_RATIO * (hand - wrist)
        out[..., NTU25.joint_index(f"{side} thumb"), :] = hand + THUMB_RATIO * (hand - wrist)
    return np.moveaxis(out, -2, axis)
