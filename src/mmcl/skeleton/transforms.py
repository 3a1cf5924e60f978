"""Per-sample skeleton transforms that reproduce the reference feeders numerically.

* NTU (REFERENCE §3.1): valid-frame count, random (train) or centre (test) temporal crop,
  linear resize to a fixed window, random 3-D rotation.
* NW-UCLA (REFERENCE §3.3): centring, random view rotation/scale, per-axis min-max
  normalisation to [-1, 1], temporal sampling to 52 frames.

Randomness: the reference draws from global RNGs (numpy and torch for NTU, Python's
``random`` for NW-UCLA), re-seeded per DataLoader worker (REFERENCE §12.8). Here every
random draw comes from the ``numpy.random.Generator`` passed in, so results depend only on
``(seed, epoch, index)`` (see ``mmcl.datasets.base``). The formulas and distributions are
the reference's; the random streams themselves are ours, so individual augmented samples
are not bit-identical to a reference run (nor could they be without its worker layout).

Arrays are ``C×T×V×M`` float32 (channels xyz, frames, joints, persons) unless stated.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = [
    "NTU_WINDOW",
    "NTU_MIN_CROP",
    "NTU_TRAIN_P_INTERVAL",
    "NTU_TEST_P_INTERVAL",
    "NTU_ROTATION_THETA",
    "UCLA_WINDOW",
    "ZERO_SHOT_WINDOW",
    "zero_shot_preprocess",
    "NTU_ORIGIN_JOINT",
    "centre_on_first_frame",
    "fit_persons",
    "planar_rotation",
    "mirror",
    "valid_frame_count",
    "crop_bounds",
    "resize_time",
    "crop_resize",
    "rotation_matrix",
    "rotate",
    "random_rotation",
    "ucla_view_matrix",
    "ucla_view_normalise",
    "ucla_sample_indices",
    "ucla_transform",
    "NTUTransform",
    "UCLATransform",
]

NTU_WINDOW = 64  # REFERENCE §3.1: window_size 64 (CTR-GCN NTU configs)
NTU_MIN_CROP = 64  # REFERENCE §3.1: hard-coded lower bound of the train crop length
NTU_TRAIN_P_INTERVAL = (0.5, 1.0)  # REFERENCE §3.1 train p_interval
NTU_TEST_P_INTERVAL = (0.95,)  # REFERENCE §3.1 test p_interval
NTU_ROTATION_THETA = 0.3  # REFERENCE §3.1 random_rot theta (radians)
NTU_ORIGIN_JOINT = 1  # REFERENCE §2.6.1: origin = actor 1's J2 (spine middle) in its first non-zero frame
UCLA_WINDOW = 52  # REFERENCE §3.3: hard-coded time_steps
UCLA_MAX_ANGLE_DEG = 60  # REFERENCE §3.3: UniformInt{-60..60} degrees
UCLA_SCALE_RANGE = (0.5, 1.5)  # REFERENCE §3.3: s ~ U(0.5, 1.5) (cancelled by normalisation)
UCLA_INDEX_REPEATS = 100  # REFERENCE §3.3: multiset {0..T-1} with each index repeated 100 times
UCLA_CENTER_JOINT = 1  # REFERENCE §3.3: centre on joint index 1 (J2) of frame 0
ZERO_SHOT_WINDOW = 64  # REFERENCE §9.1 step 5 (the NTU test window)
ZERO_SHOT_P_INTERVAL = (0.95,)  # REFERENCE §9.1 step 5 / §3.1 test crop


def centre_on_first_frame(x: np.ndarray, joint: int = NTU_ORIGIN_JOINT) -> np.ndarray:
    """Translate a ``C×T×V×M`` sample so person 1's ``joint`` in its first non-zero frame is the origin.

    Why: a model should not depend on where the person stood. NTU's preparation centres this way
    (REFERENCE §2.6.1, with the reference's quirks kept in :mod:`mmcl.formats.ntu_denoise`); data that
    was not centred when prepared (the demo's camera-frame skeletons, custom data) gets the same
    centring here, inside the input contract, so training and prediction on a raw file agree.
    Frames in which a person is all zero (absent, padding) stay zero; re-centring centred data is
    the identity. Returns a new float32 array; ``ValueError`` when person 1 is zero in every frame.
    """
    out = np.array(x, dtype=np.float32)
    if out.ndim != 4:
        raise ValueError(f"centre_on_first_frame: expected C×T×V×M, got shape {out.shape}")
    present = (out != 0).any(axis=(0, 2))  # T×M
    first = np.flatnonzero(present[:, 0])
    if len(first) == 0:
        raise ValueError("centre_on_first_frame: person 1 is zero in every frame (no origin for centring)")
    origin = out[:, first[0], joint, 0].copy()
    out -= origin[:, None, None, None]
    out *= present[None, :, None, :]
    return out


def valid_frame_count(x: np.ndarray) -> int:
    """Number of frames whose sum over C, V, M is non-zero (REFERENCE §3.1).

    Like the reference, this counts frames (it does not look for the last non-zero one)
    and the crop then takes frames ``[0, count)``; the data is zero-padded at the end.
    """
    per_frame = x.sum(axis=0).sum(axis=-1).sum(axis=-1)  # the reference's summation order
    return int(np.count_nonzero(per_frame != 0))


def crop_bounds(
    valid_frames: int,
    p_interval: Sequence[float],
    rng: np.random.Generator | None = None,
    min_length: int = NTU_MIN_CROP,
) -> tuple[int, int]:
    """Begin and length ``(b, L)`` of the temporal crop of REFERENCE §3.1.

    One value in ``p_interval``: centre crop, ``b = int((1 - p) * V_n / 2)`` evaluated in
    float64 exactly like the reference (``1 - 0.95`` is ``0.05000000000000004``), ``L = V_n - 2b``.
    Two values: ``p ~ U[p0, p1)``, ``L = min(max(floor(V_n * p), min_length), V_n)``,
    ``b ~ UniformInt{0..V_n - L}``.
    """
    if valid_frames < 1:
        raise ValueError(f"cannot crop a sequence with {valid_frames} valid frames")
    n = int(valid_frames)
    if len(p_interval) == 1:
        p = float(p_interval[0])
        b = int((1.0 - p) * n / 2)
        return b, n - 2 * b
    if len(p_interval) != 2:
        raise ValueError(f"p_interval must have 1 (test) or 2 (train) values, got {list(p_interval)}")
    if rng is None:
        raise ValueError("a random crop (two-value p_interval) needs an rng")
    lo, hi = float(p_interval[0]), float(p_interval[1])
    p = rng.random() * (hi - lo) + lo
    length = min(max(int(math.floor(n * p)), min_length), n)
    b = int(rng.integers(0, n - length + 1))
    return b, length


def resize_time(x: np.ndarray, window: int) -> np.ndarray:
    """Linear resize along time (axis 1) to ``window`` frames with half-pixel centres.

    Equals the reference's bilinear ``F.interpolate(align_corners=False)`` (REFERENCE §3.1):
    ``src = (i + 0.5) * L / W - 0.5`` clamped at 0, ``i0 = floor(src)``,
    ``i1 = min(i0 + 1, L - 1)``, ``out[i] = (1 - λ) in[i0] + λ in[i1]``. Output float32.
    """
    length = x.shape[1]
    if length < 1:
        raise ValueError("cannot resize an empty sequence")
    i = np.arange(window, dtype=np.float64)
    src = np.maximum((i + 0.5) * length / window - 0.5, 0.0)
    i0 = np.floor(src).astype(np.int64)
    i0 = np.minimum(i0, length - 1)
    i1 = np.minimum(i0 + 1, length - 1)
    lam = (src - i0).astype(np.float32)
    shape = (1, window) + (1,) * (x.ndim - 2)
    lam = lam.reshape(shape)
    xf = np.asarray(x, dtype=np.float32)
    out = (1.0 - lam) * xf[:, i0] + lam * xf[:, i1]
    return out.astype(np.float32, copy=False)


def crop_resize(
    x: np.ndarray,
    valid_frames: int,
    p_interval: Sequence[float],
    window: int,
    rng: np.random.Generator | None = None,
    min_length: int = NTU_MIN_CROP,
) -> np.ndarray:
    """Temporal crop of the valid frames then linear resize to ``window`` (REFERENCE §3.1)."""
    b, length = crop_bounds(valid_frames, p_interval, rng, min_length)
    return resize_time(x[:, b : b + length], window)


def rotation_matrix(ax: float, ay: float, az: float) -> np.ndarray:
    """``R = Rz · Ry · Rx`` with the reference's sign convention (REFERENCE §3.1), float64 3×3."""
    cx, sx = math.cos(ax), math.sin(ax)
    cy, sy = math.cos(ay), math.sin(ay)
    cz, sz = math.cos(az), math.sin(az)
    rx = np.array([[1.0, 0.0, 0.0], [0.0, cx, sx], [0.0, -sx, cx]])
    ry = np.array([[cy, 0.0, -sy], [0.0, 1.0, 0.0], [sy, 0.0, cy]])
    rz = np.array([[cz, sz, 0.0], [-sz, cz, 0.0], [0.0, 0.0, 1.0]])
    return rz @ ry @ rx


def rotate(x: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Apply ``p' = R p`` to every joint (channel axis 0 holds xyz); zeros stay zero."""
    out = np.tensordot(r.astype(np.float32), np.asarray(x, dtype=np.float32), axes=([1], [0]))
    return out.astype(np.float32, copy=False)


def random_rotation(x: np.ndarray, theta: float, rng: np.random.Generator) -> np.ndarray:
    """Rotate by angles ``a_x, a_y, a_z ~ U(-theta, theta)`` drawn once per sample (REFERENCE §3.1)."""
    ax, ay, az = rng.uniform(-theta, theta, size=3)
    return rotate(x, rotation_matrix(float(ax), float(ay), float(az)))


def ucla_view_matrix(ax_deg: float, ay_deg: float, scale: float) -> np.ndarray:
    """``Ry · (Rx · S)`` for row vectors, ``p' = p · M`` (REFERENCE §3.3), float64 3×3."""
    ax, ay = math.radians(ax_deg), math.radians(ay_deg)
    cx, sx = math.cos(ax), math.sin(ax)
    cy, sy = math.cos(ay), math.sin(ay)
    rx = np.array([[1.0, 0.0, 0.0], [0.0, cx, sx], [0.0, -sx, cx]])
    ry = np.array([[cy, 0.0, -sy], [0.0, 1.0, 0.0], [sy, 0.0, cy]])
    return ry @ (rx @ (scale * np.eye(3)))


def ucla_view_normalise(
    seq: np.ndarray,
    ax_deg: float = 0.0,
    ay_deg: float = 0.0,
    scale: float = 1.0,
    center_joint: int = UCLA_CENTER_JOINT,
) -> np.ndarray:
    """Centre, rotate/scale and min-max normalise a ``T×V×3`` clip to [-1, 1] (float64).

    Deviation: an axis that is constant over the whole clip makes the reference divide by
    zero (NaN, REFERENCE §12.20); here that axis is set to 0 (the middle of [-1, 1]).
    """
    value = np.asarray(seq, dtype=np.float64)
    t, v, _ = value.shape
    value = value - value[0, center_joint]
    flat = value.reshape(-1, 3) @ ucla_view_matrix(ax_deg, ay_deg, scale)
    lo = flat.min(axis=0)
    span = flat.max(axis=0) - lo
    safe = np.where(span > 0, span, 1.0)
    norm = np.where(span > 0, (flat - lo) / safe * 2.0 - 1.0, 0.0)
    return norm.reshape(t, v, 3)


def ucla_sample_indices(
    length: int, window: int = UCLA_WINDOW, train: bool = False, rng: np.random.Generator | None = None
) -> np.ndarray:
    """Frame indices of the NW-UCLA temporal sampling (REFERENCE §3.3).

    Train: ``window`` draws without replacement from the multiset ``{0..T-1}`` with each
    index repeated 100 times, sorted (so indices may repeat). Test: ``floor(linspace(0, T-1, window))``.
    """
    if length < 1:
        raise ValueError("cannot sample frames from an empty sequence")
    if train:
        if rng is None:
            raise ValueError("train-time sampling needs an rng")
        picks = rng.choice(length * UCLA_INDEX_REPEATS, size=window, replace=False) % length
        return np.sort(picks)
    return np.linspace(0, length - 1, window).astype(np.int64)  # truncation toward zero


def ucla_transform(
    seq: np.ndarray,
    train: bool,
    rng: np.random.Generator | None = None,
    window: int = UCLA_WINDOW,
    center_joint: int = UCLA_CENTER_JOINT,
) -> np.ndarray:
    """NW-UCLA per-sample transform (REFERENCE §3.3): ``T×V×3`` in, ``window×V×3`` float32 out.

    Steps: centre on ``center_joint`` of frame 0; (train) rotate by integer angles in
    [-60, 60] degrees about x and y and scale by ``s ~ U(0.5, 1.5)`` (kept for fidelity although
    the normalisation cancels it); per-axis min-max to [-1, 1] (constant axis -> 0, see
    :func:`ucla_view_normalise`); sample ``window`` frames (:func:`ucla_sample_indices`).
    """
    value = np.asarray(seq)
    if value.ndim != 3 or value.shape[-1] != 3:
        raise ValueError(f"ucla_transform expects T×V×3, got shape {value.shape}")
    if value.shape[0] < 1:
        raise ValueError("ucla_transform: sequence has no frames")
    if train:
        if rng is None:
            raise ValueError("ucla_transform(train=True) needs an rng")
        ax = int(rng.integers(-UCLA_MAX_ANGLE_DEG, UCLA_MAX_ANGLE_DEG + 1))
        ay = int(rng.integers(-UCLA_MAX_ANGLE_DEG, UCLA_MAX_ANGLE_DEG + 1))
        scale = float(rng.uniform(*UCLA_SCALE_RANGE))
    else:
        ax, ay, scale = 0, 0, 1.0
    norm = ucla_view_normalise(value, ax, ay, scale, center_joint)
    idx = ucla_sample_indices(value.shape[0], window, train, rng)
    return norm[idx].astype(np.float32)


class NTUTransform:
    """NTU feeder transform: crop + resize to ``window``, then (train) random rotation.

    ``p_interval`` defaults to ``[0.5, 1]`` for training and ``[0.95]`` for testing;
    ``rotation_theta`` applies to training only (0 disables it) (REFERENCE §3.1). ``centre``: first
    :func:`centre_on_first_frame` on ``centre_joint`` (the layout's centre joint; for data not centred
    when prepared; the reference's data is). ``planar`` (2-D keypoints, channels x, y, score): the
    rotation turns x, y in the image plane by ``U(-theta, theta)`` and leaves the other channels alone.
    ``flip`` (training only): the probability of a left-right mirror, x negated and the layout's
    ``mirror_pairs`` swapped (off in the reference; it turns "wave right" into "wave left", so use it
    only where no class depends on the side).
    """

    def __init__(
        self,
        train: bool,
        window: int = NTU_WINDOW,
        p_interval: Sequence[float] | None = None,
        rotation_theta: float = NTU_ROTATION_THETA,
        centre: bool = False,
        centre_joint: int = NTU_ORIGIN_JOINT,
        planar: bool = False,
        flip: float = 0.0,
        mirror_pairs: Sequence[tuple[int, int]] = (),
    ) -> None:
        self.train = bool(train)
        self.centre = bool(centre)
        self.centre_joint = int(centre_joint)
        self.window = int(window)
        if p_interval is None:
            p_interval = NTU_TRAIN_P_INTERVAL if self.train else NTU_TEST_P_INTERVAL
        self.p_interval = tuple(float(p) for p in p_interval)
        if len(self.p_interval) not in (1, 2):
            raise ValueError(f"p_interval must have 1 or 2 values, got {list(p_interval)}")
        self.rotation_theta = float(rotation_theta)
        self.planar = bool(planar)
        self.flip, self.mirror = _flip_setup(flip, mirror_pairs)

    def __call__(self, x: np.ndarray, valid_length: int | None, rng: np.random.Generator) -> np.ndarray:
        if valid_length is None:
            valid_length = valid_frame_count(x)
        if self.centre:
            x = centre_on_first_frame(x, self.centre_joint)
        out = crop_resize(x, valid_length, self.p_interval, self.window, rng)
        if self.train and self.rotation_theta > 0:
            out = planar_rotation(out, self.rotation_theta, rng) if self.planar else random_rotation(out, self.rotation_theta, rng)
        if self.train and self.flip > 0 and rng.random() < self.flip:
            out = mirror(out, self.mirror)
        return out

    def __repr__(self) -> str:
        extra = (", planar=True" if self.planar else "") + (f", flip={self.flip}" if self.flip else "")
        return (
            f"NTUTransform(train={self.train}, window={self.window}, "
            f"p_interval={list(self.p_interval)}, rotation_theta={self.rotation_theta}, centre={self.centre}{extra})"
        )


def planar_rotation(x: np.ndarray, theta: float, rng: np.random.Generator) -> np.ndarray:
    """Turn channels 0, 1 (x, y) by ``U(-theta, theta)`` in their plane; other channels (score) unchanged."""
    a = float(rng.uniform(-theta, theta))
    c, s = math.cos(a), math.sin(a)
    out = np.array(x, dtype=np.float32, copy=True)
    out[0] = c * x[0] - s * x[1]
    out[1] = s * x[0] + c * x[1]
    return out


def _flip_setup(flip: float, mirror_pairs: Sequence[tuple[int, int]]) -> tuple[float, np.ndarray]:
    """Check a mirror probability and return it with the mirrored joint order (``order[a] = b`` per pair)."""
    if not 0.0 <= flip <= 1.0:
        raise ValueError(f"flip is a probability in [0, 1], got {flip}")
    if flip > 0 and not mirror_pairs:
        raise ValueError("flip needs the layout's left/right mirror pairs; this layout has none")
    order = np.arange(max((j for pair in mirror_pairs for j in pair), default=-1) + 1)
    for a, b in mirror_pairs:
        order[a], order[b] = b, a
    return float(flip), order


def mirror(x: np.ndarray, swap: np.ndarray) -> np.ndarray:
    """Left-right mirror of C×T×V×M: x negated, joints ``i`` and ``swap[i]`` exchanged (zeros stay zero)."""
    v = x.shape[2]
    order = np.concatenate([swap, np.arange(len(swap), v)])[:v]
    out = np.array(x[:, :, order], dtype=np.float32, copy=True)
    out[0] = -out[0]
    return out


class UCLATransform:
    """NW-UCLA feeder transform on a ``C×T×V×1`` sample (only the first ``valid_length`` frames).

    Two training-only options, both off in the reference (defaults reproduce it draw for draw):
    ``crop_min`` < 1 keeps a random contiguous span of ``U(crop_min, 1)`` of the frames *before*
    centring and normalising, as a shorter recording would be (view-3 clips are shorter than the
    training views'); ``flip`` is the probability of a left-right mirror after normalisation (x
    negated, ``mirror_pairs`` swapped; Kinect v1 swaps the sides of a person seen from behind).
    """

    def __init__(
        self,
        train: bool,
        window: int = UCLA_WINDOW,
        crop_min: float = 1.0,
        flip: float = 0.0,
        mirror_pairs: Sequence[tuple[int, int]] = (),
    ) -> None:
        self.train = bool(train)
        self.window = int(window)
        if not 0.0 < crop_min <= 1.0:
            raise ValueError(f"crop_min is the smallest kept share of the frames, in (0, 1]; got {crop_min}")
        self.crop_min = float(crop_min)
        self.flip, self.mirror = _flip_setup(flip, mirror_pairs)

    def __call__(self, x: np.ndarray, valid_length: int | None, rng: np.random.Generator) -> np.ndarray:
        if valid_length is None:
            valid_length = valid_frame_count(x)
        seq = np.asarray(x[:, :valid_length, :, 0]).transpose(1, 2, 0)  # T×V×C
        if self.train and self.crop_min < 1.0:
            t = seq.shape[0]
            keep = min(t, max(1, int(round(t * rng.uniform(self.crop_min, 1.0)))))
            start = int(rng.integers(0, t - keep + 1))
            seq = seq[start : start + keep]
        out = ucla_transform(seq, self.train, rng, self.window)
        out = np.ascontiguousarray(out.transpose(2, 0, 1)[..., None])  # C×W×V×1
        if self.train and self.flip > 0 and rng.random() < self.flip:
            out = mirror(out, self.mirror)
        return out

    def __repr__(self) -> str:
        extra = (f", crop_min={self.crop_min}" if self.crop_min < 1 else "") + (f", flip={self.flip}" if self.flip else "")
        return f"UCLATransform(train={self.train}, window={self.window}{extra})"


def zero_shot_preprocess(seq: np.ndarray, window: int = ZERO_SHOT_WINDOW) -> np.ndarray:
    """T x 25 x 3 NTU-order sequence -> 3 x window x 25 x 2 model input (REFERENCE §9.1 steps 3-5).

    Adds an all-zero second person, centres each person on its J2 (spine middle) of frame 0 (the
    zero person stays zero) and applies the test crop (p = 0.95) and linear resize.
    """
    seq = np.asarray(seq, dtype=np.float32)
    if seq.ndim != 3 or seq.shape[1:] != (25, 3) or seq.shape[0] < 1:
        raise ValueError(f"expected T x 25 x 3, got shape {seq.shape}")
    x = np.zeros((3, seq.shape[0], 25, 2), dtype=np.float32)
    x[..., 0] = seq.transpose(2, 0, 1)
    x = x - x[:, 0:1, 1:2, :]  # per person: J2 of frame 0
    n = valid_frame_count(x)
    if n < 1:
        raise ValueError("sequence has no non-zero frame")
    return crop_resize(x, n, ZERO_SHOT_P_INTERVAL, window, None)


def fit_persons(x: np.ndarray, persons: int, duplicate_lone: bool = False) -> np.ndarray:
    """Pad (zeros, or a copy of actor 1 for a lone actor) the person axis to ``persons``, or drop
    empty person slots beyond it; people with data are never dropped silently (ValueError)."""
    m = x.shape[-1]
    if m == persons:
        return x
    if m > persons:
        with_data = [i for i in range(m) if np.any(x[..., i])]
        if len(with_data) > persons:
            raise ValueError(
                f"holds {len(with_data)} persons with data (slots {with_data}); the model takes {persons}: "
                f"keep the {persons} that matter (e.g. the most active, as NTU's reference denoising does) and predict again"
            )
        keep = with_data + [i for i in range(m) if i not in with_data]
        return np.ascontiguousarray(x[..., sorted(keep[:persons])])
    pad = np.repeat(x[..., :1], persons - m, axis=-1) if duplicate_lone else np.zeros(x.shape[:-1] + (persons - m,), x.dtype)
    return np.concatenate([x, pad], axis=-1)
