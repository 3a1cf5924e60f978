"""Person boxes for the RGB composite: skeleton-guided (default for NTU) or a detector plug-in.

The paper (Eq. 2) crops each frame to the person with a detector ε; the reference
Data-Processing code used YOLOv5m (REFERENCE §7.7). NTU ships the colour-image pixel coordinates
of every Kinect joint (REFERENCE §1.2, columns colorX/colorY), so for NTU the person box is
computed from the skeleton instead: no detector, no weights, deterministic, and exactly the
actors that the skeleton stream describes.

Skeleton box (``skeleton_box``):
- joints whose colour (x, y) are both 0 or non-finite are absent (padding / untracked bodies);
- one-person classes use actor 1; if actor 1 has no joint in that frame actor 2 is used;
- two-person classes (A050-A060, A106-A120, ``NTU_TWO_PERSON_ACTIONS``) use the union of both
  actors (the reference's union of the first two detections);
- the tight joint box is grown by ``margin`` × (longer box side) on every side
  (``SKELETON_MARGIN`` = 0.15: joints are joint centres, so the head top, hair, clothing and
  held objects lie outside the tight joint box), then clamped to the frame;
- a frame with no present joint has no box (it is not a "person frame").

Detector selection (``select_detection``) follows REFERENCE §7.7: detections are ordered by
descending score; one-person classes take the first, two-person classes the union of the first
two (or the single one when only one is found); no detection -> no box. Detector boxes get
``DETECTOR_MARGIN`` = 0 by default (the reference crops the raw YOLO box).

Detectors implement ``PersonDetector.detect(frame_rgb) -> list[Box]``. Built in: OpenCV's HOG
people detector (no download needed; weak but dependency-light), adapters for a user-supplied
OpenCV-DNN SSD model (e.g. MobileNet-SSD caffemodel + prototxt) and for ultralytics YOLO weights.
The adapters import lazily and say what to install or pass when something is missing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, Sequence, runtime_checkable

import numpy as np

from mmcl.formats.ntu import is_ntu_name, parse_name

#: NTU action numbers (1-based) performed by two people (REFERENCE §7.7).
NTU_TWO_PERSON_ACTIONS: frozenset[int] = frozenset(range(50, 61)) | frozenset(range(106, 121))
#: Fraction of the longer side of the tight joint box added on every side (documented choice).
SKELETON_MARGIN = 0.15
#: Margin for detector boxes (reference: raw detector box).
DETECTOR_MARGIN = 0.0
#: Smallest box side in pixels after the margin, so a single joint still gives a usable crop.
MIN_BOX_SIDE = 16.0


@dataclass(frozen=True)
class Box:
    """Axis-aligned box in pixel coordinates of the full frame (x2/y2 exclusive), with a score."""

    x1: float
    y1: float
    x2: float
    y2: float
    score: float = 1.0

    @property
    def width(self) -> float:
        return self.x2 - self.x1

    @property
    def height(self) -> float:
        return self.y2 - self.y1

    def union(self, other: "Box") -> "Box":
        return Box(
            min(self.x1, other.x1),
            min(self.y1, other.y1),
            max(self.x2, other.x2),
            max(self.y2, other.y2),
            min(self.score, other.score),
        )

    def as_list(self) -> list[float]:
        return [float(self.x1), float(self.y1), float(self.x2), float(self.y2)]


def is_two_person_ntu(name: str) -> bool:
    """Two-person class from an NTU sample name's action number; False for other names."""
    return is_ntu_name(name) and parse_name(name)[4] in NTU_TWO_PERSON_ACTIONS


def expand_box(box: Box, margin: float, width: int, height: int) -> Box:
    """Grow by ``margin`` × longer side on each side, enforce ``MIN_BOX_SIDE``, clamp to the frame."""
    pad = margin * max(box.width, box.height)
    x1, y1, x2, y2 = box.x1 - pad, box.y1 - pad, box.x2 + pad, box.y2 + pad
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    half_w = max(x2 - x1, MIN_BOX_SIDE) / 2
    half_h = max(y2 - y1, MIN_BOX_SIDE) / 2
    x1, x2, y1, y2 = cx - half_w, cx + half_w, cy - half_h, cy + half_h
    x1, y1 = max(0.0, x1), max(0.0, y1)
    x2, y2 = min(float(width), x2), min(float(height), y2)
    return Box(x1, y1, x2, y2, box.score)


