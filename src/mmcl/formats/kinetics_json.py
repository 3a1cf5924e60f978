"""Kinetics-Skeleton JSON (ST-GCN's format): one file per clip, OpenPose-18 keypoints normalised to [0, 1].

``{"data": [{"frame_index": 1, "skeleton": [{"pose": [x0, y0, x1, y1, ...], "score": [s0, s1, ...]}, ...]}, ...],
"label": "...", "label_index": k}``. ``frame_index`` counts from 1 and may skip frames (they stay empty);
people carry no identity, so :func:`mmcl.formats.pose2d.track_people` links them. Coordinates are already
divided by the frame size, so the image size is (1, 1).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mmcl.formats.errors import DataError
from mmcl.formats.pose2d import PoseFrames, number_array, read_json

__all__ = ["read_kinetics_json", "is_kinetics_json", "MAX_FRAMES"]

MAX_FRAMES = 100_000  # a frame_index beyond this is damage, not a clip


def is_kinetics_json(doc: object) -> bool:
    return isinstance(doc, dict) and isinstance(doc.get("data"), list)


def read_kinetics_json(path: str | Path, doc: object = None) -> tuple[PoseFrames, int | None]:
    """The clip's people per frame and its ``label_index`` (None when absent); DataError naming the file."""
    path = Path(path)
    doc = read_json(path) if doc is None else doc
    if not is_kinetics_json(doc):
        raise DataError('is not a Kinetics-Skeleton file (no "data" list)', path)
    frames: dict[int, tuple[list[np.ndarray], list[np.ndarray]]] = {}
    v = None
    for k, entry in enumerate(doc["data"]):
        if not isinstance(entry, dict) or not isinstance(entry.get("skeleton"), list):
            raise DataError(f'data[{k}] has no "skeleton" list', path)
        fi = entry.get("frame_index")
        if isinstance(fi, bool) or not isinstance(fi, int) or not 1 <= fi <= MAX_FRAMES:
            raise DataError(f"data[{k}].frame_index must be an integer in 1..{MAX_FRAMES}, got {fi!r}", path)
        kps, scs = frames.setdefault(fi, ([], []))
        for j, person in enumerate(entry["skeleton"]):
            if not isinstance(person, dict):
                raise DataError(f"data[{k}].skeleton[{j}] is not an object", path)
            pose = number_array(person.get("pose"), path, f"data[{k}].skeleton[{j}].pose")
            score = number_array(person.get("score"), path, f"data[{k}].skeleton[{j}].score")
            if v is None:
                v = len(score)
            if len(score) != v or len(pose) != 2 * v or v == 0:
                raise DataError(f"data[{k}].skeleton[{j}]: {len(pose)} pose values and {len(score)} scores; "
                                f"expected 2·V and V with V = {v}", path)
            kps.append(pose.reshape(v, 2))
            scs.append(score)
    if not frames or v is None:
        raise DataError("holds no person in any frame", path)
    t = max(frames)
    empty_k, empty_s = np.zeros((0, v, 2)), np.zeros((0, v))
    keypoints = [np.stack(frames[f][0]) if f in frames and frames[f][0] else empty_k for f in range(1, t + 1)]
    scores = [np.stack(frames[f][1]) if f in frames and frames[f][1] else empty_s for f in range(1, t + 1)]
    label = doc.get("label_index")
    label = label if isinstance(label, int) and not isinstance(label, bool) and label >= 0 else None
    return PoseFrames(keypoints, scores, None, (1.0, 1.0)), label
