"""Writers of synthetic NTU ``.skeleton`` files, for tests, benchmarks and bug reports.

The files follow REFERENCE §1.2 exactly (12-field joint lines, 10-field body lines), so they run
through the same parser as real data; values are written with 7 significant digits like the
Kinect SDK text dumps.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from mmcl.formats.ntu_parse import NTU_NUM_JOINTS
from mmcl.prepare.ntu_protocol import missing_skeletons

__all__ = ["Body", "format_skeleton", "write_skeleton", "standing_pose", "random_sample", "sample_name", "ntu60_names"]

# (body_id, joints 25 x 3, colours 25 x 2 or None)
Body = tuple[str, np.ndarray, "np.ndarray | None"]


def sample_name(s: int = 1, c: int = 1, p: int = 1, r: int = 1, a: int = 1) -> str:
    """``SsssCcccPpppRrrrAaaa`` (REFERENCE §1.1)."""
    return f"S{s:03d}C{c:03d}P{p:03d}R{r:03d}A{a:03d}"


def ntu60_names() -> Iterator[str]:
    """Distinct valid NTU-60 sample names, none on the missing-skeleton list (benchmark corpora):
    a mixed-radix count over setup (17), camera (3), performer (40), replication (2), action (60)."""
    missing = missing_skeletons("ntu60")
    for i in range(17 * 3 * 40 * 2 * 60):
        s, r0 = 1 + i % 17, i // 17
        c, r1 = 1 + r0 % 3, r0 // 3
        p, r2 = 1 + r1 % 40, r1 // 40
        name = sample_name(s, c, p, 1 + r2 % 2, 1 + (r2 // 2) % 60)
        if name not in missing:
            yield name


def _num(v: float) -> str:
    return f"{v:.7g}"


def format_skeleton(frames: Sequence[Sequence[Body]]) -> str:
    """Text of a ``.skeleton`` file; each frame is a list of bodies (empty = frame without body)."""
    out = [str(len(frames))]
    for bodies in frames:
        out.append(str(len(bodies)))
        for body_id, joints, colors in bodies:
            out.append(f"{body_id} 0 1 1 1 1 0 0.01 0.02 2")
            out.append(str(NTU_NUM_JOINTS))
            j = np.asarray(joints, dtype=np.float64).reshape(NTU_NUM_JOINTS, 3)
            c = np.zeros((NTU_NUM_JOINTS, 2)) if colors is None else np.asarray(colors, np.float64)
            for k in range(NTU_NUM_JOINTS):
                x, y, z = (_num(v) for v in j[k])
                cx, cy = (_num(v) for v in c[k])
                out.append(f"{x} {y} {z} 250.5 180.25 {cx} {cy} 0.1 0.2 0.3 0.9 2")
    return "\n".join(out) + "\n"


def write_skeleton(path: str | os.PathLike[str], frames: Sequence[Sequence[Body]]) -> Path:
    """Write a ``.skeleton`` file (see :func:`format_skeleton`)."""
    path = Path(path)
    path.write_text(format_skeleton(frames), encoding="ascii")
    return path


def standing_pose(offset: Sequence[float] = (0.0, 0.0, 3.0), height: float = 1.7) -> np.ndarray:
    """A plausible standing Kinect-v2 pose, 25 x 3 (taller than wide, so it passes the spread test)."""
    h = height
    pts = {
        1: (0, 0.0), 2: (0, 0.3), 3: (0, 0.55), 4: (0, 0.65), 21: (0, 0.5),
        5: (-0.18, 0.5), 6: (-0.25, 0.25), 7: (-0.27, 0.05), 8: (-0.27, 0.0), 22: (-0.27, -0.06), 23: (-0.24, 0.0),
        9: (0.18, 0.5), 10: (0.25, 0.25), 11: (0.27, 0.05), 12: (0.27, 0.0), 24: (0.27, -0.06), 25: (0.24, 0.0),
        13: (-0.1, -0.05), 14: (-0.1, -0.5), 15: (-0.1, -0.9), 16: (-0.1, -0.95),
        17: (0.1, -0.05), 18: (0.1, -0.5), 19: (0.1, -0.9), 20: (0.1, -0.95),
    }
    pose = np.zeros((NTU_NUM_JOINTS, 3))
    for j, (x, y) in pts.items():
        pose[j - 1] = (x * h / 1.7, y * h / 1.7, 0.0)
    return pose + np.asarray(offset, dtype=np.float64)


def random_sample(
    rng: np.random.Generator, num_frames: int, num_bodies: int, *, noise_body_frames: int | None = None
) -> list[list[Body]]:
    """A realistic random sample: ``num_bodies`` moving people over ``num_frames`` frames.

    Extra bodies appear for random sub-intervals (as Kinect tracking ids come and go).
    """
    frames: list[list[Body]] = [[] for _ in range(num_frames)]
    for b in range(num_bodies):
        bid = str(72057594037927936 + int(rng.integers(0, 10**6)) * 10 + b)
        if b == 0:
            start, stop = 0, num_frames
        else:
            start = int(rng.integers(0, max(1, num_frames // 2)))
            stop = int(rng.integers(start + 1, num_frames + 1))
        base = standing_pose((rng.uniform(-1, 1), rng.uniform(-0.3, 0.3), rng.uniform(2.5, 4)))
        drift = rng.normal(0, 0.004, size=(stop - start, 1, 3)).cumsum(axis=0)
        jitter = rng.normal(0, 0.01, size=(stop - start, NTU_NUM_JOINTS, 3))
        track = base[None] + drift + jitter
        colors = 960 + 400 * track[..., :2] * np.array([1, -1])
        for k, f in enumerate(range(start, stop)):
            frames[f].append((bid, track[k], colors[k]))
    return frames
