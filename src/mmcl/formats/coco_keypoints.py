"""COCO-style keypoint JSON for one clip: ``keypoints`` ``[x, y, v] × V`` per person per frame.

Two shapes are read: the annotation file (``{"images": [...], "annotations": [...]}``; frames are the
images in ``frame_id``/``frame_index`` order, else by ``id``; the frame size comes from the first
image's ``width``/``height``; ``track_id`` gives identities, as in PoseTrack) and the results list a
detector writes for evaluation (``[{"image_id", "keypoints", "score"}, ...]``; frames by ``image_id``).
The third value is the keypoint confidence; in annotation files it is the visibility flag (0, 1, 2),
so when every value is 0, 1 or 2 it becomes 1 for a labelled keypoint and 0 otherwise.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mmcl.formats.errors import DataError
from mmcl.formats.pose2d import PoseFrames, number_array, read_json, small_int

__all__ = ["read_coco_keypoints", "is_coco_keypoints"]


def is_coco_keypoints(doc: object) -> bool:
    if isinstance(doc, dict):
        return isinstance(doc.get("annotations"), list)
    return isinstance(doc, list) and bool(doc) and all(isinstance(a, dict) and "keypoints" in a for a in doc[:5])


def _int(value: Any, path: Path, what: str) -> int:
    if small_int(value) is None:
        raise DataError(f"{what} must be an integer, got {str(value)[:40]}", path)
    return value


def read_coco_keypoints(path: str | Path, doc: object = None) -> PoseFrames:
    """The clip's people per frame; DataError naming the file otherwise."""
    path = Path(path)
    doc = read_json(path) if doc is None else doc
    if not is_coco_keypoints(doc):
        raise DataError('is not COCO-style keypoint JSON ("annotations" list, or a list of results with "keypoints")', path)
    size = None
    if isinstance(doc, dict):
        images = doc.get("images") or []
        if not isinstance(images, list) or not all(isinstance(im, dict) for im in images):
            raise DataError('"images" must be a list of objects', path)
        order_key = next((k for k in ("frame_id", "frame_index") if images and all(k in im for im in images)), "id")
        ordered = sorted(images, key=lambda im: _int(im.get(order_key), path, f"images[].{order_key}"))
        frame_of = {_int(im.get("id"), path, "images[].id"): i for i, im in enumerate(ordered)}
        if ordered and all(isinstance(ordered[0].get(k), int | float) for k in ("width", "height")):
            size = (float(ordered[0]["width"]), float(ordered[0]["height"]))
        anns = doc["annotations"]
    else:
        anns = doc
        frame_of = {i: k for k, i in enumerate(sorted({_int(a.get("image_id"), path, "image_id") for a in anns if isinstance(a, dict)}))}
    per_frame: dict[int, list[tuple[np.ndarray, int | None]]] = {}
    v = None
    for k, ann in enumerate(anns):
        if not isinstance(ann, dict):
            raise DataError(f"annotation {k} is not an object", path)
        image = _int(ann.get("image_id"), path, f"annotation {k}: image_id")
        if image not in frame_of:
            if isinstance(doc, dict) and doc.get("images"):
                raise DataError(f"annotation {k}: image_id {image} is not among the images", path)
            frame_of[image] = len(frame_of)
        flat = number_array(ann.get("keypoints"), path, f"annotation {k}: keypoints")
        if v is None:
            v = len(flat) // 3
        if len(flat) != 3 * v or v == 0:
            raise DataError(f"annotation {k}: {len(flat)} keypoint values; expected 3·V with V = {v}", path)
        track = ann.get("track_id")
        per_frame.setdefault(frame_of[image], []).append((flat.reshape(v, 3), small_int(track)))
    if v is None:
        raise DataError("holds no person annotation", path)
    t = max(len(frame_of), max(per_frame) + 1)
    third = np.concatenate([kp[:, 2] for people in per_frame.values() for kp, _ in people])
    flags = bool(np.isin(third[np.isfinite(third)], (0, 1, 2)).all())
    keypoints, scores, ids = [], [], []
    for f in range(t):
        people = per_frame.get(f, [])
        keypoints.append(np.stack([kp[:, :2] for kp, _ in people]) if people else np.zeros((0, v, 2)))
        sc = np.stack([kp[:, 2] for kp, _ in people]) if people else np.zeros((0, v))
        scores.append((sc > 0).astype(np.float64) if flags else sc)
        ids.append(np.array([-1 if tid is None else tid for _, tid in people], dtype=np.int64))
    known = all((i >= 0).all() and len(set(i.tolist())) == i.size for i in ids)
    return PoseFrames(keypoints, scores, ids if known else None, size)
