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

Entry points: :data:`SYNTHETIC_CLASSES`, :func:`generate_synthetic`, :func:`split_synthetic`,
:func:`render_composite`, :func:`write_composites`, :func:`answer_holding_object`,
:func:`synthetic_text_features`.
"""

from __future__ import annotations

import colorsys
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from mmcl.io import atomic_write
from mmcl.skeleton.layouts import NTU25

__all__ = [
    "SyntheticClass",
    "SYNTHETIC_CLASSES",
    "RenderParams",
    "SyntheticData",
    "generate_synthetic",
    "split_synthetic",
    "render_composite",
    "write_composites",
    "answer_holding_object",
    "synthetic_text_features",
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
_J = {name: i for i, name in enumerate(NTU25.joint_names)}

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
# Rotations. Body-local frame (a, u, f) = (person's left, up, forward); right-handed.
# ----------------------------------------------------------------------------------------


def _rot(axis: int, angle: np.ndarray) -> np.ndarray:
    """Right-handed rotation matrices about a coordinate axis, shape angle.shape + (3, 3)."""
    angle = np.asarray(angle, dtype=np.float64)
    c, s = np.cos(angle), np.sin(angle)
    out = np.zeros(angle.shape + (3, 3))
    i, j = [(1, 2), (2, 0), (0, 1)][axis]
    out[..., axis, axis] = 1.0
    out[..., i, i] = c
    out[..., j, j] = c
    out[..., i, j] = -s
    out[..., j, i] = s
    return out


def _mv(r: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Apply rotations ``r`` (...×3×3) to vectors ``v`` (...×3, broadcast)."""
    return (r @ v[..., None])[..., 0]


def _mm(*rs: np.ndarray) -> np.ndarray:
    out = rs[0]
    for r in rs[1:]:
        out = out @ r
    return out


# ----------------------------------------------------------------------------------------
# Motion programs: per class, joint angles (degrees) as functions of normalised time.
# ----------------------------------------------------------------------------------------


