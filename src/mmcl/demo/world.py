"""Built-in synthetic skeleton world for ``mmcl demo`` (no data, no network needed).

Why this exists: the demo must train and compare the plain backbone and the MMCL model on a
fresh machine. Real NTU data is large and licensed, so we *generate* skeleton sequences with
procedural forward kinematics on the NTU-25 layout, and render a matching RGB composite per
sample (the paper's Eq. 2 image: uniformly sampled person frames concatenated left to right).

The world is built so MMCL has something to add, mirroring the paper's motivation (§3.3.2):
some class pairs differ *only* by a held object ("drink from cup" vs "touch mouth", "phone
call" vs "touch ear"). The object is invisible to the skeleton; holding it only changes the
hand shape a little (finger curl, thumb spread), by about the joint-noise level and about as
much as hand shapes vary between subjects, so a skeleton model can only partly separate the
pairs. The rendered image shows the object plainly, and :func:`answer_holding_object` (a pixel
rule standing in for a vision-language model) answers "is the person holding an object?".

Coordinates: camera frame, metres, x right (as seen in the image), y up, z depth away from the
camera (person at z ~ 2.5-3.8 m). Person 2 is all zeros. Frames after a sample's length are 0.

Entry points: :data:`SYNTHETIC_CLASSES`, :func:`generate_synthetic`, :func:`split_synthetic`; the
motion lives in :mod:`mmcl.demo.kinematics`, the images and the answerer in :mod:`mmcl.demo.render`.
"""

from __future__ import annotations

import colorsys
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from mmcl.demo.kinematics import JOINT, MOTIONS, REST_POSE, MotionContext, body_segments, forward_kinematics, rotate, rotation

__all__ = [
    "SyntheticClass",
    "SYNTHETIC_CLASSES",
    "RenderParams",
    "SyntheticData",
    "generate_synthetic",
    "split_synthetic",
    "random_colour",
    "HOLDING_OBJECT_QUESTION",
    "JOINT_NOISE_STD",
    "OBJECT_GRIP_CURL_DEG",
    "OBJECT_THUMB_SPREAD_M",
]

# ----------------------------------------------------------------------------------------
# Classes
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SyntheticClass:
    """One synthetic action class.

    Attributes:
        name: human-readable action name (also used as the class name in reports).
        holds_object: whether every sample of the class holds an object in the right hand.
        object: ``"cup"``, ``"phone"`` or ``None``; decides how the object is drawn.
        twin: name of the class with identical motion that differs only by the object
            (``None`` when the class has no such twin). These pairs are the hard cases.
        motion: key of the joint-angle program that drives the class (twins share it).
    """

    name: str
    holds_object: bool
    object: str | None
    twin: str | None
    motion: str


SYNTHETIC_CLASSES: tuple[SyntheticClass, ...] = (
    SyntheticClass("wave right hand", False, None, None, "wave_right"),
    SyntheticClass("wave left hand", False, None, None, "wave_left"),
    SyntheticClass("raise both arms", False, None, None, "raise_arms"),
    SyntheticClass("squat", False, None, None, "squat"),
    SyntheticClass("kick", False, None, None, "kick"),
    SyntheticClass("bow", False, None, None, "bow"),
    SyntheticClass("walk in place", False, None, None, "walk"),
    SyntheticClass("clap", False, None, None, "clap"),
    SyntheticClass("drink from cup", True, "cup", "touch mouth", "hand_to_mouth"),
    SyntheticClass("touch mouth", False, None, "drink from cup", "hand_to_mouth"),
    SyntheticClass("phone call", True, "phone", "touch ear", "hand_to_ear"),
    SyntheticClass("touch ear", False, None, "phone call", "hand_to_ear"),
)

#: The FRM question the built-in answerer stands in for.
HOLDING_OBJECT_QUESTION = "Is the person holding an object?"

#: Per-frame Gaussian joint noise (metres): body joints, and wrist/hand/tip/thumb joints.
JOINT_NOISE_STD = (0.008, 0.012)
#: Extra finger curl when gripping an object (degrees); subjects vary by ``_HAND_CURL_SD_DEG``.
OBJECT_GRIP_CURL_DEG = 10.0
#: Extra thumb spread when gripping an object (metres); subjects vary by ``_THUMB_SPREAD_SD_M``.
OBJECT_THUMB_SPREAD_M = 0.009
_HAND_CURL_SD_DEG = 10.0
_THUMB_SPREAD_SD_M = 0.009

