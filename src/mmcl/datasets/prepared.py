"""Array-backed skeleton sources: the reference NTU ``.npz`` and the prepared folder.

* :class:`ReferenceNpzSource` reads the CTR-GCN NTU file (REFERENCE §2.8) in place: np.savez
  stores members uncompressed, so each ``.npy`` member is located inside the zip and
  ``np.memmap``-ed (no 11 GB read for NTU-120); a compressed member is a clear error.
* :class:`PreparedSource` reads the prepared folder of docs/architecture.md with
  ``np.load(mmap_mode="r")``.
* :func:`write_prepared` is the one writer used by every preparer (NTU, NW-UCLA, demo):
  each file is written to a temporary name and moved into place with ``os.replace``;
  ``meta.json`` is written last, so a folder with a current meta.json is complete.

Error policy: these sources are memory-mapped and too large to scan when opened, so a
structural problem (missing file, wrong shape, inconsistent counts) raises
:class:`~mmcl.datasets.base.DataError` at construction, and a bad sample (non-finite values,
no non-zero frame) raises ``DataError`` naming the file and the sample when it is read by
``raw(i)``. The writer refuses non-finite data. (The NW-UCLA JSON reader, which loads
everything at once, instead skips bad files and logs a summary; see ``nwucla.py``.)
"""

from __future__ import annotations

import json
import struct
import zipfile
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from mmcl import __version__
from mmcl.datasets.base import DataError
from mmcl.datasets.splits import SPLITS, normalize_split
from mmcl.formats.errors import READ_ERRORS
from mmcl.io import atomic_save_npy, atomic_write_text, pending_commit
from mmcl.skeleton.layouts import get_layout
from mmcl.skeleton.transforms import valid_frame_count

