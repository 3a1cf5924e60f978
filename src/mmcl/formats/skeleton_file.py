"""One raw skeleton file -> ``C×T×V×M`` coordinates: the reader every command that takes files uses.

============  ======================================================================================
``.skeleton`` raw NTU RGB+D text file: reference parse + denoise + centring (:mod:`mmcl.formats.ntu`)
``.json``     NW-UCLA ``all_sqe`` file (T×20×3, Kinect v1; :mod:`mmcl.formats.nwucla`)
``.mat``      UTD-MHAD ``*_skeleton.mat`` (``d_skel``, Kinect v1; :mod:`mmcl.formats.kinect_v1`)
``.npy``      a prepared array, already centred as in a prepared folder: ``C×T×V×M``, ``T×V×C``
              (one person) or ``T×(M·V·C)`` (one row of ``x_*.npy``); V of a built-in layout; C = 3
              (x, y, z or x, y, score) or 2 (x, y)
2-D keypoints (need ``pose``, the model's :class:`Pose2DInput`; channels x, y, score):
``.json``     Kinetics-Skeleton (``data``, :mod:`.kinetics_json`) or COCO-style keypoints
              (``annotations``/results list, :mod:`.coco_keypoints`) — told apart from NW-UCLA by content
folder        OpenPose ``*_keypoints.json`` per frame (:mod:`.openpose_json`)
``.pkl``      a PYSKL annotation pickle holding one sample (:mod:`.pyskl`, restricted unpickler)
============  ======================================================================================

Errors are :class:`SkeletonFileError` or :class:`~mmcl.formats.errors.DataError` (both ValueErrors) naming
the file and the problem.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mmcl.formats.coco_keypoints import is_coco_keypoints, read_coco_keypoints
from mmcl.formats.errors import READ_ERRORS
from mmcl.formats.kinect_v1 import load_utd_skeleton
from mmcl.formats.kinetics_json import is_kinetics_json, read_kinetics_json
from mmcl.formats.ntu import process_file
from mmcl.formats.nwucla import read_nwucla_json
from mmcl.formats.openpose_json import read_openpose_folder
from mmcl.formats.pose2d import CHANNELS_2D, PoseFrames, pose_to_sample, read_json
from mmcl.formats.pyskl import PYSKL_SUFFIXES, read_pyskl
from mmcl.formats.sample_store import CHANNELS_XYZ
from mmcl.skeleton.layouts import LAYOUT_BY_JOINTS

__all__ = ["SUPPORTED_SUFFIXES", "SkeletonFileError", "RawSkeleton", "Pose2DInput", "read_skeleton_file", "expand_inputs"]

SUPPORTED_SUFFIXES = (".skeleton", ".json", ".mat", ".npy", *PYSKL_SUFFIXES)


@dataclass(frozen=True)
class Pose2DInput:
    """How a model trained on 2-D keypoints turns a pose file into its input (from its model card)."""

    num_joints: int
    persons: int
    normalise: str
    image_size: tuple[float, ...] = ()

    def sample(self, pose: PoseFrames) -> np.ndarray:
        return pose_to_sample(pose, persons=self.persons, num_joints=self.num_joints, normalise=self.normalise,
                              image_size=self.image_size or None)


class SkeletonFileError(ValueError):
    """A skeleton file cannot be read; the message names the file."""


@dataclass
class RawSkeleton:
    """One sample as read from disk: ``data`` C×T×V×M float32 (V = 25 NTU order, or 20 ``KINECT20`` order)."""

    kind: str  # ntu-skeleton | nwucla-json | utd-mat | npy | kinetics-json | coco-json | openpose-json | pyskl
    data: np.ndarray
    num_actors: int  # persons actually present (NTU lone actor: 1)
    centred: bool  # already centred by the reader (NTU reference pipeline / prepared arrays)
    channels: tuple[str, ...] | None = CHANNELS_XYZ  # None: a .npy file, which does not say


def _kinect_seq_to_raw(seq: np.ndarray, kind: str) -> RawSkeleton:
    return RawSkeleton(kind, np.ascontiguousarray(seq.transpose(2, 0, 1)[..., None]), 1, False)


_NPY_MAGIC = b"\x93NUMPY"  # numpy.lib.format: every .npy file starts with it


def _read_npy(path: Path) -> RawSkeleton:
    try:
        with open(path, "rb") as fh:
            head = fh.read(len(_NPY_MAGIC))
        if not head:
            raise SkeletonFileError(f"{path}: empty file (0 bytes)")
        if head != _NPY_MAGIC:
            raise SkeletonFileError(f"{path}: not a NumPy .npy file (it does not start with the .npy header)")
        arr = np.load(path, allow_pickle=False)
    except SkeletonFileError:
        raise
    except READ_ERRORS as exc:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else "truncated file"
        if "pickle" in text:
            text = "it holds Python objects (pickled data), not a numeric array"
        raise SkeletonFileError(f"{path}: cannot read .npy ({text})") from None
    if arr.dtype.kind not in "fiu":
        raise SkeletonFileError(f"{path}: array has non-numeric dtype {arr.dtype}")
    with np.errstate(over="ignore"):  # beyond float32 -> inf, refused below
        arr = arr.astype(np.float32)
    if arr.ndim == 4 and arr.shape[0] in (2, 3) and arr.shape[2] in LAYOUT_BY_JOINTS:  # C×T×V×M
        x = arr
    elif arr.ndim == 3 and arr.shape[1] in LAYOUT_BY_JOINTS and arr.shape[2] in (2, 3):  # T×V×C, one person
        x = arr.transpose(2, 0, 1)[..., None]
    elif arr.ndim == 2 and arr.shape[1] % 3 == 0 and any(arr.shape[1] % (3 * v) == 0 for v in (25, 20)):  # T×(M·V·C)
        v = 25 if arr.shape[1] % 75 == 0 else 20
        m = arr.shape[1] // (3 * v)
        x = arr.reshape(arr.shape[0], m, v, 3).transpose(3, 0, 2, 1)
    else:
        raise SkeletonFileError(
            f"{path}: expected a C×T×V×M, T×V×C or T×(M·V·C) array with C = 3 or 2 and V the joint count of a "
            f"built-in layout ({', '.join(map(str, sorted(LAYOUT_BY_JOINTS)))}), got shape {arr.shape}"
        )
    if x.shape[1] < 1:
        raise SkeletonFileError(f"{path}: no frames")
    if not np.isfinite(x).all():
        raise SkeletonFileError(f"{path}: contains NaN or infinite coordinates")
    persons = int(sum(bool(np.any(x[..., m])) for m in range(x.shape[-1])))
    return RawSkeleton("npy", np.ascontiguousarray(x), max(persons, 1), True, None)


def _pose_raw(kind: str, pose: PoseFrames, options: Pose2DInput | None, path: Path) -> RawSkeleton:
    if options is None:
        raise SkeletonFileError(f"{path}: 2-D keypoints ({kind}); they need a model trained on 2-D keypoints (channels x, y, score)")
    try:
        x = options.sample(pose)
    except ValueError as exc:
        raise SkeletonFileError(f"{path}: {exc}") from None
    persons = int(sum(bool(np.any(x[..., m])) for m in range(x.shape[-1])))
    return RawSkeleton(kind, x, max(persons, 1), True, CHANNELS_2D)


def read_skeleton_file(path: str | os.PathLike[str], *, pose: Pose2DInput | None = None) -> RawSkeleton:
    """Read one skeleton file (or OpenPose folder) of a supported kind (see the module docstring);
    errors name the file. ``pose`` says how to turn 2-D keypoints into the model's input."""
    p = Path(path)
    if p.is_dir():
        return _pose_raw("openpose-json", read_openpose_folder(p), pose, p)
    if not p.is_file():
        raise SkeletonFileError(f"{p}: file not found" if not p.exists() else f"{p}: not a file")
    suffix = p.suffix.lower()
    if suffix == ".skeleton":
        sample = process_file(p)
        t = sample.joints.shape[0]
        x = sample.joints.reshape(t, 2, 25, 3).transpose(3, 0, 2, 1)  # T×(M·V·C) -> C×T×V×M (REFERENCE §2.8)
        return RawSkeleton("ntu-skeleton", np.ascontiguousarray(x, dtype=np.float32), int(sample.num_actors), True)
    if suffix == ".json":
        doc = read_json(p)
        if is_kinetics_json(doc):
            return _pose_raw("kinetics-json", read_kinetics_json(p, doc)[0], pose, p)
        if is_coco_keypoints(doc):
            return _pose_raw("coco-json", read_coco_keypoints(p, doc), pose, p)
        return _kinect_seq_to_raw(read_nwucla_json(p), "nwucla-json")
    if suffix == ".mat":
        return _kinect_seq_to_raw(load_utd_skeleton(p), "utd-mat")
    if suffix == ".npy":
        return _read_npy(p)
    if suffix in PYSKL_SUFFIXES:
        samples, _ = read_pyskl(p)
        if len(samples) != 1:
            raise SkeletonFileError(f"{p}: holds {len(samples)} samples; give a file with one, or prepare it with `mmcl prepare custom`")
        one = samples[0]
        if one.xyz is not None:
            return RawSkeleton("pyskl", one.xyz, int(sum(bool(np.any(one.xyz[..., m])) for m in range(one.xyz.shape[-1]))) or 1, False)
        return _pose_raw("pyskl", one.pose, pose, p)
    raise SkeletonFileError(f"{p}: unsupported file type {suffix or '(none)'!r}; use {', '.join(SUPPORTED_SUFFIXES)} or an OpenPose folder")


def expand_inputs(paths: Sequence[str | os.PathLike[str]]) -> list[str]:
    """Files as given; a folder means every supported file below it (sorted). An empty folder is an error."""
    out: list[str] = []
    for p in map(Path, paths):
        if p.is_dir():
            if any(p.glob("*_keypoints.json")):  # an OpenPose clip folder is one sample
                out.append(os.fspath(p))
                continue
            found = sorted(
                [str(f) for f in p.rglob("*") if f.is_file() and f.suffix.lower() in SUPPORTED_SUFFIXES and not f.name.endswith("_keypoints.json")]
                + [str(d) for d in p.rglob("*") if d.is_dir() and any(d.glob("*_keypoints.json"))]
            )
            if not found:
                raise SkeletonFileError(f"{p}: a folder without skeleton files ({', '.join(SUPPORTED_SUFFIXES)})")
            out += found
        else:
            out.append(os.fspath(p))
    return out