_OBJECT_KINDS = {None: 0, "cup": 1, "phone": 2}
# Saturated colours that skin, clothing and background never use (they stay at HSV S < 0.6).
_OBJECT_PALETTE = np.array(
    [[225, 30, 30], [30, 190, 45], [35, 75, 235], [240, 205, 20], [215, 30, 205],
     [245, 120, 15], [20, 195, 220]],
    dtype=np.uint8,
)
_SKIN_PALETTE = np.array(
    [[255, 224, 196], [234, 192, 160], [210, 160, 120], [176, 124, 86], [141, 95, 64],
     [100, 68, 46]],
    dtype=np.uint8,
)

# Joint indices (0-based, NTU25 order).

# ----------------------------------------------------------------------------------------
# Data containers
# ----------------------------------------------------------------------------------------


@dataclass
class RenderParams:
    """Per-sample appearance used by :func:`render_composite` (all arrays have length N).

    ``object_kind`` is 0 none, 1 cup, 2 phone; ``object_size`` is the object's height in metres.
    """

    object_kind: np.ndarray  # int8 N
    object_color: np.ndarray  # uint8 N×3
    object_size: np.ndarray  # float32 N
    skin_color: np.ndarray  # uint8 N×3
    shirt_color: np.ndarray  # uint8 N×3
    pants_color: np.ndarray  # uint8 N×3
    background_seed: np.ndarray  # int64 N

    def subset(self, idx: np.ndarray) -> RenderParams:
        return RenderParams(**{k: v[idx] for k, v in self.__dict__.items()})


@dataclass
class SyntheticData:
    """A generated synthetic dataset; also usable as a raw skeleton source.

    Attributes:
        x: N×C×T×V×M float32 joints (C=3 xyz metres, V=25 NTU joints), zero after ``lengths``.
        lengths: int32 N valid frame counts.
        labels: int64 N class indices into ``class_names``.
        names: unique sample names ``syn_cKK_sNNNN`` (the join key for images/features).
        class_names: names of all classes (index = label).
        holds_object: bool N ground truth of "is the person holding an object?".
        subjects: int32 N synthetic subject id (body size/look); one subject per sample.
        render: appearance parameters for :func:`render_composite`.
        layout: joint layout name (always ``"ntu25"``).
    """

    x: np.ndarray
    lengths: np.ndarray
    labels: np.ndarray
    names: list[str]
    class_names: list[str]
    holds_object: np.ndarray
    subjects: np.ndarray
    render: RenderParams
    layout: str = field(default="ntu25")

    def __len__(self) -> int:
        return int(self.x.shape[0])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def raw(self, i: int) -> tuple[np.ndarray, int]:
        """Raw-source protocol: ``(C×T×V×M float32 array, valid length)`` of sample ``i``."""
        return self.x[i], int(self.lengths[i])

    def subset(self, idx: Sequence[int] | np.ndarray) -> SyntheticData:
        """Samples ``idx`` (in that order) as a new :class:`SyntheticData`."""
        idx = np.asarray(idx, dtype=np.int64)
        return replace(
            self,
            x=self.x[idx],
            lengths=self.lengths[idx],
            labels=self.labels[idx],
            names=[self.names[i] for i in idx],
            class_names=list(self.class_names),
            holds_object=self.holds_object[idx],
            subjects=self.subjects[idx],
            render=self.render.subset(idx),
        )


# ----------------------------------------------------------------------------------------
# Generation
# ----------------------------------------------------------------------------------------

_ANGLE_KEYS = (
    "torso_pitch", "torso_roll", "torso_yaw", "head_pitch", "head_roll",
    *(f"{s}_{k}" for s in "lr" for k in
      ("sh_abd", "sh_flex", "sh_twist", "elbow", "hip_flex", "hip_abd", "knee")),
)


