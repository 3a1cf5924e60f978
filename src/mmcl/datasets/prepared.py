"""Array-backed skeleton sources: the reference NTU ``.npz`` and the prepared benchmark folder.

* :class:`ReferenceNpzSource` reads the CTR-GCN NTU file (REFERENCE §2.8) in place: np.savez
  stores members uncompressed, so each ``.npy`` member is located inside the zip and
  ``np.memmap``-ed (no 11 GB read for NTU-120); a compressed member is a clear error.
* :class:`PreparedSource` reads a benchmark folder of ``mmcl prepare``: a split index into the
  compact store of :mod:`mmcl.formats.sample_store` (written by every preparer since issue 21), or the
  padded per-split arrays earlier versions wrote (still read, so old folders keep working).

Error policy: these sources are memory-mapped and too large to scan when opened, so a
structural problem (missing file, wrong shape, inconsistent counts) raises
:class:`~mmcl.datasets.base.DataError` at construction, and a bad sample (non-finite values,
no non-zero frame) raises ``DataError`` naming the file and the sample when it is read by
``raw(i)``. (The NW-UCLA JSON reader, which loads everything at once, instead skips bad files and
logs a summary; see ``nwucla.py``.)
"""

from __future__ import annotations

import struct
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mmcl.datasets.base import DataError
from mmcl.datasets.splits import normalize_split
from mmcl.formats.errors import READ_ERRORS, first_line
from mmcl.formats.sample_store import CHANNELS_XYZ, MAX_FRAMES_LIMIT, SampleStore, meta_int, read_json_object
from mmcl.io import pending_commit
from mmcl.skeleton.layouts import get_layout
from mmcl.skeleton.transforms import valid_frame_count

__all__ = [
    "frames_to_ctvm",
    "ctvm_to_frames",
    "ReferenceNpzSource",
    "PreparedSource",
]

NUM_CHANNELS = 3  # xyz
NTU_LAYOUT = "ntu25"  # REFERENCE §2.8: 150 = 2 actors × 25 joints × xyz
META_FILE = "meta.json"
META_REQUIRED = ("dataset", "benchmark", "layout", "num_classes", "num_persons")
_ZIP_LOCAL_HEADER = b"PK\x03\x04"
_ZIP_LOCAL_HEADER_SIZE = 30  # fixed part of a zip local file header


def frames_to_ctvm(frames: np.ndarray, num_joints: int, channels: int = NUM_CHANNELS) -> np.ndarray:
    """``T×(M·V·C)`` (per frame actor1 J1 xyz … actor2 …, REFERENCE §2.8) -> ``C×T×V×M`` float32."""
    t, f = frames.shape
    m = f // (num_joints * channels)
    x = np.asarray(frames, dtype=np.float32).reshape(t, m, num_joints, channels)
    return np.ascontiguousarray(x.transpose(3, 0, 2, 1))


def ctvm_to_frames(x: np.ndarray) -> np.ndarray:
    """Inverse of :func:`frames_to_ctvm`; also maps a batch ``N×C×T×V×M`` to ``N×T×(M·V·C)``."""
    if x.ndim == 4:
        c, t, v, m = x.shape
        return np.ascontiguousarray(x.transpose(1, 3, 2, 0)).reshape(t, m * v * c)
    if x.ndim == 5:
        n, c, t, v, m = x.shape
        return np.ascontiguousarray(x.transpose(0, 2, 4, 3, 1)).reshape(n, t, m * v * c)
    raise ValueError(f"expected C×T×V×M or N×C×T×V×M, got shape {x.shape}")


def _check_sample(x: np.ndarray, valid: int, path: Path, name: str) -> None:
    if not np.isfinite(x).all():
        raise DataError("contains NaN or infinite coordinates", path, name)
    if valid < 1:
        raise DataError("has zero frames (every frame is all-zero)", path, name)


# --------------------------------------------------------------------------- reference npz


def _npz_member(path: Path, member: str) -> np.ndarray:
    """Memory-map one uncompressed ``.npy`` member of an ``.npz`` file in place (DataError when damaged)."""
    try:
        return _map_npz_member(path, member)
    except DataError:
        raise
    except READ_ERRORS as exc:
        raise DataError(f"array {member!r} is damaged ({first_line(exc)})", path) from None