def joints_box(points: np.ndarray, width: int | None = None, height: int | None = None) -> Box | None:
    """Tight box of the present joints in a K×2 array of pixel coordinates (None if none present).

    Joints outside the frame are kept (the clamp happens in ``expand_box``); when the frame size
    is known, joints entirely off-frame in x or y are ignored.
    """
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    present = np.isfinite(pts).all(axis=1) & ~((pts[:, 0] == 0) & (pts[:, 1] == 0))
    if width is not None and height is not None:
        present &= (pts[:, 0] > -width) & (pts[:, 0] < 2 * width) & (pts[:, 1] > -height) & (pts[:, 1] < 2 * height)
    if not present.any():
        return None
    p = pts[present]
    return Box(float(p[:, 0].min()), float(p[:, 1].min()), float(p[:, 0].max()), float(p[:, 1].max()))


def skeleton_box(
    frame_colors: np.ndarray, two_person: bool, width: int, height: int, margin: float = SKELETON_MARGIN
) -> Box | None:
    """Person box of one frame from colour joints M×V×2 (see the module docstring for the rules)."""
    colors = np.asarray(frame_colors)
    if colors.ndim == 2:  # a single actor V×2
        colors = colors[None]
    boxes = [joints_box(colors[m], width, height) for m in range(colors.shape[0])]
    boxes = [b for b in boxes if b is not None]
    if not boxes:
        return None
    box = boxes[0]
    if two_person:
        for other in boxes[1:]:
            box = box.union(other)
    box = expand_box(box, margin, width, height)
    if box.width <= 1 or box.height <= 1:
        return None
    return box


def select_detection(
    boxes: Sequence[Box], two_person: bool, width: int, height: int, margin: float = DETECTOR_MARGIN
) -> Box | None:
    """Reference rule: highest score for one person, union of the top two for two-person classes."""
    if not boxes:
        return None
    ordered = sorted(boxes, key=lambda b: -b.score)
    box = ordered[0]
    if two_person and len(ordered) >= 2:
        box = box.union(ordered[1])
    box = expand_box(box, margin, width, height)
    if box.width <= 1 or box.height <= 1:
        return None
    return box


@runtime_checkable
class PersonDetector(Protocol):
    """Plug-in interface: person boxes (full-frame pixels, with a score) for one RGB frame."""

    def detect(self, frame_rgb: np.ndarray) -> list[Box]: ...


def _import_cv2():
    try:
        import cv2
    except ImportError as exc:  # pragma: no cover - environment dependent
        raise ImportError(
            "this detector needs OpenCV: pip install 'mmcl[video]' (or pip install opencv-python-headless)"
        ) from exc
    return cv2


HOG_WINDOW = (64, 128)  # (w, h) of OpenCV's default people detector window (Dalal-Triggs)


class HOGPersonDetector:
    """OpenCV's built-in HOG + linear SVM people detector (Dalal-Triggs); needs no model file.

    The frame is downscaled so its longer side is ``max_side`` pixels (speed: HOG on a full 1080p
    frame takes seconds); boxes are mapped back to full-frame pixels. Picklable (the OpenCV object
    is created lazily in each process).
    """

    def __init__(self, max_side: int = 640, hit_threshold: float = 0.0, win_stride: int = 8, scale: float = 1.05):
        self.max_side = max_side
        self.hit_threshold = hit_threshold
        self.win_stride = win_stride
        self.scale = scale
        self._hog: Any = None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_hog"] = None
        return state

    def detect(self, frame_rgb: np.ndarray) -> list[Box]:
        cv2 = _import_cv2()
        if self._hog is None:
            if not hasattr(cv2, "HOGDescriptor"):  # OpenCV 5 moved HOG out of the main modules
                raise ImportError(
                    f"OpenCV {cv2.__version__} has no HOG people detector: pip install 'opencv-python-headless<5'"
                )
            self._hog = cv2.HOGDescriptor()
            self._hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
        h, w = frame_rgb.shape[:2]
        f = min(1.0, self.max_side / max(h, w))
        # OpenCV's HOG crashes the process (not an exception) on images smaller than its 64×128
        # window: upscale such frames so both sides cover the window.
        f = max(f, HOG_WINDOW[0] / w, HOG_WINDOW[1] / h)
        img = frame_rgb if f == 1.0 else cv2.resize(
            frame_rgb, (max(HOG_WINDOW[0], round(w * f)), max(HOG_WINDOW[1], round(h * f))),
            interpolation=cv2.INTER_AREA if f < 1.0 else cv2.INTER_LINEAR,
        )
        gray = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
        rects, weights = self._hog.detectMultiScale(
            gray, hitThreshold=self.hit_threshold, winStride=(self.win_stride, self.win_stride), scale=self.scale
        )
        out = []
        for (x, y, bw, bh), s in zip(np.asarray(rects).reshape(-1, 4), np.asarray(weights).reshape(-1)):
            out.append(Box(x / f, y / f, (x + bw) / f, (y + bh) / f, float(s)))
        return sorted(out, key=lambda b: -b.score)


