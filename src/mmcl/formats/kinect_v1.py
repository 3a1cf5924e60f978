"""Kinect-v1 (20-joint) skeleton files: UTD-MHAD ``.mat`` and generic ``.npy``/``.mat``/``.json``.

UTD-MHAD ``aA_sS_tT_skeleton.mat`` files hold ``d_skel`` (20 x 3 x T) in the UTD joint order
(``UTD_JOINT_NAMES``: head first, NOT the NW-UCLA/``KINECT20`` order). Loaders return T x 20 x 3
float32 in ``KINECT20`` order; :func:`mmcl.skeleton.interpolate.kinect20_to_ntu25` then maps them to
the NTU layout, and :func:`mmcl.skeleton.transforms.zero_shot_preprocess` reproduces the evaluation input of REFERENCE §9.1.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mmcl.formats.errors import READ_ERRORS
from mmcl.skeleton.layouts import KINECT20

__all__ = [
    "KinectV1Error",
    "UTD_JOINT_NAMES",
    "load_utd_skeleton",
    "parse_utd_name",
    "load_kinect_v1",
]

# UTD-MHAD joint order (its documentation), written with the KINECT20 joint names.
UTD_JOINT_NAMES = (
    "head", "shoulder center", "spine", "hip center",
    "left shoulder", "left elbow", "left wrist", "left hand",
    "right shoulder", "right elbow", "right wrist", "right hand",
    "left hip", "left knee", "left ankle", "left foot",
    "right hip", "right knee", "right ankle", "right foot",
)
UTD_KEY = "d_skel"
_UTD_NAME = re.compile(r"^a(\d+)_s(\d+)_t(\d+)")


class KinectV1Error(ValueError):
    """A Kinect-v1 skeleton file is unusable; the message names the file."""


def _reorder(x: np.ndarray, order: Sequence[str], path: str) -> np.ndarray:
    order = list(order)
    if len(order) != 20 or sorted(order) != sorted(KINECT20.joint_names):
        raise KinectV1Error(f"{path}: joint order must name the 20 Kinect-v1 joints of KINECT20 once each")
    return x[:, [order.index(n) for n in KINECT20.joint_names]]


def _check(x: np.ndarray, path: str) -> np.ndarray:
    x = np.asarray(x)
    if x.dtype.kind not in "fiu":
        raise KinectV1Error(f"{path}: skeleton array has non-numeric dtype {x.dtype}")
    if x.ndim == 3 and x.shape[1:] == (20, 3):
        out = x
    elif x.ndim == 3 and x.shape[:2] == (20, 3):  # V x C x T (UTD d_skel)
        out = x.transpose(2, 0, 1)
    else:
        raise KinectV1Error(f"{path}: expected T x 20 x 3 or 20 x 3 x T, got shape {x.shape}")
    if out.shape[0] < 1:
        raise KinectV1Error(f"{path}: no frames")
    with np.errstate(over="ignore"):  # beyond float32 -> inf, refused below
        out = out.astype(np.float32)
    if not np.isfinite(out).all():
        raise KinectV1Error(f"{path}: contains NaN or infinite coordinates")
    return out


def _load_mat(path: Path, key: str | None) -> np.ndarray:
    from scipy.io import loadmat

    try:
        mat = loadmat(str(path))
    except Exception as exc:  # scipy raises several types for damaged files
        raise KinectV1Error(f"{path}: cannot read .mat file ({exc})") from None
    keys = [k for k in mat if not k.startswith("__")]
    if key is None:
        if len(keys) != 1:
            raise KinectV1Error(f"{path}: pass key=...; the file holds {keys}")
        key = keys[0]
    if key not in mat:
        raise KinectV1Error(f"{path}: missing key {key!r} (has {keys})")
    return mat[key]


def load_utd_skeleton(path: str | os.PathLike[str]) -> np.ndarray:
    """T x 20 x 3 float32 in ``KINECT20`` order from a UTD-MHAD ``*_skeleton.mat`` file."""
    p = Path(path)
    return _reorder(_check(_load_mat(p, UTD_KEY), str(p)), UTD_JOINT_NAMES, str(p))


def parse_utd_name(path: str | os.PathLike[str]) -> tuple[int, int, int]:
    """(action, subject, trial) of ``aA_sS_tT_...``."""
    m = _UTD_NAME.match(Path(path).name)
    if not m:
        raise KinectV1Error(f"{path}: not a UTD-MHAD name (aA_sS_tT_...)")
    a, s, t = (int(g) for g in m.groups())
    return a, s, t


def load_kinect_v1(
    path: str | os.PathLike[str], joint_order: Sequence[str] = KINECT20.joint_names, *, key: str | None = None
) -> np.ndarray:
    """T x 20 x 3 float32 in ``KINECT20`` order from a per-sample .npy, .mat or .json file.

    The stored array is T x 20 x 3 or 20 x 3 x T with joints in ``joint_order``. JSON: an array, or an
    object whose ``key`` (default ``"skeletons"``, as NW-UCLA) holds it. .mat: ``key`` or the only variable.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix == ".npy":
        try:
            arr = np.load(p, allow_pickle=False)
        except READ_ERRORS as exc:
            raise KinectV1Error(f"{p}: cannot read .npy ({exc})") from None
    elif suffix == ".mat":
        arr = _load_mat(p, key)
    elif suffix == ".json":
        try:
            obj = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise KinectV1Error(f"{p}: cannot read JSON ({exc})") from None
        if isinstance(obj, dict):
            k = key or "skeletons"
            if k not in obj:
                raise KinectV1Error(f"{p}: missing key {k!r} (has {sorted(obj)})")
            obj = obj[k]
        try:
            arr = np.asarray(obj, dtype=np.float64)
        except (TypeError, ValueError):
            raise KinectV1Error(f"{p}: skeleton is not a rectangular numeric array") from None
    else:
        raise KinectV1Error(f"{p}: unsupported file type {suffix!r} (use .npy, .mat or .json)")
    return _reorder(_check(arr, str(p)), joint_order, str(p))
