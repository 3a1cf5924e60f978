"""2-D keypoints from a pose estimator -> the C×T×V×M sample every model reads (channels x, y, score).

Every 2-D reader (Kinetics-Skeleton JSON, OpenPose JSON folders, COCO-style JSON, PYSKL pickles) returns
a :class:`PoseFrames`; :func:`pose_to_sample` then does what is the same for all of them, so training
data and a raw file given to ``mmcl predict`` go through one path:

1. **Persons.** Detections without identities are linked into tracks frame to frame by box overlap
   (greedy, highest IoU first, :data:`TRACK_IOU` at least); then the ``persons`` tracks with the highest
   mean keypoint score over the sequence (absent frames count 0) are kept, best first (the score
   PYSKL's and ST-GCN's Kinetics pipelines rank people by).
2. **Coordinates** (:data:`NORMALISATIONS`): ``image``: ``(x - w/2) / (w/2)``, ``(y - h/2) / (h/2)``, i.e.
   [-1, 1] over the frame, as PYSKL's ``PreNormalize2D`` (needs the image size: from the file, or given);
   ``box``: centre on the middle of the box around every keypoint of the kept persons over the whole
   sequence and divide by half its longer side (no image size needed; removes position and scale);
   ``none``: pixels as given.
3. **Missing keypoints** (score 0, or non-finite coordinates) become 0 in all three channels, as the
   zero-padded persons and frames do.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mmcl.formats.errors import DataError

__all__ = ["PoseFrames", "NORMALISATIONS", "TRACK_IOU", "pose_to_sample", "track_people", "CHANNELS_2D", "read_json", "number_array", "small_int"]

NORMALISATIONS = ("image", "box", "none")
TRACK_IOU = 0.3  # least box overlap that continues a track from one frame to the next
CHANNELS_2D = ("x", "y", "score")


@dataclass
class PoseFrames:
    """What a 2-D reader returns for one sample.

    ``keypoints[t]``: P_t×V×2 pixel (or normalised) coordinates of the people detected in frame t;
    ``scores[t]``: P_t×V keypoint confidences; ``track_ids[t]``: P_t identities, or None when the format
    has none (they are then tracked by box overlap); ``image_size``: (width, height) when the file says.
    """

    keypoints: list[np.ndarray]
    scores: list[np.ndarray]
    track_ids: list[np.ndarray] | None = None
    image_size: tuple[float, float] | None = None

    @property
    def num_frames(self) -> int:
        return len(self.keypoints)


def _boxes(kp: np.ndarray, sc: np.ndarray) -> np.ndarray:
    """P×4 boxes (x1, y1, x2, y2) around the visible keypoints; NaN rows for people with none."""
    vis = (sc > 0)[..., None] & np.isfinite(kp)
    big = np.where(vis, kp, np.nan)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "All-NaN slice": a person with no visible keypoint
        return np.concatenate([np.nanmin(big, axis=1), np.nanmax(big, axis=1)], axis=1)


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix of two box sets (NaN boxes overlap nothing)."""
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = lambda z: np.clip(z[:, 2] - z[:, 0], 0, None) * np.clip(z[:, 3] - z[:, 1], 0, None)  # noqa: E731
    union = area(a)[:, None] + area(b)[None, :] - inter
    with np.errstate(all="ignore"):
        out = np.where(union > 0, inter / union, 0.0)
    return np.nan_to_num(out, nan=0.0)


def track_people(pose: PoseFrames) -> list[np.ndarray]:
    """Track index of every detection, per frame (the file's identities, or box-overlap tracking)."""
    if pose.track_ids is not None:
        uniq = {v: i for i, v in enumerate(sorted({int(v) for ids in pose.track_ids for v in ids}))}
        return [np.array([uniq[int(v)] for v in ids], dtype=np.int64) for ids in pose.track_ids]
    out: list[np.ndarray] = []
    last_box: dict[int, np.ndarray] = {}
    next_id = 0
    for kp, sc in zip(pose.keypoints, pose.scores):
        ids = np.full(len(kp), -1, dtype=np.int64)
        if len(kp):
            boxes = _boxes(kp, sc)
            tracks = list(last_box)
            if tracks:
                iou = _iou(boxes, np.stack([last_box[t] for t in tracks]))
                for flat in np.argsort(-iou, axis=None):
                    d, k = divmod(int(flat), len(tracks))
                    if iou[d, k] < TRACK_IOU:
                        break
                    if ids[d] < 0 and tracks[k] not in ids:
                        ids[d] = tracks[k]
            for d in range(len(kp)):
                if ids[d] < 0:
                    ids[d], next_id = next_id, next_id + 1
                if np.isfinite(boxes[d]).all():
                    last_box[int(ids[d])] = boxes[d]
        out.append(ids)
    return out