def _generate_class(cls: SyntheticClass, n: int, t_max: int, len_range: tuple[int, int],
                    rng: np.random.Generator, noise_rng: np.random.Generator,
                    joint_noise: float) -> tuple[np.ndarray, np.ndarray]:
    """Skeletons of ``n`` samples of one class: (n×T×25×3 camera-frame xyz, lengths)."""
    lengths = rng.integers(len_range[0], len_range[1] + 1, size=n)
    t = np.arange(t_max)[None, :]
    phi = np.clip(t / np.maximum(lengths[:, None] - 1, 1), 0.0, 1.0)
    phi = phi ** rng.uniform(0.8, 1.25, size=(n, 1))  # uneven speed within the sample
    start, end = rng.uniform(0.0, 0.12, size=(n, 1)), rng.uniform(0.88, 1.0, size=(n, 1))
    p = np.clip((phi - start) / (end - start), 0.0, 1.0)
    ctx = MotionContext(p=p, amp=rng.uniform(0.8, 1.2, size=(n, 1)), rng=rng)
    prog = MOTIONS[cls.motion](ctx)
    ang = {k: np.zeros((n, t_max)) for k in _ANGLE_KEYS}
    for k, v in REST_POSE.items():
        ang[k] = ang[k] + v
    for k, v in prog.items():
        ang[k] = ang[k] + np.broadcast_to(v, (n, t_max))
    # Subject: height, proportions, hand shape (the object grip adds a small, fixed offset).
    height = rng.uniform(1.5, 1.95, size=n)
    seg = body_segments(height, rng)
    curl = {s: rng.normal(20.0, _HAND_CURL_SD_DEG, size=n) for s in "lr"}
    spread = {s: rng.normal(0.0, _THUMB_SPREAD_SD_M, size=n) for s in "lr"}
    if cls.holds_object:
        curl["r"] = curl["r"] + OBJECT_GRIP_CURL_DEG
        spread["r"] = spread["r"] + OBJECT_THUMB_SPREAD_M
    body = forward_kinematics(seg, ang, curl, spread)  # n×T×25×3, (a, u, f)
    # Root trajectory: small sway and drift of the whole body.
    sway = rng.uniform(0.0, 0.03, size=(n, 1, 1)) * np.sin(
        2 * np.pi * rng.uniform(0.3, 1.2, size=(n, 1, 1)) * phi[..., None]
        + rng.uniform(0, 2 * np.pi, size=(n, 1, 1)))
    drift = rng.uniform(-0.05, 0.05, size=(n, 1, 3)) * phi[..., None]
    drift[..., 1] = 0.0
    body = body + drift[:, :, None, :]
    body[..., 0] += sway
    # Camera: body (a, u, f) -> camera (x, y, z) = (a, u, -f) when facing the camera, then
    # yaw about the vertical, position on the floor, and a small camera tilt.
    cam = body * np.array([1.0, 1.0, -1.0])
    yaw = np.deg2rad(rng.uniform(-45.0, 45.0, size=n))
    tilt = np.deg2rad(rng.uniform(-8.0, 8.0, size=n))
    pos = np.stack([rng.uniform(-0.6, 0.6, n), -rng.uniform(0.7, 1.1, n),  # floor below camera
                    rng.uniform(2.5, 3.8, n)], -1)
    rot = rotation(0, tilt) @ rotation(1, yaw)
    cam = cam @ rot.transpose(0, 2, 1)[:, None] + rotate(rotation(0, tilt), pos)[:, None, None]
    if joint_noise > 0:
        scale = np.full(25, JOINT_NOISE_STD[0])
        for side in ("left", "right"):
            for j in ("wrist", "hand", "hand tip", "thumb"):
                scale[JOINT[f"{side} {j}"]] = JOINT_NOISE_STD[1]
        scale = scale[:, None] * (joint_noise / JOINT_NOISE_STD[0])
        cam = cam + noise_rng.standard_normal(cam.shape) * scale
    cam[t[0][None, :] >= lengths[:, None]] = 0.0
    return cam.astype(np.float32), lengths.astype(np.int32)


def random_colour(rng: np.random.Generator, s: tuple[float, float], v: tuple[float, float]) -> np.ndarray:
    r, g, b = colorsys.hsv_to_rgb(rng.random(), rng.uniform(*s), rng.uniform(*v))
    return np.array([r, g, b]) * 255.0


