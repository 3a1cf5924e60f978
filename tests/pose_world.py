"""Generated 2-D keypoint datasets in pose-estimator formats: a few classes that differ in motion.

Shared by the custom-data tests. People stand in a 340×256 frame (Kinetics-Skeleton's size); every
sample draws its own position, size, speed, phase, length and keypoint noise, and most samples get a
faint second person (low scores) that the top-M selection must drop.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np

from mmcl.skeleton.layouts import get_layout

W, H = 340.0, 256.0
CLASSES = ("wave right", "wave left", "squat", "arms out")

# standing pose in body units (x right in the image, y down), by joint name; absent names are ignored
_POSE = {
    "nose": (0.0, -1.55), "neck": (0.0, -1.35), "left eye": (0.05, -1.6), "right eye": (-0.05, -1.6),
    "left ear": (0.1, -1.57), "right ear": (-0.1, -1.57), "left shoulder": (0.22, -1.35), "right shoulder": (-0.22, -1.35),
    "left elbow": (0.3, -1.05), "right elbow": (-0.3, -1.05), "left wrist": (0.32, -0.78), "right wrist": (-0.32, -0.78),
    "left hip": (0.14, -0.8), "right hip": (-0.14, -0.8), "left knee": (0.15, -0.42), "right knee": (-0.15, -0.42),
    "left ankle": (0.15, 0.0), "right ankle": (-0.15, 0.0),
}


def _motion(cls: int, names: tuple[str, ...], t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """T×V×2 body-unit keypoints of class ``cls``."""
    phase, speed = rng.uniform(0, 2 * np.pi), rng.uniform(0.7, 1.3)
    s = np.sin(2 * np.pi * speed * t / 20 + phase)
    out = np.array([_POSE[n] for n in names], dtype=np.float64)[None].repeat(len(t), 0)
    idx = {n: i for i, n in enumerate(names)}
    if cls in (0, 1):  # wave: wrist and elbow raised, wrist swinging sideways
        side = "right" if cls == 0 else "left"
        sign = -1 if cls == 0 else 1
        out[:, idx[f"{side} elbow"]] = (sign * 0.38, -1.5)
        out[:, idx[f"{side} wrist"], 0] = sign * (0.38 + 0.3 * s)
        out[:, idx[f"{side} wrist"], 1] = -1.85
    elif cls == 2:  # squat: everything above the knees goes down and up
        dip = 0.35 * (1 + s)
        for n in names:
            if "ankle" not in n:
                out[:, idx[n], 1] += dip * (0.5 if "knee" in n else 1.0)
    else:  # arms out: both wrists and elbows open and close horizontally
        for side, sign in (("left", 1), ("right", -1)):
            out[:, idx[f"{side} wrist"]] = np.stack([sign * (0.35 + 0.35 * (1 + s) / 2), np.full_like(s, -1.3)], 1)
            out[:, idx[f"{side} elbow"]] = np.stack([sign * (0.3 + 0.15 * (1 + s) / 2), np.full_like(s, -1.32)], 1)
    return out


def make_sample(cls: int, layout: str, rng: np.random.Generator, frames: int | None = None,
                second_person: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """``M×T×V×2`` pixel keypoints and ``M×T×V`` scores (person 0 the actor, person 1 a faint distractor)."""
    names = get_layout(layout).joint_names
    t = np.arange(frames or int(rng.integers(30, 61)))
    size = rng.uniform(60, 90)
    people = [(_motion(cls, names, t, rng) * size + (rng.uniform(100, 240), rng.uniform(200, 240)), rng.uniform(0.75, 0.95))]
    if second_person:
        still = np.array([_POSE[n] for n in names])[None].repeat(len(t), 0) * size * 0.6 + (rng.uniform(20, 60), 150)
        people.append((still, 0.2))
    kp = np.stack([p + rng.normal(0, 1.0, p.shape) for p, _ in people])
    sc = np.stack([np.clip(rng.normal(s, 0.03, kp.shape[1:3]), 0.05, 1.0) for _, s in people])
    return kp, sc


def write_kinetics_dataset(root: Path, per_class: int, seed: int = 0) -> tuple[Path, Path]:
    """Kinetics-Skeleton JSON files (openpose18, coordinates / frame size) and labels.csv with subjects."""
    rng = np.random.default_rng(seed)
    files = root / "clips"
    files.mkdir(parents=True, exist_ok=True)
    rows = ["name,label,subject"]
    for c, cname in enumerate(CLASSES):
        for k in range(per_class):
            kp, sc = make_sample(c, "openpose18", rng, second_person=k % 2 == 0)
            name = f"clip_{c}_{k:02d}"
            write_kinetics_json(files / f"{name}.json", kp, sc, label=cname, label_index=c)
            rows.append(f"{name},{cname},s{k % 5}")
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    return files, root / "labels.csv"


def write_kinetics_json(path: Path, kp: np.ndarray, sc: np.ndarray, label: str = "", label_index: int = -1) -> Path:
    """One clip in ST-GCN's Kinetics-Skeleton form (people in score order per frame, no identities)."""
    data = []
    for f in range(kp.shape[1]):
        people = sorted(range(kp.shape[0]), key=lambda m: -sc[m, f].mean())
        data.append({"frame_index": f + 1, "skeleton": [
            {"pose": [round(float(v), 4) for xy in kp[m, f] / (W, H) for v in xy], "score": [round(float(v), 3) for v in sc[m, f]]}
            for m in people
        ]})
    path.write_text(json.dumps({"data": data, "label": label, "label_index": label_index}))
    return path


def write_pyskl_dataset(path: Path, per_class: int, seed: int = 0) -> Path:
    """A PYSKL annotation pickle (coco17 keypoints in pixels) with an xsub split."""
    rng = np.random.default_rng(seed)
    anns, train, test = [], [], []
    for c in range(len(CLASSES)):
        for k in range(per_class):
            kp, sc = make_sample(c, "coco17", rng)
            name = f"S{k % 6:03d}_A{c:03d}_{k:02d}"
            anns.append({"frame_dir": name, "label": c, "img_shape": (int(H), int(W)), "original_shape": (int(H), int(W)),
                         "total_frames": kp.shape[1], "keypoint": kp.astype(np.float32), "keypoint_score": sc.astype(np.float32)})
            (test if k % 6 in (0, 3) else train).append(name)
    with open(path, "wb") as fh:
        pickle.dump({"split": {"xsub_train": train, "xsub_val": test}, "annotations": anns}, fh)
    return path
