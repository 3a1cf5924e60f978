"""Person boxes: skeleton rules, detector selection, detector plug-ins (HOG, adapters, custom)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mmcl.modalities.detect import (
    SKELETON_MARGIN,
    Box,
    HOGPersonDetector,
    OpenCVDNNDetector,
    PersonDetector,
    YOLODetector,
    build_detector,
    is_two_person_ntu,
    select_detection,
    skeleton_box,
)


class RedDetector:
    """Test detector: the bounding box of strongly red pixels (picklable, no model)."""

    def detect(self, frame_rgb: np.ndarray) -> list[Box]:
        f = frame_rgb.astype(int)
        ys, xs = np.nonzero((f[..., 0] > 150) & (f[..., 1] < 100) & (f[..., 2] < 100))
        if len(xs) < 20:
            return []
        return [Box(xs.min(), ys.min(), xs.max() + 1, ys.max() + 1, 0.9)]


def test_two_person_classes() -> None:
    assert is_two_person_ntu("S001C001P001R001A050") and is_two_person_ntu("S018C001P001R001A120")
    assert not is_two_person_ntu("S001C001P001R001A049") and not is_two_person_ntu("S018C001P001R001A105")
    assert is_two_person_ntu("S018C001P001R001A106") and not is_two_person_ntu("odd_name")


def test_skeleton_box_rules() -> None:
    c = np.zeros((2, 25, 2), np.float32)
    assert skeleton_box(c, False, 1920, 1080) is None  # no joints -> not a person frame
    c[0, :, 0] = np.linspace(900, 1000, 25)
    c[0, :, 1] = np.linspace(300, 700, 25)
    c[0, 5] = 0  # an absent joint is ignored, not treated as (0, 0)
    c[1, :, 0] = np.linspace(1500, 1600, 25)
    c[1, :, 1] = np.linspace(400, 600, 25)
    one = skeleton_box(c, False, 1920, 1080)
    pad = SKELETON_MARGIN * 400
    assert one == Box(900 - pad, 300 - pad, 1000 + pad, 700 + pad)
    two = skeleton_box(c, True, 1920, 1080)
    assert two.x2 == pytest.approx(1600 + SKELETON_MARGIN * 700) and two.x1 == pytest.approx(900 - SKELETON_MARGIN * 700)
    c[0] = 0  # actor 1 absent in this frame -> actor 2 is used
    assert skeleton_box(c, False, 1920, 1080).x1 == pytest.approx(1500 - SKELETON_MARGIN * 200)
    c[1, :, 1] = np.linspace(900, 1200, 25)  # partly below the frame -> clamped
    assert skeleton_box(c, False, 1920, 1080).y2 == 1080


def test_select_detection_reference_rule() -> None:
    a, b = Box(0, 0, 20, 20, 0.5), Box(50, 50, 70, 80, 0.9)
    assert select_detection([], False, 100, 100) is None
    assert select_detection([a, b], False, 100, 100) == b  # highest score first
    assert select_detection([a, b], True, 100, 100) == Box(0, 0, 70, 80, 0.5)
    assert select_detection([a], True, 100, 100) == a


def test_custom_detector_plugin_skips_frames_without_person(tmp_path: Path) -> None:
    pytest.importorskip("av")
    from mmcl.modalities.composite import RGBJob, extract_rgb, video_rgb_jobs
    from mmcl.modalities.video import write_video

    frames = []
    for t in range(12):
        f = np.full((96, 128, 3), 200, np.uint8)
        if t % 3 != 0:  # every third frame has nobody
            f[20:80, 10 + 4 * t : 30 + 4 * t] = (220, 30, 30)
        frames.append(f)
    write_video(tmp_path / "clip_rgb.mp4", frames)
    write_video(tmp_path / "nobody_rgb.mp4", [np.full((96, 128, 3), 200, np.uint8)] * 4)
    jobs = video_rgb_jobs(tmp_path, pattern="*.mp4", name_suffix="_rgb")
    assert [j.name for j in jobs] == ["clip", "nobody"] and all(isinstance(j, RGBJob) for j in jobs)
    det = RedDetector()
    assert isinstance(det, PersonDetector)
    rep = extract_rgb(jobs, tmp_path / "out", box_source=det, frame_size=(16, 32), progress=False)
    assert rep.written == 1 and rep.failures["nobody"]["reason"] == "no_person"
    assert all(t % 3 != 0 for t in rep.samples["clip"]["frames"])
    assert rep.samples["clip"]["person_frames"] == 8


def test_hog_detector_runs() -> None:
    cv2 = pytest.importorskip("cv2")
    if not hasattr(cv2, "HOGDescriptor"):
        pytest.skip("OpenCV >= 5 has no HOG in the main modules")
    det = build_detector("hog")
    assert isinstance(det, HOGPersonDetector)
    boxes = det.detect(np.full((240, 320, 3), 127, np.uint8))
    assert isinstance(boxes, list)  # a flat image: typically no person, but never an error
    import pickle

    det.detect(np.zeros((128, 64, 3), np.uint8))
    assert isinstance(pickle.loads(pickle.dumps(det)), HOGPersonDetector)


def test_adapters_fail_clearly(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="model and its config"):
        OpenCVDNNDetector(tmp_path / "MobileNetSSD_deploy.caffemodel", tmp_path / "x.prototxt")
    with pytest.raises(FileNotFoundError, match="YOLO weights"):
        YOLODetector(tmp_path / "yolov5m.pt")
    with pytest.raises(ValueError, match="--detector-model"):
        build_detector("yolo")
    with pytest.raises(ValueError, match="unknown detector"):
        build_detector("magic")
    weights = tmp_path / "w.pt"
    weights.write_bytes(b"x")
    try:
        import ultralytics  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="pip install ultralytics"):
            YOLODetector(weights)


@pytest.mark.parametrize("shape", [(96, 72, 3), (200, 100, 3), (50, 30, 3)])
def test_hog_survives_frames_smaller_than_its_window(shape: tuple[int, int, int]) -> None:
    """OpenCV's HOG kills the process on images below 64×128; the detector must upscale them."""
    pytest.importorskip("cv2")
    from mmcl.modalities.detect import HOGPersonDetector

    boxes = HOGPersonDetector().detect(np.zeros(shape, dtype=np.uint8))
    assert boxes == []