def generate_synthetic(num_per_class: int, *, seed: int = 0, max_frames: int = 100,
                       num_persons: int = 2, joint_noise: float = JOINT_NOISE_STD[0]) -> SyntheticData:
    """Generate ``num_per_class`` samples of every class in :data:`SYNTHETIC_CLASSES`.

    Each sample is a new random subject (height 1.5-1.95 m), speed (40-100 frames, capped at
    ``max_frames``), timing, amplitude, viewpoint (yaw ±45°, tilt ±8°) and position. Samples
    are ordered class by class. ``joint_noise`` is the body-joint noise std in metres (hand
    joints get 1.5×); the noise uses its own random stream, so ``joint_noise=0`` gives the
    exact noise-free skeletons of the same seed. Fully determined by ``seed``.
    """
    if num_per_class < 1 or num_persons < 1 or max_frames < 2:
        raise ValueError("num_per_class, num_persons must be >= 1 and max_frames >= 2")
    hi = min(100, max_frames)
    len_range = (min(40, hi), hi)
    ss = np.random.SeedSequence(seed)
    motion_ss, noise_ss, look_ss = ss.spawn(3)
    k_cls = len(SYNTHETIC_CLASSES)
    xs, lens = [], []
    for cls, m_ss, n_ss in zip(SYNTHETIC_CLASSES, motion_ss.spawn(k_cls), noise_ss.spawn(k_cls)):
        x, ln = _generate_class(cls, num_per_class, max_frames, len_range,
                                   np.random.default_rng(m_ss), np.random.default_rng(n_ss),
                                   joint_noise)
        xs.append(x)
        lens.append(ln)
    joints = np.concatenate(xs)  # N×T×V×3
    n = joints.shape[0]
    x = np.zeros((n, 3, max_frames, 25, num_persons), dtype=np.float32)
    x[..., 0] = joints.transpose(0, 3, 1, 2)
    labels = np.repeat(np.arange(k_cls, dtype=np.int64), num_per_class)
    holds = np.array([SYNTHETIC_CLASSES[k].holds_object for k in labels], dtype=bool)
    # Appearance: every colour of the person/background stays well below the object saturation.
    look = np.random.default_rng(look_ss)
    kinds = np.array([_OBJECT_KINDS[SYNTHETIC_CLASSES[k].object] for k in labels], dtype=np.int8)
    render = RenderParams(
        object_kind=kinds,
        object_color=_OBJECT_PALETTE[look.integers(0, len(_OBJECT_PALETTE), n)],
        object_size=np.where(kinds == 2, look.uniform(0.15, 0.18, n),
                             look.uniform(0.12, 0.16, n)).astype(np.float32),
        skin_color=_SKIN_PALETTE[look.integers(0, len(_SKIN_PALETTE), n)],
        shirt_color=np.stack([random_colour(look, (0.05, 0.45), (0.3, 0.8)) for _ in range(n)]).astype(
            np.uint8),
        pants_color=np.stack([random_colour(look, (0.05, 0.4), (0.2, 0.6)) for _ in range(n)]).astype(
            np.uint8),
        background_seed=look.integers(0, 2**62, n, dtype=np.int64),
    )
    return SyntheticData(
        x=x,
        lengths=np.concatenate(lens),
        labels=labels,
        names=[f"syn_c{k:02d}_s{i:04d}" for i, k in enumerate(labels)],
        class_names=[c.name for c in SYNTHETIC_CLASSES],
        holds_object=holds,
        subjects=np.arange(n, dtype=np.int32),
        render=render,
    )


def split_synthetic(data: SyntheticData, test_fraction: float = 0.3,
                    seed: int = 0) -> tuple[SyntheticData, SyntheticData]:
    """Stratified train/test split: ``test_fraction`` of every class goes to the test set.

    Every synthetic sample is its own subject, so a per-sample split is also a cross-subject
    split. Both parts keep the original sample order and names.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError("test_fraction must be in (0, 1)")
    rng = np.random.default_rng(seed)
    test = []
    for k in np.unique(data.labels):
        idx = np.flatnonzero(data.labels == k)
        n_test = int(round(test_fraction * len(idx)))
        n_test = min(max(n_test, 1), len(idx) - 1) if len(idx) > 1 else 0
        test.extend(rng.permutation(idx)[:n_test].tolist())
    mask = np.zeros(len(data), dtype=bool)
    mask[test] = True
    return data.subset(np.flatnonzero(~mask)), data.subset(np.flatnonzero(mask))