def _smooth(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


@dataclass
class _Ctx:
    """Per-class generation context: normalised time and per-sample motion randomness."""

    p: np.ndarray  # n×T progress in [0, 1] inside the action window (time-warped)
    amp: np.ndarray  # n×1 amplitude factor
    rng: np.random.Generator

    @property
    def n(self) -> int:
        return self.p.shape[0]

    def u(self, lo: float, hi: float) -> np.ndarray:
        """Per-sample uniform draw, shape n×1 (so it broadcasts over frames)."""
        return self.rng.uniform(lo, hi, size=(self.n, 1))

    def envelope(self) -> np.ndarray:
        """Reach-hold-return profile: rises from 0 to 1, holds, returns to 0."""
        rise, fall = self.u(0.15, 0.3), self.u(0.15, 0.3)
        return _smooth(self.p / rise) * _smooth((1.0 - self.p) / fall)

    def cycles(self, lo: float, hi: float) -> np.ndarray:
        """Phase (radians) of a periodic motion with a random cycle count and start phase."""
        k = self.u(lo, hi)
        return 2.0 * np.pi * k * self.p + self.u(0.0, 2.0 * np.pi)


Angles = dict[str, np.ndarray]


def _m_wave(c: _Ctx, side: str) -> Angles:
    env = c.envelope()
    osc = np.sin(c.cycles(2.0, 4.5))
    return {
        f"{side}_sh_abd": env * (80 + 10 * c.amp),
        f"{side}_sh_flex": env * c.u(0, 25),
        f"{side}_sh_twist": env * -85,
        f"{side}_elbow": env * (75 + 25 * c.amp * osc),
        "torso_roll": env * c.u(-4, 4),
    }


def _m_raise_arms(c: _Ctx) -> Angles:
    env = c.envelope()
    top = 150 + 15 * c.amp
    out: Angles = {"head_pitch": env * -10}
    for s in "lr":
        out[f"{s}_sh_abd"] = env * top
        out[f"{s}_sh_flex"] = env * c.u(5, 30)
        out[f"{s}_elbow"] = env * c.u(0, 25)
    return out


def _m_squat(c: _Ctx) -> Angles:
    reps = np.where(c.rng.random((c.n, 1)) < 0.3, 2.0, 1.0)
    depth = 0.5 - 0.5 * np.cos(2 * np.pi * reps * c.p)
    depth = depth * c.envelope() ** 0.25
    hip, knee = 85 + 15 * c.amp, 100 + 20 * c.amp
    out: Angles = {"torso_pitch": depth * (30 + 10 * c.amp), "head_pitch": depth * -15}
    for s in "lr":
        out[f"{s}_hip_flex"] = depth * hip
        out[f"{s}_knee"] = depth * knee
        out[f"{s}_hip_abd"] = depth * 10
        out[f"{s}_sh_flex"] = depth * c.u(50, 90)
        out[f"{s}_elbow"] = depth * c.u(0, 30)
    return out


def _m_kick(c: _Ctx) -> Angles:
    # Chamber the knee, snap the leg forward, retract; a quick event inside the window.
    centre, width = c.u(0.4, 0.6), c.u(0.22, 0.35)
    q = np.clip((c.p - centre) / width + 0.5, 0.0, 1.0)
    lift = np.sin(np.pi * q) ** 2
    snap = np.sin(np.pi * q) ** 6
    return {
        "r_hip_flex": lift * (60 + 20 * c.amp),
        "r_knee": lift * 70 - snap * 60,
        "torso_pitch": -lift * 10,
        "l_sh_abd": lift * 25,
        "r_sh_abd": lift * 25,
        "l_sh_flex": lift * 20,
        "l_knee": lift * 8,
        "l_hip_flex": lift * 5,
    }


def _m_bow(c: _Ctx) -> Angles:
    env = c.envelope()
    pitch = env * (45 + 20 * c.amp)
    out: Angles = {"torso_pitch": pitch, "head_pitch": env * 15}
    for s in "lr":
        out[f"{s}_sh_flex"] = pitch * c.u(0.8, 1.0)
        out[f"{s}_elbow"] = env * 10
    return out


def _m_walk(c: _Ctx) -> Angles:
    ph = c.cycles(1.5, 3.5)
    env = _smooth(c.p / 0.1) * _smooth((1 - c.p) / 0.1)
    lift_l = np.maximum(np.sin(ph), 0.0) * env
    lift_r = np.maximum(-np.sin(ph), 0.0) * env
    hip, knee, arm = 35 + 15 * c.amp, 55 + 20 * c.amp, 15 + 10 * c.amp
    swing = np.sin(ph) * env
    return {
        "l_hip_flex": lift_l * hip, "l_knee": lift_l * knee,
        "r_hip_flex": lift_r * hip, "r_knee": lift_r * knee,
        "l_sh_flex": -swing * arm, "r_sh_flex": swing * arm,
        "l_elbow": 15 + 10 * np.abs(swing), "r_elbow": 15 + 10 * np.abs(swing),
        "torso_roll": swing * 3,
    }


def _m_clap(c: _Ctx) -> Angles:
    env = c.envelope()
    osc = 0.5 + 0.5 * np.cos(c.cycles(3.0, 6.0))  # 1 = hands together
    flex = 40 + 15 * c.amp
    out: Angles = {}
    for s in "lr":
        out[f"{s}_sh_flex"] = env * flex
        out[f"{s}_sh_abd"] = env * 12
        out[f"{s}_sh_twist"] = env * (5 + 30 * osc)
        out[f"{s}_elbow"] = env * 75
    return out


def _m_hand_to_mouth(c: _Ctx) -> Angles:
    env = c.envelope()
    wobble = 3 * np.sin(c.cycles(0.5, 2.0))
    return {
        "r_sh_flex": env * (60 + 8 * c.amp),
        "r_sh_abd": env * (10 + 5 * c.amp),
        "r_sh_twist": env * 30,
        "r_elbow": env * (126 + 4 * c.amp + wobble),
        "head_pitch": env * c.u(-10, 5),
    }


def _m_hand_to_ear(c: _Ctx) -> Angles:
    env = c.envelope()
    return {
        "r_sh_flex": env * (75 + 8 * c.amp),
        "r_sh_abd": env * (60 + 8 * c.amp),
        "r_sh_twist": env * -55,
        "r_elbow": env * (131 + 4 * c.amp),
        "head_roll": env * c.u(-12, 0),
        "l_sh_abd": env * c.u(0, 10),
    }


_MOTIONS: dict[str, Callable[[_Ctx], Angles]] = {
    "wave_right": lambda c: _m_wave(c, "r"),
    "wave_left": lambda c: _m_wave(c, "l"),
    "raise_arms": _m_raise_arms,
    "squat": _m_squat,
    "kick": _m_kick,
    "bow": _m_bow,
    "walk": _m_walk,
    "clap": _m_clap,
    "hand_to_mouth": _m_hand_to_mouth,
    "hand_to_ear": _m_hand_to_ear,
}

# Resting pose (degrees), added to every motion program.
_REST: dict[str, float] = {"l_sh_abd": 8, "r_sh_abd": 8, "l_elbow": 12, "r_elbow": 12}

# ----------------------------------------------------------------------------------------
# Forward kinematics
# ----------------------------------------------------------------------------------------


def _segments(height: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Segment lengths (metres, shape n) from body height, with per-subject proportion jitter."""
    frac = {
        "spine_low": 0.15, "spine_up": 0.13, "neck": 0.05, "head": 0.07,
        "shoulder_w": 0.10, "upper_arm": 0.18, "forearm": 0.15, "palm": 0.045,
        "finger": 0.05, "thumb": 0.035, "hip_w": 0.055, "hip_drop": 0.03,
        "thigh": 0.245, "shin": 0.245, "ankle_h": 0.035, "foot": 0.07,
    }
    return {k: height * v * rng.uniform(0.96, 1.04, size=height.shape) for k, v in frac.items()}


def _limb_arm(seg: dict, ang: Angles, side: str, curl: np.ndarray, spread: np.ndarray):
    """Arm joint offsets (left-limb convention, torso frame) from the shoulder."""
    rad = {k: np.deg2rad(ang[f"{side}_{k}"]) for k in ("sh_abd", "sh_flex", "sh_twist", "elbow")}
    r_up = _mm(_rot(2, rad["sh_abd"]), _rot(0, -rad["sh_flex"]), _rot(1, -rad["sh_twist"]))
    r_fore = r_up @ _rot(0, -rad["elbow"])
    down = np.array([0.0, -1.0, 0.0])
    l = {k: seg[k][:, None, None] for k in ("upper_arm", "forearm", "palm", "finger", "thumb")}
    elbow = _mv(r_up, down) * l["upper_arm"]
    wrist = elbow + _mv(r_fore, down) * l["forearm"]
    hand = wrist + _mv(r_fore, down) * l["palm"]
    # Fingers curl towards the palm (palm faces the body midline, i.e. -a, when relaxed).
    r_curl = _rot(2, -np.deg2rad(curl))[:, None]
    tip = hand + _mv(r_fore @ r_curl, down) * l["finger"]
    th = np.stack([-0.35 * np.ones_like(spread), -0.45 * np.ones_like(spread),
                   0.82 + spread / seg["thumb"]], axis=-1)
    th = th / np.linalg.norm(th, axis=-1, keepdims=True)
    thumb = hand + _mv(r_fore, th[:, None, :]) * l["thumb"]
    return {"elbow": elbow, "wrist": wrist, "hand": hand, "tip": tip, "thumb": thumb}


def _limb_leg(seg: dict, ang: Angles, side: str):
    """Leg joint offsets (left-limb convention, pelvis frame) from the hip."""
    flex, abd, knee = (np.deg2rad(ang[f"{side}_{k}"]) for k in ("hip_flex", "hip_abd", "knee"))
    r_thigh = _rot(2, abd) @ _rot(0, -flex)
    r_shin = r_thigh @ _rot(0, knee)
    down = np.array([0.0, -1.0, 0.0])
    knee_p = _mv(r_thigh, down) * seg["thigh"][:, None, None]
    ankle = knee_p + _mv(r_shin, down) * seg["shin"][:, None, None]
    # The foot half-follows the shin pitch: flat when standing, pointing when kicking.
    r_foot = _rot(2, abd) @ _rot(0, -0.5 * (flex - knee))
    fvec = np.array([0.0, -1.0, 0.0]) * seg["ankle_h"][:, None, None] * 0.6
    fvec = fvec + np.array([0.0, 0.0, 1.0]) * seg["foot"][:, None, None]
    foot = ankle + _mv(r_foot, fvec)
    return {"knee": knee_p, "ankle": ankle, "foot": foot}


def _forward_kinematics(seg: dict, ang: Angles, curl: np.ndarray, spread: np.ndarray) -> np.ndarray:
    """Joint positions n×T×25×3 in the body frame (a, u, f), feet on the floor y=0."""
    n, t = ang["torso_pitch"].shape
    pitch, roll, yaw = (np.deg2rad(ang[k]) for k in ("torso_pitch", "torso_roll", "torso_yaw"))
    r_torso = _mm(_rot(1, yaw), _rot(0, pitch), _rot(2, -roll))
    r_half = _mm(_rot(1, 0.5 * yaw), _rot(0, 0.5 * pitch), _rot(2, -0.5 * roll))
    r_head = r_torso @ _rot(0, np.deg2rad(ang["head_pitch"])) @ _rot(2, -np.deg2rad(ang["head_roll"]))
    up = np.array([0.0, 1.0, 0.0])
    L = {k: v[:, None, None] for k, v in seg.items()}
    P = np.zeros((n, t, 25, 3))
    P[:, :, _J["spine middle"]] = _mv(r_half, up) * L["spine_low"]
    P[:, :, _J["spine shoulder"]] = P[:, :, _J["spine middle"]] + _mv(r_torso, up) * L["spine_up"]
    P[:, :, _J["neck"]] = P[:, :, _J["spine shoulder"]] + _mv(r_torso, up) * L["neck"]
    head_v = np.array([0.0, 1.0, 0.1]) / np.hypot(1.0, 0.1)
    P[:, :, _J["head"]] = P[:, :, _J["neck"]] + _mv(r_head, head_v) * L["head"]
    zeros = np.zeros((n,))
    for side, sign, prefix in (("l", 1.0, "left"), ("r", -1.0, "right")):
        mirror = np.array([sign, 1.0, 1.0])
        sh_off = np.stack([seg["shoulder_w"], -0.1 * seg["shoulder_w"], zeros], -1)[:, None]
        shoulder = P[:, :, _J["spine shoulder"]] + _mv(r_torso, sh_off * mirror)
        P[:, :, _J[f"{prefix} shoulder"]] = shoulder
        arm = _limb_arm(seg, ang, side, curl[side], spread[side])
        for key, joint in (("elbow", "elbow"), ("wrist", "wrist"), ("hand", "hand"),
                           ("tip", "hand tip"), ("thumb", "thumb")):
            P[:, :, _J[f"{prefix} {joint}"]] = shoulder + _mv(r_torso, arm[key] * mirror)
        hip = np.stack([seg["hip_w"], -seg["hip_drop"], zeros], -1)[:, None] * mirror
        P[:, :, _J[f"{prefix} hip"]] = hip
        leg = _limb_leg(seg, ang, side)
        for key, joint in (("knee", "knee"), ("ankle", "ankle"), ("foot", "foot")):
            P[:, :, _J[f"{prefix} {joint}"]] = hip + leg[key] * mirror
    # Ground contact: the lower foot touches the floor (y=0) and does not slide horizontally.
    contact = []
    for prefix in ("left", "right"):
        ankle, foot = P[:, :, _J[f"{prefix} ankle"]], P[:, :, _J[f"{prefix} foot"]]
        contact.append(np.minimum(ankle[..., 1] - L["ankle_h"][..., 0],
                                  foot[..., 1] - 0.4 * L["ankle_h"][..., 0]))
    contact = np.stack(contact, -1)  # n×T×2
    ground = contact.min(-1)
    w = np.exp(-(contact - ground[..., None]) / 0.01)
    w = w / w.sum(-1, keepdims=True)
    slide = np.zeros((n, t, 3))
    for k, prefix in enumerate(("left", "right")):
        foot = P[:, :, _J[f"{prefix} foot"]]
        slide += w[..., k : k + 1] * (_rest_foot(seg, sign=1.0 - 2.0 * k) - foot)
    slide[..., 1] = -ground
    return P + slide[:, :, None, :]


def _rest_foot(seg: dict, sign: float) -> np.ndarray:
    """Foot joint of the neutral standing pose (body frame), n×1×3 — the sliding anchor."""
    x = sign * seg["hip_w"]
    y = -seg["hip_drop"] - seg["thigh"] - seg["shin"] - 0.6 * seg["ankle_h"]
    z = seg["foot"]
    return np.stack([x, y, z], -1)[:, None, :]


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
    ctx = _Ctx(p=p, amp=rng.uniform(0.8, 1.2, size=(n, 1)), rng=rng)
    prog = _MOTIONS[cls.motion](ctx)
    ang = {k: np.zeros((n, t_max)) for k in _ANGLE_KEYS}
    for k, v in _REST.items():
        ang[k] = ang[k] + v
    for k, v in prog.items():
        ang[k] = ang[k] + np.broadcast_to(v, (n, t_max))
    # Subject: height, proportions, hand shape (the object grip adds a small, fixed offset).
    height = rng.uniform(1.5, 1.95, size=n)
    seg = _segments(height, rng)
    curl = {s: rng.normal(20.0, _HAND_CURL_SD_DEG, size=n) for s in "lr"}
    spread = {s: rng.normal(0.0, _THUMB_SPREAD_SD_M, size=n) for s in "lr"}
    if cls.holds_object:
        curl["r"] = curl["r"] + OBJECT_GRIP_CURL_DEG
        spread["r"] = spread["r"] + OBJECT_THUMB_SPREAD_M
    body = _forward_kinematics(seg, ang, curl, spread)  # n×T×25×3, (a, u, f)
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
    rot = _rot(0, tilt) @ _rot(1, yaw)
    cam = cam @ rot.transpose(0, 2, 1)[:, None] + _mv(_rot(0, tilt), pos)[:, None, None]
    if joint_noise > 0:
        scale = np.full(25, JOINT_NOISE_STD[0])
        for side in ("left", "right"):
            for j in ("wrist", "hand", "hand tip", "thumb"):
                scale[_J[f"{side} {j}"]] = JOINT_NOISE_STD[1]
        scale = scale[:, None] * (joint_noise / JOINT_NOISE_STD[0])
        cam = cam + noise_rng.standard_normal(cam.shape) * scale
    cam[t[0][None, :] >= lengths[:, None]] = 0.0
    return cam.astype(np.float32), lengths.astype(np.int32)


def _colour(rng: np.random.Generator, s: tuple[float, float], v: tuple[float, float]) -> np.ndarray:
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
        shirt_color=np.stack([_colour(look, (0.05, 0.45), (0.3, 0.8)) for _ in range(n)]).astype(
            np.uint8),
        pants_color=np.stack([_colour(look, (0.05, 0.4), (0.2, 0.6)) for _ in range(n)]).astype(
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


# ----------------------------------------------------------------------------------------
# Rendering (RGB composite, paper Eq. 2)
# ----------------------------------------------------------------------------------------

_FOCAL = 1050.0  # pixels, a Kinect-v2-like colour camera
_LIMBS = (  # (joint a, joint b, part, thickness in metres)
    ("left hip", "left knee", "pants", 0.13), ("left knee", "left ankle", "pants", 0.10),
    ("right hip", "right knee", "pants", 0.13), ("right knee", "right ankle", "pants", 0.10),
    ("left ankle", "left foot", "shoe", 0.07), ("right ankle", "right foot", "shoe", 0.07),
    ("spine base", "spine shoulder", "shirt", 0.26), ("spine shoulder", "neck", "skin", 0.09),
    ("left shoulder", "left elbow", "shirt", 0.09), ("left elbow", "left wrist", "skin", 0.07),
    ("right shoulder", "right elbow", "shirt", 0.09), ("right elbow", "right wrist", "skin", 0.07),
    ("left wrist", "left hand", "skin", 0.07), ("right wrist", "right hand", "skin", 0.07),
    ("left hand", "left hand tip", "skin", 0.05), ("right hand", "right hand tip", "skin", 0.05),
    ("left hand", "left thumb", "skin", 0.03), ("right hand", "right thumb", "skin", 0.03),
)


def _background(seed: int, size: tuple[int, int], floor_row: float) -> Image.Image:
    """A low-saturation textured room: blotchy wall, tiled floor, fine grain."""
    w, h = size
    rng = np.random.default_rng(seed)
    wall = _colour(rng, (0.0, 0.25), (0.45, 0.85))
    floor = _colour(rng, (0.0, 0.25), (0.35, 0.7))
    coarse = (rng.random((max(h // 12, 2), max(w // 12, 2))) * 255).astype(np.uint8)
    blotch = np.asarray(Image.fromarray(coarse).resize((w, h), Image.BILINEAR), dtype=np.float64)
    blotch = blotch[..., None] / 255.0
    rows = np.arange(h)[:, None, None]
    img = np.where(rows < floor_row, wall, floor) * (0.85 + 0.3 * blotch)
    cols = np.arange(w)[None, :, None]
    tile = max(int(rng.integers(10, 24)), 4)
    grout = (rows >= floor_row) & (((cols + rows) % tile == 0) | (rows % tile == 0))
    img = np.where(grout, img * 0.8, img)
    img = img + rng.normal(0.0, 6.0, size=(h, w, 1))
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))


def _project(p: np.ndarray) -> np.ndarray:
    """Pinhole projection of camera-frame points (...×3) to image-plane pixels (...×2, v down)."""
    z = np.maximum(p[..., 2], 0.3)
    return np.stack([_FOCAL * p[..., 0] / z, -_FOCAL * p[..., 1] / z], -1)


def render_composite(data: SyntheticData, i: int, *, frames: int = 5,
                     frame_size: tuple[int, int] = (128, 96)) -> Image.Image:
    """Render sample ``i`` as the paper's temporal RGB composite (Eq. 2).

    ``frames`` frames are sampled uniformly over the valid length; each is drawn as a simple
    person (thick limbs, head, torso; the held object in the right hand when the sample holds
    one) on a textured background, cropped to the person box (union over the sampled frames,
    like a detector box, so motion stays visible) and fitted to ``frame_size`` (w, h). The
    frames are concatenated left to right: the image is always ``(frames·w) × h`` RGB.
    """
    fw, fh = frame_size
    length = int(data.lengths[i])
    t_idx = np.minimum(((np.arange(frames) + 0.5) * length / frames).astype(int), length - 1)
    pts = data.x[i, :, :, :, 0][:, t_idx].transpose(1, 2, 0).astype(np.float64)  # frames×V×3
    uv = _project(pts)
    depth = np.maximum(pts[..., 2], 0.3)
    px_per_m = _FOCAL / depth  # frames×V
    head_r = 0.11 * px_per_m[:, _J["head"]]
    lo = np.minimum(uv.min(axis=(0, 1)), (uv[:, _J["head"]] - head_r[:, None]).min(0))
    hi = np.maximum(uv.max(axis=(0, 1)), (uv[:, _J["head"]] + head_r[:, None]).max(0))
    centre, extent = (lo + hi) / 2, (hi - lo) * 1.15 + 10
    scale = min(fw / extent[0], fh / extent[1])  # fit the box, keep the aspect ratio
    r = data.render
    rgb = lambda c: tuple(int(v) for v in c)  # noqa: E731
    colours = {"skin": rgb(r.skin_color[i]), "shirt": rgb(r.shirt_color[i]),
               "pants": rgb(r.pants_color[i]), "shoe": (45, 42, 40)}
    to_px = lambda q: (q - centre) * scale + np.array([fw / 2, fh / 2])  # noqa: E731
    floor_v = to_px(np.stack([uv[..., 0].mean(), uv[..., 1].max()]))[1]
    bg = _background(int(r.background_seed[i]), frame_size, floor_v)
    out = Image.new("RGB", (frames * fw, fh))
    for f in range(frames):
        im = bg.copy()
        d = ImageDraw.Draw(im)
        q = to_px(uv[f])
        ppm = px_per_m[f] * scale
        # Far limbs first so the near side occludes them.
        order = sorted(_LIMBS, key=lambda l: -(pts[f, _J[l[0]], 2] + pts[f, _J[l[1]], 2]))
        for a, b, part, thick in order:
            ja, jb = _J[a], _J[b]
            wdt = max(int(round(thick * (ppm[ja] + ppm[jb]) / 2)), 1)
            d.line([tuple(q[ja]), tuple(q[jb])], fill=colours[part], width=wdt)
            for j in (ja, jb):
                rr = wdt / 2
                d.ellipse([q[j][0] - rr, q[j][1] - rr, q[j][0] + rr, q[j][1] + rr], fill=colours[part])
        hr = 0.11 * ppm[_J["head"]]
        hx, hy = q[_J["head"]]
        d.ellipse([hx - hr, hy - hr * 1.15, hx + hr, hy + hr * 1.15], fill=colours["skin"])
        if r.object_kind[i] > 0:
            # The object sits in the right hand, between the palm and the finger tips.
            c = (q[_J["right hand"]] + q[_J["right hand tip"]]) / 2
            hgt = max(float(r.object_size[i]) * ppm[_J["right hand"]], 6.0)
            wid = max(hgt * (0.65 if r.object_kind[i] == 1 else 0.5), 5.0)
            d.rectangle([c[0] - wid / 2, c[1] - hgt / 2, c[0] + wid / 2, c[1] + hgt / 2],
                        fill=rgb(r.object_color[i]))
        out.paste(im, (f * fw, 0))
    return out


def write_composites(data: SyntheticData, out_dir: str | os.PathLike, *, frames: int = 5,
                     frame_size: tuple[int, int] = (128, 96), quality: int = 92,
                     indices: Iterable[int] | None = None) -> list[Path]:
    """Write ``<out_dir>/<name>.jpg`` for each sample; returns the paths newly written.

    Existing files are skipped (resumable), and each file appears atomically (temp file in the
    same folder, then ``os.replace``), so an interrupted run never leaves a truncated image.
    JPEG chroma subsampling is off so small coloured objects keep their colour.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for i in range(len(data)) if indices is None else indices:
        path = out / f"{data.names[i]}.jpg"
        if path.exists():
            continue
        img = render_composite(data, i, frames=frames, frame_size=frame_size)
        atomic_write(path, lambda fh, img=img: img.save(fh, format="JPEG", quality=quality, subsampling=0))
        written.append(path)
    return written


# ----------------------------------------------------------------------------------------
# Built-in answerer (stands in for a multimodal LLM on these synthetic images)
# ----------------------------------------------------------------------------------------

_OBJ_MIN_SAT, _OBJ_MIN_VAL = 200, 110  # HSV thresholds (0-255) of "object-coloured" pixels
_OBJ_FRACTION = 3e-4  # fraction of object pixels at which p(yes) = 0.5 (~18 px of 640×96)


def answer_holding_object(image: Image.Image) -> tuple[str, float]:
    """Answer :data:`HOLDING_OBJECT_QUESTION` for a synthetic composite, from pixels only.

    Why it works: the renderer reserves strongly saturated colours for held objects; skin,
    clothes and background stay below HSV saturation ~0.6 (JPEG noise adds ~0.15). So we count
    bright (V >= 0.43), strongly saturated (S >= 0.78) pixels and map their share of the image
    through a logistic on the log-fraction (p = 0.5 at 0.03 % of the image, ~18 px of a 640×96
    composite; objects cover ~200 px). Works on resized and JPEG-compressed images.
    Returns ``("yes" | "no", probability of yes)``.
    """
    hsv = np.asarray(image.convert("RGB").convert("HSV"))
    mask = (hsv[..., 1] >= _OBJ_MIN_SAT) & (hsv[..., 2] >= _OBJ_MIN_VAL)
    frac = float(mask.mean())
    z = 2.5 * (np.log(frac + 1e-5) - np.log(_OBJ_FRACTION))
    p_yes = float(1.0 / (1.0 + np.exp(-z)))
    return ("yes" if p_yes >= 0.5 else "no"), p_yes


def synthetic_text_features(images: Iterable[Image.Image | str | os.PathLike]) -> np.ndarray:
    """FRM "answer probabilities" features: N×2 float32 ``[p_yes, p_no]`` per image.

    Accepts PIL images or image paths (e.g. the files from :func:`write_composites`).
    """
    rows = []
    for im in images:
        if not isinstance(im, Image.Image):
            with Image.open(im) as opened:
                _, p = answer_holding_object(opened)
        else:
            _, p = answer_holding_object(im)
        rows.append((p, 1.0 - p))
    return np.asarray(rows, dtype=np.float32).reshape(-1, 2)
