"""Skeleton datasets: raw sources (reference npz, prepared folder, NW-UCLA JSON), the
deterministic :class:`SkeletonDataset` / :class:`EpochSampler`, and class names."""

from __future__ import annotations

from importlib import resources

from mmcl.datasets.base import DataError, EpochSampler, SkeletonDataset, SkeletonSource
from mmcl.datasets.nwucla import NWUCLASource
from mmcl.datasets.prepared import PreparedSource, ReferenceNpzSource
from mmcl.datasets.sources import open_source
from mmcl.datasets.splits import normalize_split
from mmcl.formats.sample_store import SampleStore, write_dataset

__all__ = [
    "DataError",
    "EpochSampler",
    "SkeletonDataset",
    "SkeletonSource",
    "NWUCLASource",
    "PreparedSource",
    "ReferenceNpzSource",
    "normalize_split",
    "open_source",
    "SampleStore",
    "write_dataset",
    "class_names",
    "DATASET_SHAPES",
    "normalize_dataset",
]

# dataset name -> (resource file, number of lines used). NTU-60 = the first 60 NTU-120
# classes (REFERENCE §10.1); NW-UCLA order = label order (REFERENCE §10.2).
_CLASS_NAME_FILES: dict[str, tuple[str, int | None]] = {
    "ntu120": ("ntu120.txt", 120),
    "ntu60": ("ntu120.txt", 60),
    "nwucla": ("nwucla.txt", 10),
}
_ALIASES = {"nw-ucla": "nwucla", "ucla": "nwucla", "nw_ucla": "nwucla"}

# dataset -> model shape (REFERENCE §2.6/§5.1 for NTU: 25 joints, 2 actors; §3.3 for NW-UCLA: 20 joints, 1 person).
DATASET_SHAPES: dict[str, dict[str, int | str]] = {
    "ntu60": {"num_classes": 60, "layout": "ntu25", "num_persons": 2},
    "ntu120": {"num_classes": 120, "layout": "ntu25", "num_persons": 2},
    "nwucla": {"num_classes": 10, "layout": "kinect20", "num_persons": 1},
}


def normalize_dataset(name: str | None) -> str | None:
    """Canonical dataset name (``"nw-ucla"`` -> ``"nwucla"``); None stays None."""
    if name is None:
        return None
    key = name.lower()
    return _ALIASES.get(key, key)


def class_names(dataset: str) -> list[str]:
    """Class names in label order for ``"ntu60"``, ``"ntu120"`` or ``"nwucla"`` (alias ``"nw-ucla"``)."""
    key = normalize_dataset(dataset) or ""
    if key not in _CLASS_NAME_FILES:
        raise ValueError(f"no class names for dataset {dataset!r}; choose from {sorted(_CLASS_NAME_FILES)}")
    filename, count = _CLASS_NAME_FILES[key]
    text = resources.files("mmcl").joinpath("resources", "class_names", filename).read_text(encoding="utf-8")
    return text.splitlines()[:count]
