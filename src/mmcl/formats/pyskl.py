"""PYSKL annotation pickles, read with a restricted unpickler.

A PYSKL dataset is one pickle: ``{"split": {"xsub_train": [frame_dir, ...], ...}, "annotations": [ann, ...]}``
(older files: the list of annotations alone), each ``ann`` a dict with ``frame_dir`` (the sample name),
``label``, ``keypoint`` (M×T×V×C; C = 2 for 2-D keypoints, 3 for 3-D joints), ``keypoint_score``
(M×T×V, 2-D), ``img_shape`` (height, width) and ``total_frames``.

A pickle can run any code when it is loaded, so :class:`SafeUnpickler` resolves only plain Python
containers and numbers and numpy's array/dtype/scalar reconstructors; anything else (``os.system``,
``builtins.eval``, any class) is refused with :class:`DataError` before it is called.
"""

from __future__ import annotations

import io
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mmcl.formats.errors import DataError
from mmcl.formats.pose2d import PoseFrames

__all__ = ["SafeUnpickler", "safe_load_pickle", "PysklSample", "read_pyskl", "PYSKL_SUFFIXES"]

PYSKL_SUFFIXES = (".pkl", ".pickle")
_ALLOWED = {
    ("builtins", n) for n in ("dict", "list", "tuple", "set", "frozenset", "int", "float", "complex", "str", "bytes",
                              "bytearray", "bool", "slice", "range")
} | {
    (m, n) for m in ("numpy.core.multiarray", "numpy._core.multiarray") for n in ("_reconstruct", "scalar")
} | {
    (m, "_frombuffer") for m in ("numpy.core.numeric", "numpy._core.numeric")
} | {("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"), ("collections", "OrderedDict")}


class SafeUnpickler(pickle.Unpickler):
    """An unpickler that builds containers, numbers, strings and numpy arrays, and nothing else."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"refuses to load {module}.{name} (a pickle may only hold data here)")
        return super().find_class(module, name)

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("refuses persistent references")


def safe_load_pickle(path: str | Path) -> Any:
    """Load a data-only pickle; DataError naming the file for anything else or a damaged file."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read ({exc.strerror or exc})", path) from None
    try:
        return SafeUnpickler(io.BytesIO(data)).load()
    except pickle.UnpicklingError as exc:
        raise DataError(f"unsafe or damaged pickle: {exc}", path) from None
    except (EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError, MemoryError, OverflowError,
            RecursionError, UnicodeDecodeError, ImportError) as exc:
        text = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        raise DataError(f"is not a readable pickle ({text})", path) from None


@dataclass
class PysklSample:
    """One annotation: 2-D keypoints as :class:`PoseFrames` or 3-D joints ``xyz`` (3×T×V×M)."""

    name: str
    label: int | None
    pose: PoseFrames | None
    xyz: np.ndarray | None


def _array(value: Any, path: Path, what: str, ndim: int) -> np.ndarray:
    if not isinstance(value, np.ndarray) or value.ndim != ndim or value.dtype.kind not in "fiu":
        shape = getattr(value, "shape", None)
        raise DataError(f"{what} must be a numeric {ndim}-D array, got {type(value).__name__} {shape}", path)
    with np.errstate(all="ignore"):  # non-finite values are dealt with per keypoint later
        return value.astype(np.float64)


def _sample(ann: Any, path: Path, k: int) -> PysklSample:
    if not isinstance(ann, dict):
        raise DataError(f"annotation {k} is not a dict", path)
    name = ann.get("frame_dir")
    if not isinstance(name, str) or not name or "\n" in name:
        raise DataError(f"annotation {k}: frame_dir must be a one-line name, got {name!r}", path)
    label = ann.get("label")
    label = int(label) if isinstance(label, int | np.integer) and not isinstance(label, bool) and label >= 0 else None
    kp = _array(ann.get("keypoint"), path, f"annotation {name}: keypoint", 4)
    m, t, v, c = kp.shape
    if min(m, t, v) < 1 or c not in (2, 3):
        raise DataError(f"annotation {name}: keypoint is M×T×V×C with C = 2 or 3, got shape {kp.shape}", path)
    if c == 3 and "keypoint_score" not in ann:
        return PysklSample(name, label, None, np.ascontiguousarray(kp.transpose(3, 1, 2, 0)).astype(np.float32))
    if "keypoint_score" in ann:
        score = _array(ann["keypoint_score"], path, f"annotation {name}: keypoint_score", 3)
        if score.shape != (m, t, v):
            raise DataError(f"annotation {name}: keypoint_score {score.shape} does not match keypoint {kp.shape}", path)
    else:
        score = np.ones((m, t, v))
    size = None
    shape = ann.get("img_shape")
    if isinstance(shape, tuple | list) and len(shape) == 2 and all(isinstance(s, int | float | np.integer) for s in shape):
        size = (float(shape[1]), float(shape[0]))  # PYSKL stores (height, width)
    ids = [np.arange(m)] * t  # PYSKL's persons are already slots: the slot is the identity
    pose = PoseFrames([kp[:, f, :, :2] for f in range(t)], [score[:, f] for f in range(t)], ids, size)
    return PysklSample(name, label, pose, None)


def read_pyskl(path: str | Path) -> tuple[list[PysklSample], dict[str, list[str]]]:
    """Every annotation of a PYSKL pickle and its splits (``{}`` when it has none)."""
    path = Path(path)
    doc = safe_load_pickle(path)
    if isinstance(doc, list):
        anns, split = doc, {}
    elif isinstance(doc, dict) and "annotations" in doc:
        anns, split = doc["annotations"], doc.get("split") or {}
    elif isinstance(doc, dict) and "keypoint" in doc:
        anns, split = [doc], {}
    else:
        raise DataError('is not a PYSKL annotation file (a dict with "annotations", or a list of annotations)', path)
    if not isinstance(anns, list) or not isinstance(split, dict):
        raise DataError('"annotations" must be a list and "split" a dict', path)
    for key, names in split.items():
        if not isinstance(key, str) or not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise DataError(f"split {key!r} must list frame_dir names", path)
    return [_sample(a, path, k) for k, a in enumerate(anns)], split