def _load_npy(path: Path, mmap: bool = False) -> np.ndarray:
    """One ``.npy`` file of a prepared folder; a damaged file is a DataError naming it."""
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except READ_ERRORS as exc:
        raise DataError(f"cannot read ({first_line(exc)})", path) from None


def _map_npz_member(path: Path, member: str) -> np.ndarray:
    try:
        with zipfile.ZipFile(path) as zf:
            try:
                info = zf.getinfo(member + ".npy")
            except KeyError:
                keys = sorted(n[:-4] for n in zf.namelist() if n.endswith(".npy"))
                raise DataError(f"has no array {member!r} (arrays: {keys})", path) from None
    except zipfile.BadZipFile as exc:
        raise DataError(f"is not a valid .npz (zip) file: {exc}", path) from None
    if info.compress_type != zipfile.ZIP_STORED:
        raise DataError(
            f"array {member!r} is compressed (np.savez_compressed); it cannot be memory-mapped — "
            "re-save it with np.savez or convert it to a prepared folder",
            path,
        )
    with open(path, "rb") as f:
        f.seek(info.header_offset)
        header = f.read(_ZIP_LOCAL_HEADER_SIZE)
        if header[:4] != _ZIP_LOCAL_HEADER:
            raise DataError(f"corrupt zip local header for {member!r}", path)
        name_len, extra_len = struct.unpack("<HH", header[26:30])
        f.seek(info.header_offset + _ZIP_LOCAL_HEADER_SIZE + name_len + extra_len)
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            raise DataError(f"array {member!r} uses unsupported .npy format version {version}", path)
        offset = f.tell()
    if dtype.hasobject:
        raise DataError(f"array {member!r} holds Python objects and cannot be memory-mapped", path)
    if int(np.prod(shape)) == 0:
        return np.empty(shape, dtype=dtype)
    return np.memmap(path, dtype=dtype, mode="r", shape=shape, order="F" if fortran else "C", offset=offset)


def _read_names(path: Path) -> list[str]:
    if not path.is_file():
        raise DataError("names file does not exist", path)
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read the sample names ({first_line(exc)})", path) from None


class ReferenceNpzSource:
    """The reference NTU ``.npz`` (x_train/y_train/x_test/y_test, REFERENCE §2.8), memory-mapped.

    Labels are the column of the 1 in each one-hot row. Names are ``train_<i>`` / ``test_<i>``
    (CTR-GCN) unless ``names`` (a text file, one name per line, or a list) is given, as MMCL does.
    """

    layout = NTU_LAYOUT

    def __init__(self, path: str | Path, split: str, names: str | Path | Sequence[str] | None = None) -> None:
        self.path = Path(path)
        self.split = normalize_split(split)
        if not self.path.is_file():
            raise DataError("reference .npz file does not exist", self.path)
        self._x = _npz_member(self.path, f"x_{self.split}")
        y = _npz_member(self.path, f"y_{self.split}")
        if self._x.ndim != 3:
            raise DataError(f"x_{self.split} must be N×T×(M·V·C), got shape {self._x.shape}", self.path)
        v = get_layout(self.layout).num_joints
        n, _, f = self._x.shape
        if f % (v * NUM_CHANNELS) != 0:
            raise DataError(
                f"x_{self.split} has {f} values per frame, not a multiple of {v} joints × {NUM_CHANNELS}",
                self.path,
            )
        self.num_persons = f // (v * NUM_CHANNELS)
        if y.ndim != 2 or y.shape[0] != n:
            raise DataError(f"y_{self.split} must be one-hot N×K with N={n}, got shape {y.shape}", self.path)
        y = np.asarray(y)
        self.num_classes = int(y.shape[1])
        self.labels = np.argmax(y, axis=1).astype(np.int64)
        bad = np.flatnonzero(y[np.arange(n), self.labels] != 1)
        if bad.size:
            raise DataError(f"y_{self.split} rows {bad[:5].tolist()} are not one-hot", self.path)
        if names is None:
            self.names = [f"{self.split}_{i}" for i in range(n)]
        else:
            self.names = _read_names(Path(names)) if isinstance(names, str | Path) else list(names)
            if len(self.names) != n:
                raise DataError(f"{len(self.names)} names given for {n} {self.split} samples", self.path)

    def __len__(self) -> int:
        return len(self.labels)

    def raw(self, i: int) -> tuple[np.ndarray, int]:
        """Sample ``i`` as ``C×T×V×M`` float32 with its valid-frame count (REFERENCE §3.1)."""
        x = frames_to_ctvm(np.asarray(self._x[i]), get_layout(self.layout).num_joints)
        valid = valid_frame_count(x)
        _check_sample(x, valid, self.path, self.names[i])
        return x, valid

    def __repr__(self) -> str:
        return f"ReferenceNpzSource({str(self.path)!r}, split={self.split!r}, n={len(self)})"


