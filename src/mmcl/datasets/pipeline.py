"""A trained model's input contract and the one function that turns a raw sequence into model input.

Why one home: the evaluation dataset (``mmcl test``, the test pass at the end of training) and the
raw-file paths (``mmcl predict``, ``mmcl zero-shot``, exported models) must feed a model exactly
what it was trained on — layout, persons, test transform and **stream**. :class:`InputSpec`
states that contract (it is stored in every model card, :mod:`mmcl.checkpoints.card`), and
:func:`make_input` is the only composition of transform and stream: :class:`SkeletonDataset`
items and :meth:`InputSpec.prepare` both call it, so the two paths cannot drift.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from mmcl.config import Config
from mmcl.datasets.base import SkeletonDataset, SkeletonSource, Transform, make_input
from mmcl.formats.pose2d import CHANNELS_2D, NORMALISATIONS
from mmcl.formats.sample_store import CHANNELS_XYZ
from mmcl.formats.skeleton_file import Pose2DInput
from mmcl.skeleton.layouts import get_layout, layout_key
from mmcl.skeleton.streams import STREAMS
from mmcl.skeleton.transforms import NTU_TEST_P_INTERVAL, NTU_WINDOW, UCLA_WINDOW, NTUTransform, UCLATransform

__all__ = ["TRANSFORMS", "DEFAULT_TRANSFORM", "InputSpec", "make_input", "eval_dataset", "layout_title"]

TRANSFORMS = ("ntu", "ucla")  # REFERENCE §3.1 (crop + resize) and §3.3 (NW-UCLA centre, normalise, sample)
DEFAULT_TRANSFORM = {"ntu25": "ntu", "kinect20": "ucla"}  # what the reference evaluates each layout with
_LAYOUT_TITLES = {"ntu25": "NTU-25", "kinect20": "Kinect-20"}
_NO_RNG = np.random.default_rng(0)  # test transforms draw nothing; a generator keeps the call signature uniform


def default_channels(n: int) -> tuple[str, ...]:
    """Channel names when none are given: xyz for 3 (every dataset before 2-D keypoints), x, y for 2."""
    return {3: CHANNELS_XYZ, 2: ("x", "y")}.get(n, tuple(f"c{i}" for i in range(n)))


def layout_title(layout: str) -> str:
    """Readable layout name for messages ("NTU-25", "Kinect-20"; a user layout by its name)."""
    return _LAYOUT_TITLES.get(layout, get_layout(layout).name if layout.lstrip().startswith("{") else layout)


@dataclass(frozen=True)
class InputSpec:
    """What one model input is made of at test time (C×window×V×M float32).

    ``transform`` "ntu": centre crop ``p_interval`` + linear resize to ``window`` frames;
    "ucla": centre on J2 of frame 0, per-axis min-max, ``window`` evenly spaced frames.
    ``stream`` is applied after the transform (REFERENCE §3.1 order). ``centre`` ("ntu" only): centre on
    person 1's J2 in its first non-zero frame before the crop, for data not centred when prepared.
    """

    layout: str
    num_persons: int
    in_channels: int = 3
    stream: str = "joint"
    transform: str = "ntu"
    window: int = NTU_WINDOW
    p_interval: tuple[float, ...] = NTU_TEST_P_INTERVAL
    centre: bool = False
    channels: tuple[str, ...] = ()  # () -> x, y, z for 3 channels, x, y for 2
    normalise: str = "none"  # 2-D keypoints (channels x, y, score): image | box | none (mmcl.formats.pose2d)
    image_size: tuple[float, ...] = ()  # 2-D keypoints: (width, height) for files that do not say

    def __post_init__(self) -> None:
        object.__setattr__(self, "layout", layout_key(self.layout))  # a user layout is embedded, not a file path
        object.__setattr__(self, "channels", tuple(str(c) for c in self.channels) or default_channels(self.in_channels))
        object.__setattr__(self, "image_size", tuple(float(v) for v in self.image_size))
        if len(self.channels) != self.in_channels:
            raise ValueError(f"{self.in_channels} input channels but {len(self.channels)} channel names {list(self.channels)}")
        if self.normalise not in NORMALISATIONS:
            raise ValueError(f"normalise must be one of {', '.join(NORMALISATIONS)}, got {self.normalise!r}")
        if self.image_size and (len(self.image_size) != 2 or not all(v > 0 for v in self.image_size)):
            raise ValueError(f"image_size must be [width, height], got {list(self.image_size)}")
        if self.stream not in STREAMS:
            raise ValueError(f"unknown stream {self.stream!r}; choose from {', '.join(STREAMS)}")
        if self.transform not in TRANSFORMS:
            raise ValueError(f"unknown input transform {self.transform!r}; choose from {', '.join(TRANSFORMS)}")
        object.__setattr__(self, "p_interval", tuple(float(p) for p in self.p_interval))
        if not isinstance(self.centre, bool):
            raise ValueError(f"centre must be true or false, got {self.centre!r}")
        if self.centre and self.transform != "ntu":
            raise ValueError(f"centre applies to the ntu transform; the {self.transform} transform centres by itself")
        for name, most in (("num_persons", 64), ("in_channels", 64), ("window", 100_000)):  # bounds: beyond any dataset
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= most:
                raise ValueError(f"{name} must be an integer in 1..{most}, got {value!r}")
        if not 1 <= len(self.p_interval) <= 2 or not all(0.0 < p <= 1.0 for p in self.p_interval):
            raise ValueError(f"p_interval must be one or two fractions in (0, 1], got {self.p_interval}")

    @property
    def num_joints(self) -> int:
        return get_layout(self.layout).num_joints

    def pose2d(self) -> Pose2DInput | None:
        """How a 2-D keypoint file becomes this model's input (None for xyz models)."""
        if self.channels != CHANNELS_2D:
            return None
        return Pose2DInput(self.num_joints, self.num_persons, self.normalise, self.image_size)

    def shape(self, batch: int = 1) -> tuple[int, int, int, int, int]:
        """N×C×T×V×M of a batch of inputs."""
        return (batch, self.in_channels, self.window, self.num_joints, self.num_persons)

    def eval_transform(self) -> Transform:
        """The deterministic test transform of this input."""
        if self.transform == "ucla":
            return UCLATransform(train=False, window=self.window)
        return NTUTransform(train=False, window=self.window, p_interval=self.p_interval, rotation_theta=0.0, centre=self.centre,
                            centre_joint=get_layout(self.layout).center_joint)

    def prepare(self, x: np.ndarray, valid_length: int | None = None, *, stream: bool = True) -> np.ndarray:
        """Raw C×T×V×M coordinates (this layout and person count) -> the model's input.

        ``stream=False`` stops after the transform (joint coordinates): the input of exported graphs,
        which convert to the stream inside.
        """
        return make_input(x, valid_length, self.eval_transform(), self.stream if stream else "joint", self.layout, _NO_RNG)

    def apply_stream(self, x: np.ndarray) -> np.ndarray:
        """Stream conversion alone, for inputs already transformed another way (zero-shot preprocessing)."""
        return make_input(x, None, None, self.stream, self.layout, _NO_RNG)

    def describe(self) -> str:
        """E.g. "Kinect-20 bone stream, 1 person, ucla transform (52 frames)"."""
        people = f"{self.num_persons} person{'s' if self.num_persons != 1 else ''}"
        detail = f"{self.window} frames" if self.transform == "ucla" else f"crop {list(self.p_interval)}, {self.window} frames"
        if self.centre:
            detail = f"centred, {detail}"
        if self.channels != CHANNELS_XYZ:
            people = f"{people}, channels {'/'.join(self.channels)}" + (f" ({self.normalise}-normalised)" if self.normalise != "none" else "")
        return f"{layout_title(self.layout)} {self.stream.replace('_', '-')} stream, {people}, {self.transform} transform ({detail})"

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["p_interval"] = list(self.p_interval)
        out["channels"] = list(self.channels)
        out["image_size"] = list(self.image_size)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "InputSpec":
        known = {k: data[k] for k in ("layout", "num_persons", "in_channels", "stream", "transform", "window", "p_interval", "centre",
                                      "channels", "normalise", "image_size") if k in data}
        return cls(**known)

    @classmethod
    def from_config(cls, cfg: Config) -> "InputSpec":
        """The test input of a model trained with ``cfg``."""
        d = cfg.data
        return cls(d.layout, d.num_persons, cfg.model.in_channels, d.stream, d.transform, d.window, tuple(d.p_interval_test), d.centre,
                   tuple(d.channels), d.normalise, tuple(d.image_size))

    @classmethod
    def defaults_for(cls, layout: str, num_persons: int, in_channels: int = 3, stream: str = "joint") -> "InputSpec":
        """The reference test input of a layout (for checkpoints that do not say theirs)."""
        transform = DEFAULT_TRANSFORM.get(layout, "ntu")
        window = UCLA_WINDOW if transform == "ucla" else NTU_WINDOW
        return cls(layout, num_persons, in_channels, stream, transform, window, NTU_TEST_P_INTERVAL)


def eval_dataset(source: SkeletonSource, spec: InputSpec, seed: int = 0) -> SkeletonDataset:
    """The evaluation dataset of ``source`` for a model with input ``spec`` (deterministic)."""
    return SkeletonDataset(source, spec.eval_transform(), stream=spec.stream, layout=spec.layout, seed=seed)
