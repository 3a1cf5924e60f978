"""Kinect-v1 loaders (UTD-MHAD .mat, generic .npy/.mat/.json), class mapping, zero-shot input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy.io import savemat

from mmcl.formats.kinect_v1 import UTD_JOINT_NAMES, KinectV1Error, load_kinect_v1, load_utd_skeleton, parse_utd_name
from mmcl.skeleton.layouts import KINECT20
from mmcl.skeleton.transforms import zero_shot_preprocess
from mmcl.zeroshot import load_class_mapping


def _seq(t: int = 30) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.normal(size=(t, 20, 3)).astype(np.float32)  # KINECT20 order


def _to_utd(x: np.ndarray) -> np.ndarray:
    return x[:, [KINECT20.joint_index(n) for n in UTD_JOINT_NAMES]]


def test_utd_mat(tmp_path: Path) -> None:
    x = _seq()
    path = tmp_path / "a27_s3_t2_skeleton.mat"
    savemat(path, {"d_skel": _to_utd(x).transpose(1, 2, 0)})  # 20 x 3 x T
    assert np.array_equal(load_utd_skeleton(path), x)
    assert parse_utd_name(path) == (27, 3, 2)


def test_utd_errors(tmp_path: Path) -> None:
    bad = tmp_path / "a1_s1_t1_skeleton.mat"
    savemat(bad, {"skel": np.zeros((20, 3, 5))})
    with pytest.raises(KinectV1Error, match=r"a1_s1_t1_skeleton.mat: missing key 'd_skel'"):
        load_utd_skeleton(bad)
    savemat(bad, {"d_skel": np.zeros((25, 3, 5))})
    with pytest.raises(KinectV1Error, match="shape"):
        load_utd_skeleton(bad)
    arr = np.zeros((20, 3, 5))
    arr[0, 0, 0] = np.nan
    savemat(bad, {"d_skel": arr})
    with pytest.raises(KinectV1Error, match="NaN"):
        load_utd_skeleton(bad)
    with pytest.raises(KinectV1Error, match="not a UTD-MHAD name"):
        parse_utd_name("skeleton.mat")


def test_generic_formats(tmp_path: Path) -> None:
    x = _seq(12)
    utd = _to_utd(x)
    np.save(tmp_path / "s.npy", utd)
    (tmp_path / "s.json").write_text(json.dumps({"skeletons": utd.tolist()}))
    (tmp_path / "l.json").write_text(json.dumps(x.tolist()))
    savemat(tmp_path / "s.mat", {"pose": utd.transpose(1, 2, 0)})
    for name in ("s.npy", "s.json", "s.mat"):
        assert np.allclose(load_kinect_v1(tmp_path / name, UTD_JOINT_NAMES), x)
    assert np.allclose(load_kinect_v1(tmp_path / "l.json"), x)
    (tmp_path / "r.json").write_text(json.dumps({"skeletons": [[[1, 2]]]}))
    with pytest.raises(KinectV1Error, match="r.json"):
        load_kinect_v1(tmp_path / "r.json")
    with pytest.raises(KinectV1Error, match="missing key 'joints'"):
        load_kinect_v1(tmp_path / "s.json", key="joints")
    with pytest.raises(KinectV1Error, match="unsupported"):
        load_kinect_v1(tmp_path / "s.txt")


def test_class_mapping(tmp_path: Path) -> None:
    m = load_class_mapping()
    assert m == {"a3": 22, "a6": 95, "a7": 62, "a24": 8, "a25": 7, "a27": 79}
    custom = tmp_path / "map.tsv"
    custom.write_text("src\tlabel\nwave\t22\n")
    assert load_class_mapping(custom) == {"wave": 22}
    custom.write_text("src\tlabel\nwave\tx\n")
    with pytest.raises(ValueError, match="map.tsv"):
        load_class_mapping(custom)


def test_zero_shot_preprocess() -> None:
    seq = np.random.default_rng(1).normal(size=(100, 25, 3)).astype(np.float32)
    out = zero_shot_preprocess(seq)
    assert out.shape == (3, 64, 25, 2) and out.dtype == np.float32
    assert not out[..., 1].any()
    # test crop of 100 valid frames: b = 2, L = 96; resize 96 -> 64: out[0] mixes frames 2 and 3
    centred = seq - seq[0, 1]
    src = 0.5 * 96 / 64 - 0.5  # 0.25
    expect = (1 - src) * centred[2] + src * centred[3]
    assert np.allclose(out[:, 0, :, 0], expect.T, atol=1e-6)