# --------------------------------------------------------------------------- prepared folder


def _read_meta(path: Path) -> dict[str, Any]:
    """meta.json of a prepared folder, with the required keys of the right kind (DataError otherwise)."""
    meta = read_json_object(path)
    missing = [k for k in META_REQUIRED if k not in meta]
    if missing:
        raise DataError(f"meta.json lacks {missing}", path)
    for key in ("num_classes", "num_persons"):
        if isinstance(meta[key], bool) or not isinstance(meta[key], int) or meta[key] < 1:
            raise DataError(f"{key} must be a positive integer, got {meta[key]!r}", path)
    try:
        get_layout(str(meta["layout"]))
    except (KeyError, ValueError) as exc:
        raise DataError(f"unknown layout {meta['layout']!r} ({first_line(exc)})", path) from None
    return meta



class PreparedSource:
    """A prepared benchmark folder ``<root>/<benchmark>/`` (docs/architecture.md), memory-mapped.

    Two forms load: the compact store (meta.json names ``"store"``; the split is ``<split>.npy``,
    rows of :class:`~mmcl.formats.sample_store.SampleStore`) and the padded per-split arrays that mmcl
    wrote before it (``x_<split>.npy``, ``y_``, ``names_``, ``len_``, ``colors_``). Samples come out
    the same either way: C×T×V×M padded with zeros to the folder's ``max_frames``.
    """

    def __init__(self, root: str | Path, split: str) -> None:
        self.root = Path(root)
        self.split = normalize_split(split)
        meta_path = self.root / META_FILE
        for folder in (self.root.parent, self.root):
            if pending_commit(folder):
                raise DataError(
                    "is being replaced by `mmcl prepare` (or a killed run left that half done); "
                    "wait for it, or run the same prepare command again to finish it", self.root
                )
        if not meta_path.is_file():
            raise DataError("is not a prepared dataset folder (meta.json missing)", self.root)
        self.meta = _read_meta(meta_path)
        self.layout = str(self.meta["layout"])
        self.num_classes = int(self.meta["num_classes"])
        self.num_persons = int(self.meta["num_persons"])
        self._store: SampleStore | None = None
        self._colors: np.ndarray | None = None
        if "store" in self.meta:
            self._open_store()
        else:
            self._open_padded()
        counts = self.meta.get("counts", {})
        n = len(self.labels)
        for what, k in (("names", len(self.names)), ("meta counts", counts.get(self.split, n) if isinstance(counts, dict) else None)):
            if k != n:
                raise DataError(f"split {self.split!r}: {k} {what} for {n} samples (incomplete or stale write?)", self.root)

    def _open_store(self) -> None:
        meta_path = self.root / META_FILE
        if not isinstance(self.meta["store"], str) or not self.meta["store"]:
            raise DataError(f"store must be a relative folder name, got {self.meta['store']!r}", meta_path)
        store = SampleStore((self.root / self.meta["store"]).resolve())
        if (store.layout, store.num_persons, store.num_classes) != (self.layout, self.num_persons, self.num_classes):
            raise DataError(f"does not match its store {store.root} (layout, persons or classes differ)", meta_path)
        idx_path = self.root / f"{self.split}.npy"
        idx = _load_npy(idx_path) if idx_path.is_file() else None
        if idx is None:
            raise DataError(f"split {self.split!r} file is missing", idx_path)
        if idx.ndim != 1 or idx.dtype.kind not in "iu" or (idx.size and (idx.min() < 0 or idx.max() >= len(store))):
            raise DataError(f"must hold rows 0..{len(store) - 1} of the store, got {idx.dtype} {idx.shape}", idx_path)
        self._store, self._rows = store, idx.astype(np.int64)
        self.labels = store.labels[self._rows]
        self.names = [store.names[i] for i in self._rows]
        self.lengths: np.ndarray | None = store.lengths[self._rows]
        self.channels = store.channels
        frames = meta_int(self.meta, "max_frames", meta_path, minimum=0, maximum=MAX_FRAMES_LIMIT) if "max_frames" in self.meta else store.max_frames
        self.max_frames = max(frames, int(self.lengths.max(initial=0)))
        self._x_path = store.root / "joints.npy"

    def _open_padded(self) -> None:
        num_joints = get_layout(self.layout).num_joints
        s = self.split
        x_path = self.root / f"x_{s}.npy"
        for p in (x_path, self.root / f"y_{s}.npy", self.root / f"names_{s}.txt"):
            if not p.is_file():
                raise DataError(f"split {s!r} file is missing", p)
        self._x = _load_npy(x_path, mmap=True)
        expected_f = self.num_persons * num_joints * NUM_CHANNELS
        if self._x.ndim != 3 or self._x.shape[2] != expected_f or self._x.dtype.kind != "f":
            raise DataError(f"expected float N×T×{expected_f} (M·V·C), got {self._x.dtype} {self._x.shape}", x_path)
        n, t = self._x.shape[:2]
        y_path = self.root / f"y_{s}.npy"
        labels = _load_npy(y_path)
        if labels.shape != (n,) or labels.dtype.kind not in "iu" or (n and (labels.min() < 0 or labels.max() >= self.num_classes)):
            raise DataError(f"labels must be {n} integers in 0..{self.num_classes - 1}, got {labels.dtype} {labels.shape}", y_path)
        self.labels = labels.astype(np.int64)
        self.names = _read_names(self.root / f"names_{s}.txt")
        len_path = self.root / f"len_{s}.npy"
        self.lengths = None
        if len_path.is_file():
            lengths = _load_npy(len_path)
            if lengths.shape != (n,) or lengths.dtype.kind not in "iu" or (n and (lengths.min() < 0 or lengths.max() > t)):
                raise DataError(f"lengths must be {n} integers in 0..{t}, got {lengths.dtype} {lengths.shape}", len_path)
            self.lengths = lengths.astype(np.int64)
        colors_path = self.root / f"colors_{s}.npy"
        self._colors = _load_npy(colors_path, mmap=True) if colors_path.is_file() else None
        if self._colors is not None and (self._colors.ndim != 5 or self._colors.shape[:2] != (n, t) or self._colors.shape[-1] != 2):
            raise DataError(f"colours must be {n}×{t}×M×V×2, got shape {self._colors.shape}", colors_path)
        self.channels = CHANNELS_XYZ
        self.max_frames = t
        self._x_path = x_path

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def has_colors(self) -> bool:
        """Whether colour-image pixel joints were prepared (NTU), for skeleton-box RGB composites."""
        return self._colors is not None or (self._store is not None and self._store.colors is not None)

    def sample_colors(self, i: int) -> np.ndarray | None:
        """Sample ``i``'s colour-pixel joints T×M×V×2 (memory-mapped), or None when not prepared."""
        if self._store is not None:
            return self._store.sample_colors(int(self._rows[i]))
        return None if self._colors is None else self._colors[i]

    def raw(self, i: int) -> tuple[np.ndarray, int]:
        """Sample ``i`` as ``C×T×V×M`` float32 (padded to the folder's T) with its valid length."""
        if self._store is not None:
            frames = np.asarray(self._store.frames(int(self._rows[i])))  # T×M×V×C
            valid = len(frames)
            x = np.zeros((frames.shape[3], self.max_frames, frames.shape[2], frames.shape[1]), dtype=np.float32)
            x[:, :valid] = frames.transpose(3, 0, 2, 1)
        else:
            x = frames_to_ctvm(np.asarray(self._x[i]), get_layout(self.layout).num_joints)
            valid = int(self.lengths[i]) if self.lengths is not None else valid_frame_count(x)
            if valid > x.shape[1]:
                raise DataError(f"length {valid} exceeds the {x.shape[1]} stored frames", self._x_path, self.names[i])
        _check_sample(x, valid, self._x_path, self.names[i])
        return x, valid

    def __repr__(self) -> str:
        return f"PreparedSource({str(self.root)!r}, split={self.split!r}, n={len(self)})"
