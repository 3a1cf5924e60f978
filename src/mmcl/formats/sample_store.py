"""The compact prepared store: every sample once, unpadded; a benchmark is a split index into it.

Why: padding every sample to 300 frames and writing it once per benchmark made NTU preparation
write ~6× more bytes than the samples hold (issue 21); the writing, not the parsing, was the cost.

Layout (docs/architecture.md)::

    <out>/samples/           the store
      meta.json              format, dataset, layout, channels, num_persons, num_classes, count, frames, max_frames
      joints.npy             float32 F×M×V×C: the valid frames of every sample, concatenated
      offsets.npy            int64 N+1: sample i is joints[offsets[i]:offsets[i+1]]
      labels.npy             int64 N, 0-based
      names.txt              N lines
      groups.txt             (optional) N lines: the subject/performer a sample belongs to
      colors.npy             (optional) float32 F×M×V×2: colour-image pixel of each joint (NTU)
    <out>/<benchmark>/       e.g. xsub, cross_view
      meta.json              {"store": "../samples", dataset, benchmark, layout, num_classes, ...}
      train.npy, test.npy    int64 rows of the store

Every array is memory-mapped when read, so training reads a sample as one contiguous slice.
Writing goes through :class:`StoreWriter` into a staging folder that the caller moves into place
as a set (:func:`write_dataset` does both).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from mmcl import __version__
from mmcl.formats.errors import READ_ERRORS, DataError, first_line
from mmcl.io import (
    LockedError,
    atomic_write_text,
    check_output_folder,
    commit_set,
    exclusive_lock,
    finish_commit,
    remove_stale_temporaries,
)
from mmcl.skeleton.layouts import get_layout, layout_key

__all__ = [
    "STORE_DIR", "STORE_FORMAT", "CHANNELS_XYZ", "CHANNELS_XY_SCORE", "SampleStore", "StoreWriter",
    "write_split_index", "write_dataset", "DATASET_LOCK",
]

STORE_DIR = "samples"
MAX_FRAMES_LIMIT = 100_000  # a padded length above this (~55 min at 30 fps) is a damaged meta.json, not a clip
STORE_FORMAT = 1
STORE_META_REQUIRED = ("format", "dataset", "layout", "channels", "num_persons", "num_classes", "count", "frames")
CHANNELS_XYZ = ("x", "y", "z")
CHANNELS_XY_SCORE = ("x", "y", "score")  # 2D keypoints with the detector's confidence kept as a channel (as PYSKL)
DATASET_LOCK = ".mmcl-prepare.lock"



def _load(path: Path, mmap: bool = False) -> np.ndarray:
    if not path.is_file():
        raise DataError("store file is missing", path)
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except READ_ERRORS as exc:
        raise DataError(f"cannot read ({first_line(exc)})", path) from None


def _lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read ({first_line(exc)})", path) from None


def read_json_object(path: Path) -> dict[str, Any]:
    """A JSON object from ``path`` (DataError naming the file otherwise)."""
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(f"invalid JSON ({first_line(exc)})", path) from None
    if not isinstance(obj, dict):
        raise DataError(f"must hold a JSON object, got {type(obj).__name__}", path)
    return obj


def meta_int(meta: Mapping[str, Any], key: str, path: Path, minimum: int = 1, maximum: int | None = None) -> int:
    """``meta[key]`` as an int in ``minimum..maximum`` (DataError naming the file otherwise)."""
    value = meta[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum or (maximum is not None and value > maximum):
        raise DataError(f"{key} must be an integer in {minimum}..{maximum if maximum is not None else ''}, got {value!r}", path)
    return value


class SampleStore:
    """Read side of a store folder; checks its structure once when opened (DataError naming the file)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        meta_path = self.root / "meta.json"
        if not meta_path.is_file():
            raise DataError("is not a sample store (meta.json missing)", self.root)
        self.meta = read_json_object(meta_path)
        missing = [k for k in STORE_META_REQUIRED if k not in self.meta]
        if missing:
            raise DataError(f"store meta.json lacks {missing}", meta_path)
        if self.meta["format"] != STORE_FORMAT or isinstance(self.meta["format"], bool):
            raise DataError(f"store format {self.meta['format']!r} is not {STORE_FORMAT}; prepare it again with this mmcl", meta_path)
        try:
            self.layout = layout_key(str(self.meta["layout"]))
        except (KeyError, ValueError) as exc:
            raise DataError(f"unknown layout {self.meta['layout']!r} ({first_line(exc)})", meta_path) from None
        channels = self.meta["channels"]
        if not isinstance(channels, list) or not channels or not all(isinstance(c, str) for c in channels):
            raise DataError(f"channels must be a list of names, got {channels!r}", meta_path)
        self.channels = tuple(channels)
        self.num_persons = meta_int(self.meta, "num_persons", meta_path)
        self.num_classes = meta_int(self.meta, "num_classes", meta_path)
        v = get_layout(self.layout).num_joints
        self.joints = _load(self.root / "joints.npy", mmap=True)
        shape = (self.num_persons, v, len(self.channels))
        if self.joints.ndim != 4 or self.joints.shape[1:] != shape or self.joints.dtype != np.float32:
            raise DataError(f"expected float32 F×{'×'.join(map(str, shape))}, got {self.joints.dtype} {self.joints.shape}",
                            self.root / "joints.npy")
        n = meta_int(self.meta, "count", meta_path, minimum=0)
        offsets = _load(self.root / "offsets.npy")
        ok = offsets.shape == (n + 1,) and offsets.dtype.kind in "iu"
        self.offsets = offsets.astype(np.int64) if ok else np.zeros(1, np.int64)
        lengths = np.diff(self.offsets)
        if not ok or self.offsets[0] != 0 or self.offsets[-1] != len(self.joints) or (n and lengths.min() < 1):
            raise DataError(f"offsets must be {n + 1} increasing integers from 0 to {len(self.joints)}, "
                            f"got {offsets.dtype} {offsets.shape}", self.root / "offsets.npy")
        self.lengths = lengths
        labels = _load(self.root / "labels.npy")
        if labels.shape != (n,) or labels.dtype.kind not in "iu" or (n and (labels.min() < 0 or labels.max() >= self.num_classes)):
            raise DataError(f"labels must be {n} integers in 0..{self.num_classes - 1}", self.root / "labels.npy")
        self.labels = labels.astype(np.int64)
        self.names = _lines(self.root / "names.txt")
        if len(self.names) != n:
            raise DataError(f"{len(self.names)} names for {n} samples (incomplete write?)", self.root / "names.txt")
        groups = self.root / "groups.txt"
        self.groups: list[str] | None = _lines(groups) if groups.is_file() else None
        if self.groups is not None and len(self.groups) != n:
            raise DataError(f"{len(self.groups)} groups for {n} samples", groups)
        colors = self.root / "colors.npy"
        self.colors: np.ndarray | None = _load(colors, mmap=True) if colors.is_file() else None
        if self.colors is not None and self.colors.shape != (len(self.joints), self.num_persons, v, 2):
            raise DataError(f"colours must be {len(self.joints)}×{self.num_persons}×{v}×2, got {self.colors.shape}", colors)
        self.max_frames = max(meta_int(self.meta, "max_frames", meta_path, minimum=0, maximum=MAX_FRAMES_LIMIT) if "max_frames" in self.meta else 0,
                              int(lengths.max(initial=0)))

    def __len__(self) -> int:
        return len(self.labels)

    def frames(self, i: int) -> np.ndarray:
        """Sample ``i``'s valid frames, T×M×V×C (a memory-mapped view)."""
        return self.joints[self.offsets[i] : self.offsets[i + 1]]

    def sample_colors(self, i: int) -> np.ndarray | None:
        """Sample ``i``'s colour-pixel joints T×M×V×2 (a memory-mapped view), or None."""
        return None if self.colors is None else self.colors[self.offsets[i] : self.offsets[i + 1]]

    def __repr__(self) -> str:
        return f"SampleStore({str(self.root)!r}, n={len(self)}, layout={self.layout!r}, channels={self.channels})"


