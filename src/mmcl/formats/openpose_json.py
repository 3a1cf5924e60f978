"""OpenPose JSON output (``--write_json``): a folder per clip, one ``<name>_<frame>_keypoints.json`` per frame.

Each file: ``{"people": [{"pose_keypoints_2d": [x0, y0, c0, x1, y1, c1, ...], "person_id": [-1]}, ...]}``
in pixels (BODY_25 or COCO-18 order; the layout says which). Frames are ordered by the number before
``_keypoints``; people are tracked by box overlap unless every ``person_id`` is a real (>= 0) identity.
OpenPose does not write the frame size: give it (``--image-size``) or normalise by the person box.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from mmcl.formats.errors import DataError
from mmcl.formats.pose2d import PoseFrames, number_array, read_json, small_int

__all__ = ["read_openpose_folder", "openpose_frame_files"]

_FRAME = re.compile(r"(\d+)_keypoints\.json$")


def openpose_frame_files(folder: Path) -> list[Path]:
    """The per-frame files of one clip, in frame order."""
    files = [p for p in folder.iterdir() if p.is_file() and p.name.endswith("_keypoints.json")]
    return sorted(files, key=lambda p: (int(m.group(1)) if (m := _FRAME.search(p.name)) else -1, p.name))


def read_openpose_folder(folder: str | Path) -> PoseFrames:
    """The clip's people per frame; DataError naming the folder (and the frame file) otherwise."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError("is not a folder of OpenPose *_keypoints.json files", folder)
    files = openpose_frame_files(folder)
    if not files:
        raise DataError("holds no *_keypoints.json file", folder)
    keypoints, scores, ids = [], [], []
    v = None
    for f in files:
        doc = read_json(f)
        people = doc.get("people") if isinstance(doc, dict) else None
        if not isinstance(people, list):
            raise DataError('has no "people" list', f)
        kps, scs, pid = [], [], []
        for j, person in enumerate(people):
            if not isinstance(person, dict):
                raise DataError(f"people[{j}] is not an object", f)
            flat = number_array(person.get("pose_keypoints_2d"), f, f"people[{j}].pose_keypoints_2d")
            if v is None:
                v = len(flat) // 3
            if len(flat) != 3 * v or v == 0:
                raise DataError(f"people[{j}].pose_keypoints_2d has {len(flat)} values; expected 3·V with V = {v}", f)
            kp = flat.reshape(v, 3)
            kps.append(kp[:, :2])
            scs.append(kp[:, 2])
            given = person.get("person_id", -1)
            given = given[0] if isinstance(given, list) and given else given
            pid.append(-1 if small_int(given) is None else given)
        n = v or 0
        keypoints.append(np.stack(kps) if kps else np.zeros((0, n, 2)))
        scores.append(np.stack(scs) if scs else np.zeros((0, n)))
        ids.append(np.array(pid, dtype=np.int64))
    if v is None:
        raise DataError("holds no person in any frame", folder)
    keypoints = [k if k.shape[1:] == (v, 2) else np.zeros((0, v, 2)) for k in keypoints]
    scores = [s if s.ndim == 2 and s.shape[1] == v else np.zeros((0, v)) for s in scores]
    known = all((i >= 0).all() for i in ids) and any(i.size for i in ids) and all(len(set(i.tolist())) == i.size for i in ids)
    return PoseFrames(keypoints, scores, ids if known else None, None)
