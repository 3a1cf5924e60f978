"""Per-sample NTU processing after parsing: denoising, actor assignment, frame removal, centring.

Implements REFERENCE §2.2 (interval bookkeeping, motion), §2.3 (denoising), §2.4 (actor slots),
§2.5 (missing-frame removal) and §2.6.1 (centring) with the reference's exact numerics (float32
arrays, float32 variance sums, the spread test in float64 as numpy < 2 evaluated ``0.8 * float32``).

``fix_quirks=True`` corrects the REFERENCE §12 item-18 defects (each marked ``QUIRK`` below):

1. interval bookkeeping: a re-appearing body is written at the frames where it really appears,
   not shifted to be contiguous with its first appearance;
2. one-frame overlap: intervals sharing a frame count as overlapping (``< 0`` instead of ``<= 0``);
3. actor-2 interval: starts empty instead of being anchored at frame 0;
4. missing-frame removal: applied to single-body samples too (all-zero frames are dropped);
5. length filter removing every body: the longest body is kept instead of failing (the reference
   crashes; by default the sample is reported as failed).
(The NTU-120 duplication of a lone actor is handled at padding time, see :mod:`mmcl.prepare.ntu`.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mmcl.formats.ntu_parse import NTU_NUM_JOINTS, NTUPrepareError, ParsedBody, ParsedSkeleton

__all__ = [
    "NTUDenoiseError",
    "DenoisedSample",
    "process_parsed",
    "NOISE_LEN_THRES",
    "NOISE_SPR_THRES1",
    "NOISE_SPR_THRES2",
    "NOISE_MOT_THRES_LO",
    "NOISE_MOT_THRES_HI",
]

# Constants of CTR-GCN get_raw_denoised_data (REFERENCE §2.3), names as in the source.
NOISE_LEN_THRES = 11  # bodies with <= 11 frames are noise
NOISE_SPR_THRES1 = 0.8  # a frame is valid if x-spread <= 0.8 * y-spread
NOISE_SPR_THRES2 = 0.69754  # a body with >= this ratio of invalid frames is noise
NOISE_MOT_THRES_LO = 0.089925  # defined but unused by the reference (its call is commented out)
NOISE_MOT_THRES_HI = 2.0  # defined but unused by the reference

_COLS = 3 * NTU_NUM_JOINTS  # 75 values per actor and frame


class NTUDenoiseError(NTUPrepareError):
    """A parsed sample cannot be turned into actors (the reference pipeline would crash on it)."""


@dataclass
class DenoisedSample:
    """One sample ready for padding.

    ``joints`` is T x 150 float32 (actor 2 all zero when ``num_actors == 1``), already centred;
    ``colors`` is T x 2 x 25 x 2 float32 colour-image pixel coordinates, zero where an actor is
    absent.
    """

    joints: np.ndarray
    colors: np.ndarray
    num_actors: int
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Body:
    body: ParsedBody
    interval: np.ndarray  # where its rows are written (QUIRK 1 decides)
    motion: np.float32 | None

    @property
    def start(self) -> int:
        return int(self.interval[0])

    @property
    def end(self) -> int:
        return int(self.interval[-1])


def _motion_numpy(joints: np.ndarray, frames: np.ndarray | None = None) -> np.float32:
    """Sum over x, y, z of the population variance over all (frame, joint) rows (REFERENCE §2.2.5)."""
    if frames is not None:
        joints = joints[frames]
    return np.sum(np.var(joints.reshape(-1, 3), axis=0))


def _spread_valid_numpy(joints: np.ndarray) -> np.ndarray:
    """Frames whose x-spread <= 0.8 * y-spread (REFERENCE §2.3 step 2).

    The spreads are float32 (max - min of float32); the product with 0.8 and the comparison are
    float64, as numpy < 2 evaluated ``python_float * float32_scalar`` in the reference.
    """
    x = joints[:, :, 0]
    y = joints[:, :, 1]
    dx = (x.max(axis=1) - x.min(axis=1)).astype(np.float64)
    dy = (y.max(axis=1) - y.min(axis=1)).astype(np.float64)
    return np.flatnonzero(dx <= NOISE_SPR_THRES1 * dy)


# Compiled versions (numba, when installed) of the two hot loops above, with the same numerics:
# ``np.var(a, axis=0)`` on an (n, 3) float32 array sums each column in float32 in row order, divides
# the sum by n in float64 and rounds to float32 (the mean), then does the same with the float32
# squares of the float32 deviations; ``np.sum`` of the three variances is ``(v0 + v1) + v2`` in
# float32. tests/test_ntu_prepare.py checks the equality on random data and the test corpus.


def _motion_kernel(joints, frames):  # pragma: no cover - compiled by numba
    n = frames.size
    rows = n * joints.shape[1]
    s0 = np.float32(0)
    s1 = np.float32(0)
    s2 = np.float32(0)
    for i in range(n):
        f = frames[i]
        for j in range(joints.shape[1]):
            s0 += joints[f, j, 0]
            s1 += joints[f, j, 1]
            s2 += joints[f, j, 2]
    m0 = np.float32(np.float64(s0) / np.float64(rows))
    m1 = np.float32(np.float64(s1) / np.float64(rows))
    m2 = np.float32(np.float64(s2) / np.float64(rows))
    q0 = np.float32(0)
    q1 = np.float32(0)
    q2 = np.float32(0)
    for i in range(n):
        f = frames[i]
        for j in range(joints.shape[1]):
            d0 = joints[f, j, 0] - m0
            d1 = joints[f, j, 1] - m1
            d2 = joints[f, j, 2] - m2
            q0 += d0 * d0
            q1 += d1 * d1
            q2 += d2 * d2
    v0 = np.float32(np.float64(q0) / np.float64(rows))
    v1 = np.float32(np.float64(q1) / np.float64(rows))
    v2 = np.float32(np.float64(q2) / np.float64(rows))
    return (v0 + v1) + v2


def _spread_kernel(joints, thres):  # pragma: no cover - compiled by numba
    n = joints.shape[0]
    out = np.empty(n, np.int64)
    k = 0
    for f in range(n):
        x_lo = joints[f, 0, 0]
        x_hi = x_lo
        y_lo = joints[f, 0, 1]
        y_hi = y_lo
        for j in range(1, joints.shape[1]):
            x = joints[f, j, 0]
            y = joints[f, j, 1]
            x_lo = min(x_lo, x)
            x_hi = max(x_hi, x)
            y_lo = min(y_lo, y)
            y_hi = max(y_hi, y)
        if np.float64(x_hi - x_lo) <= thres * np.float64(y_hi - y_lo):
            out[k] = f
            k += 1
    return out[:k]


_KERNELS: tuple | None = None


def _kernels() -> tuple:
    global _KERNELS
    if _KERNELS is None:
        try:
            from numba import njit
        except ImportError:
            _KERNELS = (None, None)
        else:
            _KERNELS = (njit(cache=True, nogil=True)(_motion_kernel), njit(cache=True, nogil=True)(_spread_kernel))
    return _KERNELS


def _motion(joints: np.ndarray, frames: np.ndarray | None = None) -> np.float32:
    """Motion of a body (``joints``: n x 25 x 3 float32), optionally over some of its frames only."""
    kernel = _kernels()[0]
    if kernel is None or joints.dtype != np.float32:
        return _motion_numpy(joints, frames)
    if frames is None:
        frames = np.arange(len(joints))
    if len(frames) == 0:
        return _motion_numpy(joints, frames)  # nan with numpy's warning, as the reference
    return np.float32(kernel(joints, frames))


def _spread_valid(joints: np.ndarray) -> np.ndarray:
    """Frames whose x-spread <= 0.8 * y-spread (REFERENCE §2.3 step 2); see :func:`_spread_valid_numpy`."""
    kernel = _kernels()[1]
    if kernel is None or joints.dtype != np.float32 or len(joints) == 0:
        return _spread_valid_numpy(joints)
    return kernel(joints, NOISE_SPR_THRES1)


def warm_up() -> None:
    """Compile (or load from numba's on-disk cache) the compiled helpers; call once per process."""
    j = np.zeros((2, NTU_NUM_JOINTS, 3), np.float32)
    _motion(j)
    _spread_valid(j)


def _denoise(bodies: list[_Body], fix_quirks: bool, path: str | None) -> tuple[list[_Body], dict[str, Any]]:
    info: dict[str, Any] = {}
    kept = [b for b in bodies if len(b.interval) > NOISE_LEN_THRES]
    info["removed_by_length"] = [b.body.body_id for b in bodies if len(b.interval) <= NOISE_LEN_THRES]
    if not kept:
        if not fix_quirks:  # QUIRK 5: the reference crashes here
            raise NTUDenoiseError(path, f"the length filter (<= {NOISE_LEN_THRES} frames) removed every body")
        longest = max(len(b.interval) for b in bodies)
        kept = [next(b for b in bodies if len(b.interval) == longest)]
        info["removed_by_length"].remove(kept[0].body.body_id)
    if len(kept) == 1:
        return kept, info
    remaining = list(kept)
    removed_spr: list[str] = []
    for b in kept:  # dictionary order = first appearance
        if len(remaining) == 1:
            break
        joints = b.body.joints
        valid = _spread_valid(joints)
        n = len(b.interval)
        noise = n - len(valid)
        if noise == 0:
            continue
        if noise / float(n) >= NOISE_SPR_THRES2:
            remaining.remove(b)
            removed_spr.append(b.body.body_id)
        else:
            b.motion = min(b.motion, _motion(joints, valid))
    info["removed_by_spread"] = removed_spr
    if len(remaining) == 1:
        return remaining, info
    return sorted(remaining, key=lambda b: b.motion, reverse=True), info  # stable, like the source


def _write(dst: np.ndarray, cdst: np.ndarray, b: _Body, slot: int, fix_quirks: bool, path: str | None) -> None:
    n = len(b.body.joints)
    rows = b.body.joints.reshape(n, _COLS)
    cols = slice(slot * _COLS, (slot + 1) * _COLS)
    if fix_quirks:
        dst[b.interval, cols] = rows
        cdst[b.interval, slot] = b.body.colors
        return
    if b.start + n > len(dst):  # only with a body id repeated inside one frame; the source crashes
        raise NTUDenoiseError(path, f"body {b.body.body_id} has more rows than frames (repeated in a frame?)")
    dst[b.start : b.start + n, cols] = rows
    cdst[b.start : b.start + n, slot] = b.body.colors


def process_parsed(parsed: ParsedSkeleton, *, fix_quirks: bool = False, path: str | None = None) -> DenoisedSample:
    """Denoise, assign actors, remove missing frames and centre one parsed sample."""
    multi = len(parsed.bodies) > 1
    bodies = []
    for pb in parsed.bodies:
        if fix_quirks:
            interval = pb.frames
        else:  # QUIRK 1: appearances are counted contiguously from the first one
            interval = pb.frames[0] + np.arange(len(pb.frames), dtype=np.int64)
        bodies.append(_Body(pb, interval, _motion(pb.joints) if multi else None))
    num_frames = parsed.num_frames
    info: dict[str, Any] = {"bodies": len(bodies), "dropped_frames": len(parsed.dropped_frames)}

    if not multi:
        chosen = bodies
    else:
        chosen, dinfo = _denoise(bodies, fix_quirks, path)
        info.update(dinfo)

    width = _COLS if len(chosen) == 1 else 2 * _COLS
    joints = np.zeros((num_frames, width), dtype=np.float32)
    colors = np.zeros((num_frames, 2, NTU_NUM_JOINTS, 2), dtype=np.float32)
    _write(joints, colors, chosen[0], 0, fix_quirks, path)
    discarded: list[str] = []
    if len(chosen) > 1:
        s1, e1 = chosen[0].start, chosen[0].end
        s2: int | None = None if fix_quirks else 0  # QUIRK 3: actor 2 anchored at frame 0
        e2: int | None = None if fix_quirks else 0
        for b in chosen[1:]:
            s, e = b.start, b.end
            if _disjoint(s1, e1, s, e, fix_quirks):
                _write(joints, colors, b, 0, fix_quirks, path)
                s1, e1 = min(s, s1), max(e, e1)
            elif s2 is None or e2 is None or _disjoint(s2, e2, s, e, fix_quirks):
                _write(joints, colors, b, 1, fix_quirks, path)
                s2 = s if s2 is None else min(s, s2)
                e2 = e if e2 is None else max(e, e2)
            else:
                discarded.append(b.body.body_id)
    info["discarded"] = discarded

    if multi or fix_quirks:  # QUIRK 4: the reference removes missing frames only for multi-body samples
        keep = joints.sum(axis=1) != 0
        if not keep.all():
            info["missing_frames_removed"] = int((~keep).sum())
            joints = joints[keep]
            colors = colors[keep]
    if len(joints) == 0:
        raise NTUDenoiseError(path, "no frame with a non-zero skeleton")

    # centring (REFERENCE §2.6.1)
    two = width == 2 * _COLS
    if two:
        miss1 = joints[:, :_COLS].sum(axis=1) == 0
        miss2 = joints[:, _COLS:].sum(axis=1) == 0
    nonzero = np.flatnonzero((joints[:, :_COLS] != 0).any(axis=1))
    if len(nonzero) == 0:
        raise NTUDenoiseError(path, "actor 1 is zero in every frame (no origin for centring)")
    origin = joints[nonzero[0], 3:6].copy()  # J2, spine middle
    joints -= np.tile(origin, width // 3)
    if two:
        joints[miss1, :_COLS] = 0
        joints[miss2, _COLS:] = 0
        colors[miss1, 0] = 0
        colors[miss2, 1] = 0
        out = joints
    else:
        out = np.zeros((len(joints), 2 * _COLS), dtype=np.float32)
        out[:, :_COLS] = joints
    info["frames"] = len(out)
    return DenoisedSample(joints=out, colors=colors, num_actors=2 if two else 1, info=info)


def _disjoint(a0: int, a1: int, b0: int, b1: int, fix_quirks: bool) -> bool:
    """Whether two inclusive frame intervals do not overlap (QUIRK 2: the source allows one shared frame)."""
    d = min(a1, b1) - max(a0, b0)
    return d < 0 if fix_quirks else d <= 0
