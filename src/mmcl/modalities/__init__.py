"""Extra modalities for co-learning: RGB temporal images, CNN features, BLIP text features, feature store.

Heavy optional dependencies (PyAV, OpenCV, transformers, sentence-transformers) are imported only
when a pipeline that needs them runs, so ``import mmcl.modalities`` is cheap.
"""

from .composite import (
    FRAMES_PER_IMAGE,
    JPEG_QUALITY,
    TILE_SIZE,
    CompositeResult,
    ExtractReport,
    NoPersonError,
    RGBJob,
    colors_from_skeleton_file,
    compose_sample,
    extract_rgb,
    ntu_rgb_jobs,
    uniform_sample,
    video_rgb_jobs,
)
from .detect import (
    Box,
    HOGPersonDetector,
    OpenCVDNNDetector,
    PersonDetector,
    YOLODetector,
    build_detector,
    is_two_person_ntu,
)
from .store import FeatureStore, StoreCheck, check_store

__all__ = [
    "FRAMES_PER_IMAGE", "JPEG_QUALITY", "TILE_SIZE", "CompositeResult", "ExtractReport", "NoPersonError",
    "RGBJob", "colors_from_skeleton_file", "compose_sample", "extract_rgb", "ntu_rgb_jobs", "uniform_sample",
    "video_rgb_jobs", "Box", "HOGPersonDetector", "OpenCVDNNDetector", "PersonDetector", "YOLODetector",
    "build_detector", "is_two_person_ntu", "FeatureStore", "StoreCheck", "check_store",
]
