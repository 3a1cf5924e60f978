"""One raw skeleton file -> ``C×T×V×M`` coordinates: the reader every command that takes files uses.

============  ======================================================================================
``.skeleton`` raw NTU RGB+D text file: reference parse + denoise + centring (:mod:`mmcl.formats.ntu`)
``.json``     NW-UCLA ``all_sqe`` file (T×20×3, Kinect v1; :mod:`mmcl.formats.nwucla`)
``.mat``      UTD-MHAD ``*_skeleton.mat`` (``d_skel``, Kinect v1; :mod:`mmcl.formats.kinect_v1`)
``.npy``      a prepared array, already centred as in a prepared folder: ``C×T×V×M``, ``T×V×C``
              (one person) or ``T×(M·V·C)`` (one row of ``x_*.npy``); V = 25 (NTU) or 20 (Kinect v1)
============  ======================================================================================

Errors are :class:`SkeletonFileError` naming the file and the problem.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mmcl.formats.errors import READ_ERRORS
from mmcl.formats.kinect_v1 import load_utd_skeleton
from mmcl.formats.ntu import process_file
from mmcl.formats.nwucla import read_nwucla_json
from mmcl.skeleton.layouts import LAYOUT_BY_JOINTS

__all__ = ["SUPPORTED_SUFFIXES", "SkeletonFileError", "RawSkeleton", "read_skeleton_file", "expand_inputs"]

SUPPORTED_SUFFIXES = (".skeleton", ".json", ".mat", ".npy")


class SkeletonFileError(ValueError):
    """A skeleton file cannot be read; the message names the file."""


@dataclass
class RawSkeleton:
    """One sample as read from disk: ``data`` C×T×V×M float32 (V = 25 NTU order, or 20 ``KINECT20`` order)."""

    kind: str  # ntu-skeleton | nwucla-json | utd-mat | npy
    data: np.ndarray
    num_actors: int  # persons actually present (NTU lone actor: 1)
    centred: bool  # already centred by the reader (NTU reference pipeline / prepared arrays)


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
    if arr.ndim == 4 and arr.shape[0] == 3 and arr.shape[2] in LAYOUT_BY_JOINTS:  # C×T×V×M
        x = arr
    elif arr.ndim == 3 and arr.shape[1] in LAYOUT_BY_JOINTS and arr.shape[2] == 3:  # T×V×C, one person
        x = arr.transpose(2, 0, 1)[..., None]
    elif arr.ndim == 2 and arr.shape[1] % 3 == 0 and any(arr.shape[1] % (3 * v) == 0 for v in (25, 20)):  # T×(M·V·C)
        v = 25 if arr.shape[1] % 75 == 0 else 20
        m = arr.shape[1] // (3 * v)
        x = arr.reshape(arr.shape[0], m, v, 3).transpose(3, 0, 2, 1)
    else:
        raise SkeletonFileError(
            f"{path}: expected a C×T×V×M, T×V×C or T×(M·V·C) array with C = 3 and V = 25 or 20, got shape {arr.shape}"
        )
    if x.shape[1] < 1:
        raise SkeletonFileError(f"{path}: no frames")
    if not np.isfinite(x).all():
        raise SkeletonFileError(f"{path}: contains NaN or infinite coordinates")
    persons = int(sum(bool(np.any(x[..., m])) for m in range(x.shape[-1])))
    return RawSkeleton("npy", np.ascontiguousarray(x), max(persons, 1), True)


def read_skeleton_file(path: str | os.PathLike[str]) -> RawSkeleton:
    """Read one skeleton file of a supported kind (see the module docstring); errors name the file."""
    p = Path(path)
    if not p.is_file():
        raise SkeletonFileError(f"{p}: file not found" if not p.exists() else f"{p}: not a file")
    suffix = p.suffix.lower()
    if suffix == ".skeleton":
        sample = process_file(p)
        t = sample.joints.shape[0]
        x = sample.joints.reshape(t, 2, 25, 3).transpose(3, 0, 2, 1)  # T×(M·V·C) -> C×T×V×M (REFERENCE §2.8)
        return RawSkeleton("ntu-skeleton", np.ascontiguousarray(x, dtype=np.float32), int(sample.num_actors), True)
    if suffix == ".json":
        return _kinect_seq_to_raw(read_nwucla_json(p), "nwucla-json")
    if suffix == ".mat":
        return _kinect_seq_to_raw(load_utd_skeleton(p), "utd-mat")
    if suffix == ".npy":
        return _read_npy(p)
    raise SkeletonFileError(f"{p}: unsupported file type {suffix or '(none)'!r}; use .skeleton, .json, .mat or .npy")


def expand_inputs(paths: Sequence[str | os.PathLike[str]]) -> list[str]:
    """Files as given; a folder means every supported file below it (sorted). An empty folder is an error."""
    out: list[str] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(str(f) for f in p.rglob("*") if f.is_file() and f.suffix.lower() in SUPPORTED_SUFFIXES)
            if not found:
                raise SkeletonFileError(f"{p}: a folder without skeleton files ({', '.join(SUPPORTED_SUFFIXES)})")
            out += found
        else:
            out.append(os.fspath(p))
    return out