class StoreWriter:
    """Append samples into a new store folder of known total size (``frames`` = sum of lengths).

    The ``.npy`` headers are written first and the frames appended in order with plain writes (no
    memory map: page-faulting a fresh mapping was the slowest part of writing NTU), so a 100k-sample
    dataset never sits in memory; :meth:`close` checks that every frame was written and writes
    meta.json last.
    """

    def __init__(self, root: str | Path, *, frames: int, layout: str, num_persons: int,
                 channels: Sequence[str] = CHANNELS_XYZ, colors: bool = False) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.layout = layout_key(layout)  # a user layout is embedded whole
        self.channels = tuple(channels)
        self.num_persons = int(num_persons)
        self.frames = int(frames)
        v = get_layout(layout).num_joints
        self._shape = (self.num_persons, v, len(self.channels))
        self._joints = self._open("joints.npy", (self.frames, *self._shape))
        self._colors = self._open("colors.npy", (self.frames, self.num_persons, v, 2)) if colors else None
        self._offsets = [0]
        self.names: list[str] = []
        self.labels: list[int] = []
        self.groups: list[str] = []

    def _open(self, name: str, shape: tuple[int, ...]) -> Any:
        f = open(self.root / name, "wb")
        header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)), "fortran_order": False, "shape": shape}
        np.lib.format.write_array_header_1_0(f, header)
        return f

    def add(self, name: str, label: int, x: np.ndarray, *, colors: np.ndarray | None = None,
            group: str | None = None) -> int:
        """Append one sample ``x`` T×M×V×C (valid frames only); returns its row."""
        t = len(x)
        o = self._offsets[-1]
        if t < 1 or o + t > self.frames or tuple(x.shape[1:]) != self._shape:
            raise ValueError(f"{name}: shape {tuple(x.shape)} does not fit (T×{'×'.join(map(str, self._shape))}, "
                             f"{self.frames - o} of {self.frames} frames left)")
        if not np.isfinite(x).all():
            raise ValueError(f"{name}: NaN or infinite coordinates")
        self._joints.write(np.ascontiguousarray(x, dtype=np.float32).data)
        if self._colors is not None:
            c = np.zeros((t, *self._shape[:2], 2), np.float32) if colors is None else colors
            self._colors.write(np.ascontiguousarray(c, dtype=np.float32).data)
        self._offsets.append(o + t)
        self.names.append(str(name))
        self.labels.append(int(label))
        if group is not None:
            self.groups.append(str(group))
        return len(self.names) - 1

    def abort(self) -> None:
        """Close the files without finishing the store (the caller removes its staging folder)."""
        for f in (self._joints, self._colors):
            if f is not None:
                f.close()

    def close(self, *, dataset: str, num_classes: int, max_frames: int | None = None, **extra: Any) -> Path:
        """Check what was written, finish the files and write meta.json (the store is then complete)."""
        self.abort()
        if self._offsets[-1] != self.frames:
            raise ValueError(f"store holds {self._offsets[-1]} of the {self.frames} frames announced")
        bad = [n for n in self.names if not n or "\n" in n or "\r" in n]
        if bad:
            raise ValueError(f"empty sample names or names with line breaks: {bad[:3]}")
        if len(set(self.names)) != len(self.names):
            raise ValueError("sample names must be unique (they are join keys)")
        if self.groups and len(self.groups) != len(self.names):
            raise ValueError("give a group for every sample or for none")
        labels = np.asarray(self.labels, dtype=np.int64)
        if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
            raise ValueError(f"labels outside 0..{num_classes - 1}")
        np.save(self.root / "offsets.npy", np.asarray(self._offsets, dtype=np.int64))
        np.save(self.root / "labels.npy", labels)
        (self.root / "names.txt").write_text("".join(n + "\n" for n in self.names), encoding="utf-8")
        if self.groups:
            (self.root / "groups.txt").write_text("".join(g + "\n" for g in self.groups), encoding="utf-8")
        lengths = np.diff(self._offsets)
        meta = {
            "format": STORE_FORMAT, "dataset": dataset, "layout": self.layout, "channels": list(self.channels),
            "num_persons": self.num_persons, "num_classes": int(num_classes), "count": len(self.names),
            "frames": int(self._offsets[-1]), "longest": int(lengths.max()) if lengths.size else 0,
            "max_frames": int(max_frames if max_frames is not None else (lengths.max() if lengths.size else 0)),
            **extra, "mmcl_version": __version__, "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        atomic_write_text(self.root / "meta.json", json.dumps(meta, indent=2, ensure_ascii=False) + "\n")
        return self.root


def write_split_index(root: str | Path, splits: Mapping[str, Sequence[int] | np.ndarray], meta: Mapping[str, Any],
                      *, store: str = f"../{STORE_DIR}") -> Path:
    """A benchmark folder: ``<split>.npy`` rows of the store at ``store`` (relative) and meta.json."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    counts = {}
    for split, rows in splits.items():
        idx = np.asarray(rows, dtype=np.int64)
        np.save(root / f"{split}.npy", idx)
        counts[split] = int(idx.size)
    out = {"store": store, **meta, "counts": counts, "mmcl_version": __version__,
           "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    atomic_write_text(root / "meta.json", json.dumps(out, indent=2, ensure_ascii=False) + "\n")
    return root


def write_dataset(
    out: str | Path,
    samples: Sequence[np.ndarray],
    labels: Sequence[int] | np.ndarray,
    names: Sequence[str],
    *,
    dataset: str,
    layout: str,
    num_classes: int,
    benchmarks: Mapping[str, Mapping[str, Sequence[int] | np.ndarray]],
    channels: Sequence[str] = CHANNELS_XYZ,
    groups: Sequence[str] | None = None,
    colors: Sequence[np.ndarray] | None = None,
    max_frames: int | None = None,
    store_meta: Mapping[str, Any] | None = None,
    benchmark_meta: Mapping[str, Any] | None = None,
) -> Path:
    """Write a whole prepared dataset ``<out>/samples`` + ``<out>/<benchmark>/`` as one set.

    ``samples`` are C×T×V×M arrays of valid frames (the reader's form). Everything is written into
    a staging folder inside ``out`` and moved into place under a journal (:func:`mmcl.io.commit_set`)
    while holding ``<out>/.mmcl-prepare.lock``: readers see the old set or the new one, never a mix.
    """
    out = check_output_folder(out)
    if not (len(samples) == len(labels) == len(names)) or (groups is not None and len(groups) != len(names)):
        raise ValueError(f"{len(samples)} samples, {len(labels)} labels, {len(names)} names"
                         + ("" if groups is None else f", {len(groups)} groups"))
    if not samples:
        raise ValueError("no samples to write")
    m = samples[0].shape[3]
    out.mkdir(parents=True, exist_ok=True)
    try:
        with exclusive_lock(out / DATASET_LOCK):
            finish_commit(out)
            remove_stale_temporaries(out)
            stage = Path(tempfile.mkdtemp(prefix=".staging.", suffix=".tmp", dir=out))
            w = None
            try:
                w = StoreWriter(stage / STORE_DIR, frames=sum(s.shape[1] for s in samples), layout=layout,
                                num_persons=m, channels=channels, colors=colors is not None)
                for i, x in enumerate(samples):
                    w.add(names[i], int(labels[i]), np.ascontiguousarray(np.asarray(x, np.float32).transpose(1, 3, 2, 0)),
                          colors=None if colors is None else colors[i], group=None if groups is None else groups[i])
                frames = max(max(s.shape[1] for s in samples), max_frames or 0)
                w.close(dataset=dataset, num_classes=num_classes, max_frames=frames, **dict(store_meta or {}))
                for bench, splits in benchmarks.items():
                    write_split_index(stage / bench, splits, {
                        "dataset": dataset, "benchmark": bench, "layout": layout_key(layout),
                        "num_classes": int(num_classes), "num_persons": int(m), "max_frames": frames,
                        **dict(benchmark_meta or {}),
                    })
                commit_set(stage, out)
            finally:
                if w is not None:
                    w.abort()
                shutil.rmtree(stage, ignore_errors=True)
    except LockedError as err:
        raise LockedError(f"{out} is being written by another mmcl prepare ({err}); wait for it or choose another folder") from None
    return out


def folder_bytes(path: str | os.PathLike[str]) -> int:
    """Bytes of every file below ``path`` (benchmarks compare prepared outputs on disk)."""
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())
