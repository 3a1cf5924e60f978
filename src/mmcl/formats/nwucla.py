"""NW-UCLA ``all_sqe`` JSON files and sample names (REFERENCE §3.3).

Names are ``aAA_sSS_eEE_vVV`` (action, subject, episode, view); the label comes from the action id
(a07 and a10 do not exist), the cross-view split from the view. :func:`read_nwucla_json` raises
:class:`~mmcl.formats.errors.DataError` naming the file and the problem (missing file, invalid
JSON, no frames, ragged or wrong joint/coordinate counts, non-numeric values, NaN/inf — checked
after the cast to float32, so values beyond float32 are caught too).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from mmcl.formats.errors import DataError

__all__ = [
    "NWUCLA_ACTION_TO_LABEL",
    "NWUCLA_VIEWS",
    "NWUCLA_NUM_JOINTS",
    "NWUCLA_NUM_CLASSES",
    "parse_nwucla_name",
    "nwucla_label",
    "nwucla_split_of",
    "read_nwucla_json",
]

# REFERENCE §3.3 / §10.2: action ids a07 and a10 do not exist.
NWUCLA_ACTION_TO_LABEL: dict[int, int] = {1: 0, 2: 1, 3: 2, 4: 3, 5: 4, 6: 5, 8: 6, 9: 7, 11: 8, 12: 9}
# REFERENCE §3.3 cross-view protocol: views 1, 2 train; view 3 test.
NWUCLA_VIEWS: dict[str, tuple[int, ...]] = {"train": (1, 2), "test": (3,)}
NWUCLA_NUM_JOINTS = 20  # Kinect v1 (shared/data/README.md, layout KINECT20)
NWUCLA_NUM_CLASSES = 10
_NAME_RE = re.compile(r"^a(\d{2})_s(\d{2})_e(\d{2})_v(\d{2})$")


def parse_nwucla_name(stem: str) -> tuple[int, int, int, int]:
    """``aAA_sSS_eEE_vVV`` -> ``(action, subject, episode, view)``; ValueError otherwise."""
    m = _NAME_RE.match(stem)
    if m is None:
        raise ValueError(f"{stem!r} is not an NW-UCLA name aAA_sSS_eEE_vVV")
    a, s, e, v = (int(g) for g in m.groups())
    return a, s, e, v


def nwucla_label(stem: str) -> int:
    """0-based label from the file name's action id (REFERENCE §3.3)."""
    action = parse_nwucla_name(stem)[0]
    try:
        return NWUCLA_ACTION_TO_LABEL[action]
    except KeyError:
        raise ValueError(f"{stem!r}: action a{action:02d} is not an NW-UCLA class") from None


def nwucla_split_of(stem: str) -> str:
    """``"train"`` or ``"test"`` by camera view (cross-view protocol)."""
    view = parse_nwucla_name(stem)[3]
    for split, views in NWUCLA_VIEWS.items():
        if view in views:
            return split
    raise ValueError(f"{stem!r}: view {view} is not part of the cross-view protocol")


def read_nwucla_json(path: str | Path) -> np.ndarray:
    """One ``all_sqe`` file -> ``T×20×3`` float32 skeleton sequence; DataError on bad input."""
    p = Path(path)
    if not p.is_file():
        broken = p.is_symlink() and not p.exists()
        raise DataError("a symbolic link to a missing file" if broken else "file does not exist", p)
    try:
        text = p.read_text(encoding="utf-8")
        obj = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"invalid JSON: {exc}", p) from None
    except OSError as exc:  # permission denied, I/O error: this file only, the others still load
        raise DataError(f"cannot be read ({exc.strerror or exc})", p) from None
    if not isinstance(obj, dict) or "skeletons" not in obj:
        raise DataError('no "skeletons" key', p)
    frames = obj["skeletons"]
    if not isinstance(frames, list):
        raise DataError(f'"skeletons" must be a list of frames, got {type(frames).__name__}', p)
    if len(frames) == 0:
        raise DataError("zero frames", p)
    try:
        raw = np.asarray(frames)
    except (ValueError, TypeError):
        raw = np.asarray([], dtype=object)
    if raw.dtype == object or raw.ndim != 3:
        if not all(isinstance(f, list) and all(isinstance(j, list) for j in f) for f in frames):
            raise DataError("each frame must be a list of joints, each joint a list of 3 numbers", p)
        joint_counts = sorted({len(f) for f in frames})
        coords = sorted({len(j) for f in frames for j in f})
        if len(joint_counts) > 1:
            problem = f"wrong joint count (ragged frames, joints per frame: {joint_counts}); expected {NWUCLA_NUM_JOINTS}"
        else:
            problem = f"ragged joints (coordinates per joint: {coords}); expected 3"
        raise DataError(problem, p)
    if ("true" in text or "false" in text) and _holds_bool(frames):  # numpy would read true as 1.0
        raise DataError("coordinates must be numbers, got bool values", p)
    if raw.dtype.kind not in "iuf":
        got = "text" if raw.dtype.kind in "US" else f"{raw.dtype.name}"
        raise DataError(f"coordinates must be numbers, got {got} values", p)
    with np.errstate(over="ignore"):  # values beyond float32 become inf and are refused below
        seq = raw.astype(np.float32)  # the finiteness check is on the values training will see
    if seq.shape[1] != NWUCLA_NUM_JOINTS:
        joints = seq.shape[1] if seq.ndim >= 2 else "?"
        raise DataError(f"wrong joint count {joints} (shape {seq.shape}); expected {NWUCLA_NUM_JOINTS}", p)
    if seq.shape[2] != 3:
        raise DataError(f"expected 3 coordinates per joint, got {seq.shape[2]}", p)
    if not np.isfinite(seq).all():
        bad = int(np.flatnonzero(~np.isfinite(seq).all(axis=(1, 2)))[0])
        raise DataError(f"NaN or infinite coordinates, or beyond float32 (first at frame {bad})", p)
    return seq


def _holds_bool(value: object) -> bool:
    if isinstance(value, bool):
        return True
    return isinstance(value, list) and any(_holds_bool(v) for v in value)
