"""Kinect-v1 20 -> NTU 25 joint interpolation on a hand-made pose with exact expected values."""

from __future__ import annotations

import numpy as np
import pytest

from mmcl.formats.kinect_v1 import UTD_JOINT_NAMES
from mmcl.skeleton.interpolate import kinect20_to_ntu25
from mmcl.skeleton.layouts import KINECT20, NTU25


def _pose() -> np.ndarray:
    # joint k (KINECT20 order) at (k, 2k, 0.5k) + a few special positions (binary fractions: exact)
    p = np.array([[k, 2 * k, 0.5 * k] for k in range(20)], dtype=np.float32)
    name = KINECT20.joint_index
    p[name("shoulder center")] = (0.0, 1.5, 3.0)
    p[name("head")] = (0.0, 2.0, 3.25)
    p[name("left wrist")] = (-0.5, 1.0, 3.0)
    p[name("left hand")] = (-0.75, 1.0, 3.0)
    p[name("right wrist")] = (0.5, 1.0, 3.0)
    p[name("right hand")] = (0.5, 0.5, 3.5)
    return p


def test_exact_pose() -> None:
    p = _pose()
    out = kinect20_to_ntu25(p[None])[0]
    j = NTU25.joint_index
    k = KINECT20.joint_index
    assert out.shape == (25, 3) and out.dtype == np.float32
    assert np.array_equal(out[j("spine base")], p[k("hip center")])
    assert np.array_equal(out[j("spine middle")], p[k("spine")])
    assert np.array_equal(out[j("spine shoulder")], p[k("shoulder center")])
    for n in ("head", "left knee", "right foot", "left shoulder", "right hand"):
        assert np.array_equal(out[j(n)], p[k(n)])
    assert out[j("neck")].tolist() == [0.0, 1.75, 3.125]
    assert out[j("left hand tip")].tolist() == [-1.0, 1.0, 3.0]
    assert out[j("left thumb")].tolist() == [-0.875, 1.0, 3.0]
    assert out[j("right hand tip")].tolist() == [0.5, 0.0, 4.0]
    assert out[j("right thumb")].tolist() == [0.5, 0.25, 3.75]


def test_vectorised_other_order_and_zeros() -> None:
    p = _pose()
    utd = p[[KINECT20.joint_index(n) for n in UTD_JOINT_NAMES]]
    seq = np.stack([utd, utd + 1, np.zeros_like(utd)])  # T=3, last frame absent
    both = np.stack([seq, seq * 2])  # M x T x 20 x 3
    out = kinect20_to_ntu25(both, UTD_JOINT_NAMES)
    assert out.shape == (2, 3, 25, 3)
    assert np.allclose(out[0, 0], kinect20_to_ntu25(p[None])[0]) and not out[:, 2].any()
    assert np.allclose(out[0, 1], out[0, 0] + 1)
    with pytest.raises(ValueError, match="20 Kinect-v1 joints"):
        kinect20_to_ntu25(seq, UTD_JOINT_NAMES[:-1] + ("nose",))
    with pytest.raises(ValueError, match="expected 20 joints"):
        kinect20_to_ntu25(np.zeros((3, 25, 3)))
