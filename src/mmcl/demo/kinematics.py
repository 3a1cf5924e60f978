"""Procedural motion of the demo world: per-class joint-angle programs and forward kinematics on the
NTU-25 layout (used by :func:`mmcl.demo.world.generate_synthetic`).

Body-local frame (a, u, f) = (person's left, up, forward), right-handed; angles in degrees as
functions of normalised time; :func:`forward_kinematics` turns them into camera-frame joints.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from mmcl.skeleton.layouts import NTU25

__all__ = ["Angles", "MotionContext", "MOTIONS", "REST_POSE", "JOINT", "rotation", "rotate", "body_segments", "forward_kinematics"]

JOINT = {name: i for i, name in enumerate(NTU25.joint_names)}  # joint name -> NTU-25 index

# ----------------------------------------------------------------------------------------
# Rotations. Body-local frame (a, u, f) = (person's left, up, forward); right-handed.
# ----------------------------------------------------------------------------------------


def rotation(axis: int, angle: np.ndarray) -> np.ndarray:
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


def rotate(r: np.ndarray, v: np.ndarray) -> np.ndarray:
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
class MotionContext:
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


def _m_wave(c: MotionContext, side: str) -> Angles:
    env = c.envelope()
    osc = np.sin(c.cycles(2.0, 4.5))
    return {
        f"{side}_sh_abd": env * (80 + 10 * c.amp),
        f"{side}_sh_flex": env * c.u(0, 25),
        f"{side}_sh_twist": env * -85,
        f"{side}_elbow": env * (75 + 25 * c.amp * osc),
        "torso_roll": env * c.u(-4, 4),
    }


def _m_raise_arms(c: MotionContext) -> Angles:
    env = c.envelope()
    top = 150 + 15 * c.amp
    out: Angles = {"head_pitch": env * -10}
    for s in "lr":
        out[f"{s}_sh_abd"] = env * top
        out[f"{s}_sh_flex"] = env * c.u(5, 30)
        out[f"{s}_elbow"] = env * c.u(0, 25)
    return out


def _m_squat(c: MotionContext) -> Angles:
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


def _m_kick(c: MotionContext) -> Angles:
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


def _m_bow(c: MotionContext) -> Angles:
    env = c.envelope()
    pitch = env * (45 + 20 * c.amp)
    out: Angles = {"torso_pitch": pitch, "head_pitch": env * 15}
    for s in "lr":
        out[f"{s}_sh_flex"] = pitch * c.u(0.8, 1.0)
        out[f"{s}_elbow"] = env * 10
    return out


def _m_walk(c: MotionContext) -> Angles:
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


def _m_clap(c: MotionContext) -> Angles:
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


def _m_hand_to_mouth(c: MotionContext) -> Angles:
    env = c.envelope()
    wobble = 3 * np.sin(c.cycles(0.5, 2.0))
    return {
        "r_sh_flex": env * (60 + 8 * c.amp),
        "r_sh_abd": env * (10 + 5 * c.amp),
        "r_sh_twist": env * 30,
        "r_elbow": env * (126 + 4 * c.amp + wobble),
        "head_pitch": env * c.u(-10, 5),
    }


def _m_hand_to_ear(c: MotionContext) -> Angles:
    env = c.envelope()
    return {
        "r_sh_flex": env * (75 + 8 * c.amp),
        "r_sh_abd": env * (60 + 8 * c.amp),
        "r_sh_twist": env * -55,
        "r_elbow": env * (131 + 4 * c.amp),
        "head_roll": env * c.u(-12, 0),
        "l_sh_abd": env * c.u(0, 10),
    }


MOTIONS: dict[str, Callable[[MotionContext], Angles]] = {
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
REST_POSE: dict[str, float] = {"l_sh_abd": 8, "r_sh_abd": 8, "l_elbow": 12, "r_elbow": 12}

# ----------------------------------------------------------------------------------------
# Forward kinematics
# ----------------------------------------------------------------------------------------


def body_segments(height: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
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
    r_up = _mm(rotation(2, rad["sh_abd"]), rotation(0, -rad["sh_flex"]), rotation(1, -rad["sh_twist"]))
    r_fore = r_up @ rotation(0, -rad["elbow"])
    down = np.array([0.0, -1.0, 0.0])
    l = {k: seg[k][:, None, None] for k in ("upper_arm", "forearm", "palm", "finger", "thumb")}
    elbow = rotate(r_up, down) * l["upper_arm"]
    wrist = elbow + rotate(r_fore, down) * l["forearm"]
    hand = wrist + rotate(r_fore, down) * l["palm"]
    # Fingers curl towards the palm (palm faces the body midline, i.e. -a, when relaxed).
    r_curl = rotation(2, -np.deg2rad(curl))[:, None]
    tip = hand + rotate(r_fore @ r_curl, down) * l["finger"]
    th = np.stack([-0.35 * np.ones_like(spread), -0.45 * np.ones_like(spread),
                   0.82 + spread / seg["thumb"]], axis=-1)
    th = th / np.linalg.norm(th, axis=-1, keepdims=True)
    thumb = hand + rotate(r_fore, th[:, None, :]) * l["thumb"]
    return {"elbow": elbow, "wrist": wrist, "hand": hand, "tip": tip, "thumb": thumb}


def _limb_leg(seg: dict, ang: Angles, side: str):
    """Leg joint offsets (left-limb convention, pelvis frame) from the hip."""
    flex, abd, knee = (np.deg2rad(ang[f"{side}_{k}"]) for k in ("hip_flex", "hip_abd", "knee"))
    r_thigh = rotation(2, abd) @ rotation(0, -flex)
    r_shin = r_thigh @ rotation(0, knee)
    down = np.array([0.0, -1.0, 0.0])
    knee_p = rotate(r_thigh, down) * seg["thigh"][:, None, None]
    ankle = knee_p + rotate(r_shin, down) * seg["shin"][:, None, None]
    # The foot half-follows the shin pitch: flat when standing, pointing when kicking.
    r_foot = rotation(2, abd) @ rotation(0, -0.5 * (flex - knee))
    fvec = np.array([0.0, -1.0, 0.0]) * seg["ankle_h"][:, None, None] * 0.6
    fvec = fvec + np.array([0.0, 0.0, 1.0]) * seg["foot"][:, None, None]
    foot = ankle + rotate(r_foot, fvec)
    return {"knee": knee_p, "ankle": ankle, "foot": foot}


def forward_kinematics(seg: dict, ang: Angles, curl: np.ndarray, spread: np.ndarray) -> np.ndarray:
    """Joint positions n×T×25×3 in the body frame (a, u, f), feet on the floor y=0."""
    n, t = ang["torso_pitch"].shape
    pitch, roll, yaw = (np.deg2rad(ang[k]) for k in ("torso_pitch", "torso_roll", "torso_yaw"))
    r_torso = _mm(rotation(1, yaw), rotation(0, pitch), rotation(2, -roll))
    r_half = _mm(rotation(1, 0.5 * yaw), rotation(0, 0.5 * pitch), rotation(2, -0.5 * roll))
    r_head = r_torso @ rotation(0, np.deg2rad(ang["head_pitch"])) @ rotation(2, -np.deg2rad(ang["head_roll"]))
    up = np.array([0.0, 1.0, 0.0])
    L = {k: v[:, None, None] for k, v in seg.items()}
    P = np.zeros((n, t, 25, 3))
    P[:, :, JOINT["spine middle"]] = rotate(r_half, up) * L["spine_low"]
    P[:, :, JOINT["spine shoulder"]] = P[:, :, JOINT["spine middle"]] + rotate(r_torso, up) * L["spine_up"]
    P[:, :, JOINT["neck"]] = P[:, :, JOINT["spine shoulder"]] + rotate(r_torso, up) * L["neck"]
    head_v = np.array([0.0, 1.0, 0.1]) / np.hypot(1.0, 0.1)
    P[:, :, JOINT["head"]] = P[:, :, JOINT["neck"]] + rotate(r_head, head_v) * L["head"]
    zeros = np.zeros((n,))
    for side, sign, prefix in (("l", 1.0, "left"), ("r", -1.0, "right")):
        mirror = np.array([sign, 1.0, 1.0])
        sh_off = np.stack([seg["shoulder_w"], -0.1 * seg["shoulder_w"], zeros], -1)[:, None]
        shoulder = P[:, :, JOINT["spine shoulder"]] + rotate(r_torso, sh_off * mirror)
        P[:, :, JOINT[f"{prefix} shoulder"]] = shoulder
        arm = _limb_arm(seg, ang, side, curl[side], spread[side])
        for key, joint in (("elbow", "elbow"), ("wrist", "wrist"), ("hand", "hand"),
                           ("tip", "hand tip"), ("thumb", "thumb")):
            P[:, :, JOINT[f"{prefix} {joint}"]] = shoulder + rotate(r_torso, arm[key] * mirror)
        hip = np.stack([seg["hip_w"], -seg["hip_drop"], zeros], -1)[:, None] * mirror
        P[:, :, JOINT[f"{prefix} hip"]] = hip
        leg = _limb_leg(seg, ang, side)
        for key, joint in (("knee", "knee"), ("ankle", "ankle"), ("foot", "foot")):
            P[:, :, JOINT[f"{prefix} {joint}"]] = hip + leg[key] * mirror
    # Ground contact: the lower foot touches the floor (y=0) and does not slide horizontally.
    contact = []
    for prefix in ("left", "right"):
        ankle, foot = P[:, :, JOINT[f"{prefix} ankle"]], P[:, :, JOINT[f"{prefix} foot"]]
        contact.append(np.minimum(ankle[..., 1] - L["ankle_h"][..., 0],
                                  foot[..., 1] - 0.4 * L["ankle_h"][..., 0]))
    contact = np.stack(contact, -1)  # n×T×2
    ground = contact.min(-1)
    w = np.exp(-(contact - ground[..., None]) / 0.01)
    w = w / w.sum(-1, keepdims=True)
    slide = np.zeros((n, t, 3))
    for k, prefix in enumerate(("left", "right")):
        foot = P[:, :, JOINT[f"{prefix} foot"]]
        slide += w[..., k : k + 1] * (_rest_foot(seg, sign=1.0 - 2.0 * k) - foot)
    slide[..., 1] = -ground
    return P + slide[:, :, None, :]


def _rest_foot(seg: dict, sign: float) -> np.ndarray:
    """Foot joint of the neutral standing pose (body frame), n×1×3 — the sliding anchor."""
    x = sign * seg["hip_w"]
    y = -seg["hip_drop"] - seg["thigh"] - seg["shin"] - 0.6 * seg["ankle_h"]
    z = seg["foot"]
    return np.stack([x, y, z], -1)[:, None, :]