__all__ = [
    "frames_to_ctvm",
    "ctvm_to_frames",
    "ReferenceNpzSource",
    "PreparedSource",
    "write_prepared",
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
        raise DataError(f"array {member!r} is damaged ({_first_line(exc)})", path) from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


def _load_npy(path: Path, mmap: bool = False) -> np.ndarray:
    """One ``.npy`` file of a prepared folder; a damaged file is a DataError naming it."""
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except READ_ERRORS as exc:
        raise DataError(f"cannot read ({_first_line(exc)})", path) from None


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
        raise DataError(f"cannot read the sample names ({_first_line(exc)})", path) from None


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
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(f"invalid JSON ({_first_line(exc)})", path) from None
    if not isinstance(meta, dict):
        raise DataError(f"must hold a JSON object, got {type(meta).__name__}", path)
    missing = [k for k in META_REQUIRED if k not in meta]
    if missing:
        raise DataError(f"meta.json lacks {missing}", path)
    for key in ("num_classes", "num_persons"):
        if isinstance(meta[key], bool) or not isinstance(meta[key], int) or meta[key] < 1:
            raise DataError(f"{key} must be a positive integer, got {meta[key]!r}", path)
    try:
        get_layout(str(meta["layout"]))
    except (KeyError, ValueError) as exc:
        raise DataError(f"unknown layout {meta['layout']!r} ({_first_line(exc)})", path) from None
    return meta



class PreparedSource:
    """A prepared folder ``<root>/<benchmark>/`` (docs/architecture.md), memory-mapped."""

    def __init__(self, root: str | Path, split: str) -> None:
        self.root = Path(root)
        self.split = normalize_split(split)
        meta_path = self.root / META_FILE
        if pending_commit(self.root.parent):
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
        self.lengths: np.ndarray | None = None
        if len_path.is_file():
            lengths = _load_npy(len_path)
            if lengths.shape != (n,) or lengths.dtype.kind not in "iu" or (n and (lengths.min() < 0 or lengths.max() > t)):
                raise DataError(f"lengths must be {n} integers in 0..{t}, got {lengths.dtype} {lengths.shape}", len_path)
            self.lengths = lengths.astype(np.int64)
        colors_path = self.root / f"colors_{s}.npy"
        self.colors: np.ndarray | None = _load_npy(colors_path, mmap=True) if colors_path.is_file() else None
        if self.colors is not None and (self.colors.ndim != 5 or self.colors.shape[:2] != (n, t) or self.colors.shape[-1] != 2):
            raise DataError(f"colours must be {n}×{t}×M×V×2, got shape {self.colors.shape}", colors_path)
        counts = self.meta.get("counts", {})
        for what, k in (("names", len(self.names)), ("meta counts", counts.get(s, n) if isinstance(counts, dict) else None)):
            if k != n:
                raise DataError(f"split {s!r}: {k} {what} for {n} samples (incomplete or stale write?)", self.root)
        self._x_path = x_path

    def __len__(self) -> int:
        return len(self.labels)

    def raw(self, i: int) -> tuple[np.ndarray, int]:
        """Sample ``i`` as ``C×T×V×M`` float32 (padded to the folder's T) with its valid length."""
        x = frames_to_ctvm(np.asarray(self._x[i]), get_layout(self.layout).num_joints)
        valid = int(self.lengths[i]) if self.lengths is not None else valid_frame_count(x)
        if valid > x.shape[1]:
            raise DataError(f"length {valid} exceeds the {x.shape[1]} stored frames", self._x_path, self.names[i])
        _check_sample(x, valid, self._x_path, self.names[i])
        return x, valid

    def __repr__(self) -> str:
        return f"PreparedSource({str(self.root)!r}, split={self.split!r}, n={len(self)})"


def _all_finite(x: np.ndarray, chunk: int = 256) -> bool:
    return all(bool(np.isfinite(x[i : i + chunk]).all()) for i in range(0, len(x), chunk))


def write_prepared(
    root: str | Path,
    split: str,
    x: np.ndarray,
    labels: Sequence[int] | np.ndarray,
    names: Sequence[str],
    *,
    meta: dict[str, Any],
    lengths: Sequence[int] | np.ndarray | None = None,
    colors: np.ndarray | None = None,
) -> Path:
    """Write one split of a prepared folder ``root`` (the benchmark folder) and update meta.json.

    ``x`` is ``N×T×(M·V·C)`` float32 (REFERENCE §2.8 frame layout) or ``N×C×T×V×M``.
    ``meta`` must give dataset, benchmark, layout, num_classes, num_persons (any other keys,
    e.g. ``sources``, are stored too); counts, max_frames, mmcl_version and created are filled
    in, and counts of a split written earlier are kept. Returns ``root``.
    """

    root = Path(root)
    s = normalize_split(split)
    missing = [k for k in META_REQUIRED if k not in meta]
    if missing:
        raise ValueError(f"write_prepared: meta lacks {missing}")
    arr = np.asarray(x)  # no copy for ndarrays and memmaps
    if arr.ndim == 5:
        arr = ctvm_to_frames(np.asarray(arr, dtype=np.float32))
    if arr.ndim != 3:
        raise ValueError(f"write_prepared: x must be N×T×(M·V·C) or N×C×T×V×M, got shape {arr.shape}")
    arr = arr.astype(np.float32, copy=False)
    n, t, f = arr.shape
    expected_f = int(meta["num_persons"]) * get_layout(meta["layout"]).num_joints * NUM_CHANNELS
    if f != expected_f:
        raise ValueError(f"write_prepared: {f} values per frame, expected M·V·C = {expected_f}")
    y = np.asarray(labels, dtype=np.int64)
    names = [str(nm) for nm in names]
    if y.shape != (n,) or len(names) != n:
        raise ValueError(f"write_prepared: {n} samples but {y.shape} labels and {len(names)} names")
    if n and (y.min() < 0 or y.max() >= int(meta["num_classes"])):
        raise ValueError(f"write_prepared: labels outside 0..{int(meta['num_classes']) - 1}")
    bad_names = [nm for nm in names if not nm or "\n" in nm or "\r" in nm]
    if bad_names:
        raise ValueError(f"write_prepared: empty names or names with line breaks: {bad_names[:3]}")
    if len(set(names)) != n:
        raise ValueError("write_prepared: sample names must be unique (they are join keys)")
    if not _all_finite(arr):
        raise ValueError("write_prepared: x contains NaN or infinite values")
    lens = None
    if lengths is not None:
        lens = np.asarray(lengths, dtype=np.int32)
        if lens.shape != (n,) or (n and (lens.min() < 1 or lens.max() > t)):
            raise ValueError(f"write_prepared: lengths must be N={n} integers in 1..{t}")
    if colors is not None and (colors.ndim != 5 or colors.shape[:2] != (n, t) or colors.shape[-1] != 2):
        raise ValueError(f"write_prepared: colors must be N×T×M×V×2, got shape {colors.shape}")

    root.mkdir(parents=True, exist_ok=True)
    atomic_save_npy(root / f"x_{s}.npy", arr)
    atomic_save_npy(root / f"y_{s}.npy", y)
    atomic_write_text(root / f"names_{s}.txt", "".join(nm + "\n" for nm in names))
    for name, value in ((f"len_{s}.npy", lens), (f"colors_{s}.npy", colors)):
        if value is not None:
            atomic_save_npy(root / name, np.asarray(value, dtype=np.float32 if name.startswith("colors") else np.int32))
        elif (root / name).exists():
            (root / name).unlink()  # a stale optional file from an earlier write would mislead readers

    meta_path = root / META_FILE
    old: dict[str, Any] = {}
    if meta_path.is_file():
        try:
            old = json.loads(meta_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            old = {}
    counts = {k: v for k, v in old.get("counts", {}).items() if k in SPLITS and k != s}
    counts[s] = n
    out = dict(meta)
    out["counts"] = {k: counts[k] for k in SPLITS if k in counts}
    other_written = any(k != s for k in counts)
    out["max_frames"] = max(t, int(old.get("max_frames", 0))) if other_written else t
    out["mmcl_version"] = __version__
    out["created"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    atomic_write_text(meta_path, json.dumps(out, indent=2, ensure_ascii=False) + "\n")
    return root