def pose_to_sample(pose: PoseFrames, *, persons: int, num_joints: int, normalise: str = "image",
                   image_size: Sequence[float] | None = None) -> np.ndarray:
    """``3×T×V×persons`` float32 (x, y, score) of the ``persons`` best tracks; see the module docstring.

    Raises ValueError for a sequence without frames or keypoints, a joint count that is not the
    layout's, or ``image`` normalisation without an image size.
    """
    if normalise not in NORMALISATIONS:
        raise ValueError(f"normalisation must be one of {', '.join(NORMALISATIONS)}, got {normalise!r}")
    t = pose.num_frames
    if t < 1:
        raise ValueError("no frames")
    for kp, sc in zip(pose.keypoints, pose.scores):
        if kp.ndim != 3 or kp.shape[1:] != (num_joints, 2) or sc.shape != kp.shape[:2]:
            raise ValueError(f"keypoints of shape {kp.shape} (scores {sc.shape}) do not fit the layout's {num_joints} joints × (x, y)")
    ids = track_people(pose)
    n_tracks = int(max((i.max() for i in ids if i.size), default=-1)) + 1
    if n_tracks == 0:
        raise ValueError("no person detected in any frame")
    x = np.zeros((n_tracks, t, num_joints, 3), dtype=np.float64)
    for f, (kp, sc, tid) in enumerate(zip(pose.keypoints, pose.scores, ids)):
        for d in range(len(kp)):
            if x[tid[d], f, :, 2].any():  # two detections on one track in a frame: keep the better one
                if sc[d].mean() <= x[tid[d], f, :, 2].mean():
                    continue
            x[tid[d], f, :, :2] = kp[d]
            x[tid[d], f, :, 2] = sc[d]
    bad = ~np.isfinite(x).all(axis=-1) | ~(x[..., 2] > 0)
    x[bad] = 0.0
    rank = np.argsort(-x[..., 2].mean(axis=(1, 2)), kind="stable")[:persons]
    x = x[rank]
    if not (x[..., 2] > 0).any():
        raise ValueError("no keypoint with a positive score")
    vis = x[..., 2] > 0
    if normalise == "image":
        size = image_size if image_size is not None else pose.image_size
        if size is None:
            raise ValueError("the file gives no image size: pass it (--image-size WxH) or use --normalise box")
        w, h = (float(v) for v in size)
        if not (w > 0 and h > 0 and np.isfinite(w) and np.isfinite(h)):
            raise ValueError(f"image size must be two positive numbers, got {tuple(size)}")
        x[..., 0] = np.where(vis, (x[..., 0] - w / 2) / (w / 2), 0.0)
        x[..., 1] = np.where(vis, (x[..., 1] - h / 2) / (h / 2), 0.0)
    elif normalise == "box":
        pts = x[..., :2][vis]
        lo, hi = pts.min(axis=0), pts.max(axis=0)
        centre, half = (lo + hi) / 2, max(float((hi - lo).max()) / 2, 1e-6)
        x[..., :2] = np.where(vis[..., None], (x[..., :2] - centre) / half, 0.0)
    out = np.zeros((3, t, num_joints, persons), dtype=np.float32)
    with np.errstate(over="ignore", invalid="ignore"):
        out[..., : len(rank)] = x.transpose(3, 1, 2, 0).astype(np.float32)
    if not np.isfinite(out).all():
        raise ValueError("coordinates overflow float32")
    return out


def read_json(path: Path) -> Any:
    """A JSON document; DataError naming the file for anything unreadable (bad encoding, syntax, nesting)."""
    try:
        return json.loads(path.read_bytes())
    except OSError as exc:
        raise DataError(f"cannot read ({exc.strerror or exc})", path) from None
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        text = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        raise DataError(f"is not valid JSON ({text})", path) from None


def number_array(value: Any, path: Path, what: str) -> np.ndarray:
    """A flat list of numbers as float64 (DataError naming ``what`` otherwise; null -> NaN, a missing keypoint)."""
    if not isinstance(value, list) or not all(isinstance(v, int | float) and not isinstance(v, bool) or v is None for v in value):
        raise DataError(f"{what} must be a list of numbers", path)
    try:
        with np.errstate(over="ignore"):
            return np.array([np.nan if v is None else v for v in value], dtype=np.float64)
    except OverflowError:
        raise DataError(f"{what} holds a number too large for a coordinate", path) from None


def small_int(value: Any) -> int | None:
    """``value`` when it is an int that fits an identity (|v| < 2**62), else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) and abs(value) < 2**62 else None
