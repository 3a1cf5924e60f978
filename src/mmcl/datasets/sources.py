"""Open the skeleton source a path holds (a reference NTU ``.npz``, a prepared folder or an NW-UCLA folder),
and list a dataset's sample names (the keys co-learning features are stored under)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mmcl.datasets.base import DataError, SkeletonSource
from mmcl.datasets.nwucla import NWUCLASource
from mmcl.datasets.prepared import META_FILE, PreparedSource, ReferenceNpzSource
from mmcl.formats.sample_store import STORE_DIR

__all__ = ["open_source", "dataset_names", "splits_of"]


def open_source(path: str | Path, split: str, *, progress: bool = True, **kwargs: Any) -> SkeletonSource:
    """Open a skeleton source by looking at ``path``.

    A ``.npz`` file -> :class:`ReferenceNpzSource`; a folder with ``meta.json`` ->
    :class:`PreparedSource`; a folder of ``*.json`` files (NW-UCLA ``all_sqe``) ->
    :class:`~mmcl.datasets.nwucla.NWUCLASource`. Extra keyword arguments go to that class;
    ``progress`` is the NW-UCLA loading bar (the other sources open without reading every file).
    """
    p = Path(path)
    if not p.exists():
        raise DataError("does not exist", p)
    if p.is_file():
        if p.suffix == ".npz":
            return ReferenceNpzSource(p, split, **kwargs)
        raise DataError("is a file but not a .npz; expected a .npz, a prepared folder or an all_sqe folder", p)
    if (p / META_FILE).is_file():
        return PreparedSource(p, split, **kwargs)
    if (p / STORE_DIR / META_FILE).is_file():
        benchmarks = sorted(c.name for c in p.iterdir() if c.is_dir() and c.name != STORE_DIR and (c / META_FILE).is_file())
        raise DataError(
            "is a prepared dataset's root; give one of its benchmark folders: "
            + (", ".join(str(p / b) for b in benchmarks) or "(none written yet)"), p
        )
    if any(child.suffix == ".json" for child in p.iterdir()):
        return NWUCLASource(p, split, progress=progress, **kwargs)
    raise DataError("is neither a prepared folder (meta.json) nor an NW-UCLA all_sqe folder (*.json)", p)


def splits_of(split: str) -> list[str]:
    """``"all"`` -> both splits, otherwise the one named."""
    return ["train", "test"] if split == "all" else [split]


def dataset_names(path: str | Path, split: str = "all") -> list[str]:
    """Sample names of a dataset path (prepared folder, reference .npz, NW-UCLA folder), split order, unique."""
    names: list[str] = []
    for s in splits_of(split):
        source = open_source(path, s)
        if isinstance(source, ReferenceNpzSource):
            raise ValueError(
                f"{path}: a reference .npz has no sample names (only train_<i>/test_<i>); "
                "use the prepared folder of `mmcl prepare ntu` instead"
            )
        names.extend(source.names)
    return list(dict.fromkeys(names))
