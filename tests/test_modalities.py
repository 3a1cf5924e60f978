"""Joint / bone / motion streams on tiny hand-made skeletons (REFERENCE §3.2)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mmcl.skeleton.layouts import KINECT20, NTU25
from mmcl.skeleton.streams import STREAMS, bone, joint, motion, to_stream


def _numbered(num_joints: int, frames: int = 2, persons: int = 1) -> np.ndarray:
    """X[c, t, v, m] = (v + 1) * (1, 10, 100)[c] * (t + 1) * (m + 1): every joint distinct."""
    c = np.array([1.0, 10.0, 100.0])[:, None, None, None]
    t = np.arange(1, frames + 1, dtype=np.float64)[None, :, None, None]
    v = np.arange(1, num_joints + 1, dtype=np.float64)[None, None, :, None]
    m = np.arange(1, persons + 1, dtype=np.float64)[None, None, None, :]
    return (c * t * v * m).astype(np.float32)


def test_streams_constant() -> None:
    assert STREAMS == ("joint", "bone", "joint_motion", "bone_motion")


def test_bone_ntu25_hand_values() -> None:
    x = _numbered(25)
    b = bone(x, NTU25)
    unit = np.array([1.0, 10.0, 100.0])
    # J1 - J2 (1-based): (1 - 2) * unit at t=0, m=0
    np.testing.assert_allclose(b[:, 0, 0, 0], -1 * unit)
    # J2 - J21: 2 - 21 = -19
    np.testing.assert_allclose(b[:, 0, 1, 0], -19 * unit)
    # J21 is the root: (21, 21) -> zero bone
    np.testing.assert_array_equal(b[:, :, 20, :], 0)
    # hand chain: J22 - J23 = -1, J23 - J8 = 15, J24 - J25 = -1, J25 - J12 = 13
    np.testing.assert_allclose(b[:, 0, 21, 0], -1 * unit)
    np.testing.assert_allclose(b[:, 0, 22, 0], 15 * unit)
    np.testing.assert_allclose(b[:, 0, 23, 0], -1 * unit)
    np.testing.assert_allclose(b[:, 0, 24, 0], 13 * unit)
    # second frame doubles everything
    np.testing.assert_allclose(b[:, 1, 22, 0], 30 * unit)
    assert b.shape == x.shape and b.dtype == np.float32


def test_bone_kinect20_hand_values() -> None:
    x = _numbered(20, persons=2)
    b = bone(x, "kinect20")
    unit = np.array([1.0, 10.0, 100.0])
    np.testing.assert_array_equal(b[:, :, 2, :], 0)  # J3 root
    np.testing.assert_allclose(b[:, 0, 0, 0], -1 * unit)  # J1 - J2
    np.testing.assert_allclose(b[:, 0, 3, 0], 1 * unit)  # J4 - J3
    np.testing.assert_allclose(b[:, 0, 4, 0], 2 * unit)  # J5 - J3
    np.testing.assert_allclose(b[:, 0, 16, 0], 16 * unit)  # J17 - J1
    np.testing.assert_allclose(b[:, 0, 16, 1], 32 * unit)  # second person doubles


def test_bone_rejects_wrong_joint_count() -> None:
    with pytest.raises(ValueError, match="25"):
        bone(_numbered(20), NTU25)


def test_motion_hand_values() -> None:
    x = np.zeros((3, 3, 20, 1), dtype=np.float32)
    x[0, :, 5, 0] = [1.0, 4.0, 9.0]
    d = motion(x)
    np.testing.assert_array_equal(d[0, :, 5, 0], [3.0, 5.0, 0.0])
    np.testing.assert_array_equal(d[:, -1], 0)
    assert d.shape == x.shape


def test_joint_is_identity_and_bone_motion_is_bone_then_motion() -> None:
    x = np.random.default_rng(0).standard_normal((3, 5, 25, 2)).astype(np.float32)
    assert to_stream(x, "joint", NTU25) is x
    assert joint(x) is x
    np.testing.assert_array_equal(to_stream(x, "bone", NTU25), bone(x, NTU25))
    np.testing.assert_array_equal(to_stream(x, "joint_motion", NTU25), motion(x))
    np.testing.assert_array_equal(to_stream(x, "bone_motion", NTU25), motion(bone(x, NTU25)))


def test_unknown_stream_lists_streams() -> None:
    with pytest.raises(ValueError, match="bone_motion"):
        to_stream(np.zeros((3, 2, 25, 1)), "velocity", NTU25)


@pytest.mark.parametrize("stream", STREAMS)
def test_torch_batch_matches_numpy_sample(stream: str) -> None:
    x = np.random.default_rng(1).standard_normal((2, 3, 6, 20, 1)).astype(np.float32)
    out_t = to_stream(torch.from_numpy(x), stream, KINECT20)
    assert isinstance(out_t, torch.Tensor) and out_t.shape == x.shape
    for n in range(2):
        np.testing.assert_allclose(out_t[n].numpy(), to_stream(x[n], stream, KINECT20), rtol=0, atol=1e-6)
