"""Skeleton datasets: raw sources (reference npz, prepared folder, NW-UCLA JSON), the
deterministic :class:`SkeletonDataset` / :class:`EpochSampler`, and class names."""

from __future__ import annotations

from importlib import resources

from mmcl.datasets.base import DataError, EpochSampler, SkeletonDataset, SkeletonSource
from mmcl.datasets.nwucla import NWUCLASource, read_nwucla_json
from mmcl.datasets.prepared import (
    PreparedSource,
    ReferenceNpzSource,
    normalize_split,
    open_source,
    write_prepared,
)

__all__ = [
    "DataError",
    "EpochSampler",
    "SkeletonDataset",
    "SkeletonSource",
    "NWUCLASource",
    "read_nwucla_json",
    "PreparedSource",
    "ReferenceNpzSource",
    "normalize_split",
    "open_source",
    "write_prepared",
    "class_names",
]

# dataset name -> (resource file, number of lines used). NTU-60 = the first 60 NTU-120
# classes (REFERENCE §10.1); NW-UCLA order = label order (REFERENCE §10.2).
_CLASS_NAME_FILES: dict[str, tuple[str, int | None]] = {
    "ntu120": ("ntu120.txt", 120),
    "ntu60": ("ntu120.txt", 60),
    "nwucla": ("nwucla.txt", 10),
}
_ALIASES = {"nw-ucla": "nwucla", "ucla": "nwucla", "nw_ucla": "nwucla"}


def class_names(dataset: str) -> list[str]:
    """Class names in label order for ``"ntu60"``, ``"ntu120"`` or ``"nwucla"`` (alias ``"nw-ucla"``)."""
    key = dataset.lower()
    key = _ALIASES.get(key, key)
    if key not in _CLASS_NAME_FILES:
        raise ValueError(f"no class names for dataset {dataset!r}; choose from {sorted(_CLASS_NAME_FILES)}")
    filename, count = _CLASS_NAME_FILES[key]
    text = resources.files("mmcl").joinpath("resources", "class_names", filename).read_text(encoding="utf-8")
    return text.splitlines()[:count]