class OpenCVDNNDetector:
    """SSD-style person detector through ``cv2.dnn`` from user-supplied model files.

    Defaults fit the common MobileNet-SSD Caffe model (``MobileNetSSD_deploy.caffemodel`` +
    ``.prototxt``; 300×300 input, scale 1/127.5, mean 127.5, VOC class 15 = person). For COCO
    TensorFlow SSD graphs pass ``person_class=1, scale=1.0, mean=0.0``.
    """

    def __init__(
        self,
        model: str | Path,
        config: str | Path | None = None,
        *,
        person_class: int = 15,
        conf_threshold: float = 0.4,
        input_size: int = 300,
        scale: float = 1 / 127.5,
        mean: float = 127.5,
        swap_rb: bool = False,
    ):
        for p in (model, config):
            if p is not None and not Path(p).is_file():
                raise FileNotFoundError(f"OpenCV-DNN detector file not found: {p} (pass the model and its config)")
        self.model, self.config = str(model), None if config is None else str(config)
        self.person_class, self.conf_threshold = person_class, conf_threshold
        self.input_size, self.scale, self.mean, self.swap_rb = input_size, scale, mean, swap_rb
        self._net: Any = None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_net"] = None
        return state

    def detect(self, frame_rgb: np.ndarray) -> list[Box]:
        cv2 = _import_cv2()
        if self._net is None:
            self._net = cv2.dnn.readNet(self.model, self.config or "")
        h, w = frame_rgb.shape[:2]
        # frames are RGB; Caffe SSD models expect BGR, so swap unless told the model wants RGB
        bgr = frame_rgb[:, :, ::-1] if not self.swap_rb else frame_rgb
        blob = cv2.dnn.blobFromImage(
            np.ascontiguousarray(bgr), self.scale, (self.input_size, self.input_size), (self.mean,) * 3, False, False
        )
        self._net.setInput(blob)
        det = np.asarray(self._net.forward()).reshape(-1, 7)  # [_, class, score, x1, y1, x2, y2] normalised
        out = [
            Box(float(d[3] * w), float(d[4] * h), float(d[5] * w), float(d[6] * h), float(d[2]))
            for d in det
            if int(d[1]) == self.person_class and d[2] >= self.conf_threshold
        ]
        return sorted(out, key=lambda b: -b.score)


class YOLODetector:
    """ultralytics YOLO adapter (class 0 = person, conf 0.25, IoU 0.45 as in REFERENCE §7.7)."""

    def __init__(self, weights: str | Path, *, conf: float = 0.25, iou: float = 0.45, device: str | None = None):
        if not Path(weights).is_file():
            raise FileNotFoundError(f"YOLO weights not found: {weights} (pass a local .pt file; nothing is downloaded)")
        try:
            import ultralytics  # noqa: F401
        except ImportError as exc:
            raise ImportError("the YOLO detector needs the ultralytics package: pip install ultralytics") from exc
        self.weights, self.conf, self.iou, self.device = str(weights), conf, iou, device
        self._model: Any = None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_model"] = None
        return state

    def detect(self, frame_rgb: np.ndarray) -> list[Box]:
        if self._model is None:
            from ultralytics import YOLO

            self._model = YOLO(self.weights)
        # ultralytics treats numpy input as BGR (OpenCV convention)
        res = self._model(
            np.ascontiguousarray(frame_rgb[:, :, ::-1]), classes=[0], conf=self.conf, iou=self.iou,
            verbose=False, device=self.device,
        )[0]
        xyxy = res.boxes.xyxy.cpu().numpy().reshape(-1, 4)
        scores = res.boxes.conf.cpu().numpy().reshape(-1)
        return sorted((Box(*map(float, b), float(s)) for b, s in zip(xyxy, scores)), key=lambda b: -b.score)


def build_detector(spec: str, model: str | Path | None = None, config: str | Path | None = None) -> PersonDetector:
    """Detector by name: ``"hog"``, ``"opencv-dnn"`` (needs ``model`` [+ ``config``]), ``"yolo"`` (needs ``model``)."""
    if spec == "hog":
        return HOGPersonDetector()
    if spec in ("opencv-dnn", "ssd"):
        if model is None:
            raise ValueError("the opencv-dnn detector needs --detector-model FILE (e.g. MobileNetSSD_deploy.caffemodel)")
        return OpenCVDNNDetector(model, config)
    if spec == "yolo":
        if model is None:
            raise ValueError("the yolo detector needs --detector-model FILE (local ultralytics .pt weights)")
        return YOLODetector(model)
    raise ValueError(f"unknown detector {spec!r}; choose hog, opencv-dnn or yolo")
