"""Feature store: one on-disk format for CNN and text (LLM) features.

Layout of a store directory::

    meta.json                 written once by ``create``: format version, feature kind, dim, max_length,
                              dtype, plus the caller's meta (model, question, package versions, date)
    manifest.json             the commit point, rewritten atomically (temp file + ``os.replace``)
                              after every chunk: ordered list of committed segments
    seg-000000.npy            float32 n×D (fixed width) or n×L×D (padded variable length)
    seg-000000.len.npy        int32 n valid lengths (variable-length kinds only)
    seg-000000.names.txt      the n sample names, one per line

Why chunks + manifest: an extraction that is killed (Ctrl-C, OOM, pre-emption) loses at most the
chunk in flight. Segment files are written to temp names and renamed before the manifest that
lists them is replaced, so a segment is either fully committed or invisible; temp files and
segments that no manifest lists are leftovers and are removed by the next writer. Every segment
is opened with ``np.load(mmap_mode="r")`` so reading never loads the whole store.
``consolidate()`` merges segments into a single ``data-XXXXXX`` segment (same format) for
faster random access on big stores.

Token IDs (``answer_ids``) are stored as float32 N×L×1; float32 represents integers exactly up to
2**24, far above any tokenizer vocabulary. Single writer only (no locking).
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from mmcl.formats.errors import READ_ERRORS
from mmcl.io import TMP_SUFFIX, atomic_save_npy, atomic_write_bytes

FORMAT_VERSION = 1
META_FILE = "meta.json"
MANIFEST_FILE = "manifest.json"
_SEG_RE = re.compile(r"^(seg|data)-(\d{6})(\.npy|\.len\.npy|\.names\.txt)$")


def _write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=1, sort_keys=False) + "\n").encode("utf-8"))


@dataclass
class _Segment:
    stem: str
    count: int
    data: np.ndarray  # memmap n×D or n×L×D
    lengths: np.ndarray | None
    names: list[str]


class StoreError(ValueError):
    """A feature store on disk is damaged or not a store; the message names the file."""


_READ_ERRORS = (*READ_ERRORS, AttributeError)


class FeatureStore:
    """Append-only, chunk-committed feature store (see module docstring for the layout)."""

    def __init__(self, path: Path, meta: dict[str, Any]) -> None:
        self.path = Path(path)
        self.meta = meta
        try:
            self.kind: str = str(meta["kind"])
            self.dim: int = int(meta["dim"])
            self.max_length: int | None = None if meta.get("max_length") is None else int(meta["max_length"])
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise StoreError(f"{self.path / META_FILE}: bad or missing kind/dim/max_length ({exc!r})") from None
        if self.dim < 1 or (self.max_length is not None and self.max_length < 1):
            raise StoreError(f"{self.path / META_FILE}: dim and max_length must be positive")
        self._segments: list[_Segment] = []
        self._index: dict[str, tuple[int, int]] = {}
        self._names: list[str] = []
        self._next_id = 0
        self._cleaned = False
        self._reload()

    # ------------------------------------------------------------------ construction
    @classmethod
    def create(
        cls,
        path: str | Path,
        *,
        dim: int,
        kind: str,
        meta: dict[str, Any] | None = None,
        max_length: int | None = None,
        exist_ok: bool = True,
    ) -> "FeatureStore":
        """Create a store, or open an existing compatible one (resume) when ``exist_ok``.

        An existing store with a different kind/dim/max_length raises, so a resumed extraction can
        never mix features of two configurations.
        """
        path = Path(path)
        full = {
            "format_version": FORMAT_VERSION,
            "kind": kind,
            "dim": int(dim),
            "max_length": None if max_length is None else int(max_length),
            "dtype": "float32",
            "variable_length": max_length is not None,
        }
        full.update({k: v for k, v in (meta or {}).items() if k not in full})
        if (path / META_FILE).is_file():
            if not exist_ok:
                raise FileExistsError(f"feature store already exists: {path}")
            store = cls.open(path)
            for key in ("kind", "dim", "max_length"):
                if store.meta.get(key) != full[key]:
                    raise ValueError(
                        f"existing store {path} has {key}={store.meta.get(key)!r}, requested {full[key]!r}; "
                        "use another path or delete the store"
                    )
            return store
        path.mkdir(parents=True, exist_ok=True)
        _write_json(path / MANIFEST_FILE, {"format_version": FORMAT_VERSION, "segments": [], "next_id": 0})
        _write_json(path / META_FILE, full)  # meta last: its presence marks a valid store
        return cls(path, full)

    @classmethod
    def open(cls, path: str | Path) -> "FeatureStore":
        path = Path(path)
        meta_file = path / META_FILE
        if not meta_file.is_file():
            raise FileNotFoundError(f"not a feature store (no {META_FILE}): {path}")
        try:
            meta = json.loads(meta_file.read_text("utf-8"))
        except (OSError, ValueError) as exc:
            raise StoreError(f"{meta_file}: cannot read ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
        if not isinstance(meta, dict) or meta.get("format_version") != FORMAT_VERSION:
            found = meta.get("format_version") if isinstance(meta, dict) else type(meta).__name__
            raise StoreError(f"{meta_file}: unsupported feature store format {found!r}")
        return cls(path, meta)

    # ------------------------------------------------------------------ reading
    def _reload(self) -> None:
        manifest_file = self.path / MANIFEST_FILE
        try:
            manifest = json.loads(manifest_file.read_text("utf-8"))
            self._next_id = int(manifest.get("next_id", 0))
            entries = [(str(e["stem"]), int(e["count"])) for e in manifest["segments"]]
        except _READ_ERRORS as exc:
            raise StoreError(f"{manifest_file}: damaged manifest ({type(exc).__name__}: {str(exc)[:120]})") from None
        self._segments = []
        self._index = {}
        self._names = []
        for si, (stem, count) in enumerate(entries):
            data, lengths, names = self._read_segment(stem, count)
            self._segments.append(_Segment(stem, count, data, lengths, names))
            for row, name in enumerate(names):
                self._index[name] = (si, row)  # later rows win (duplicates are reported by check_store)
                self._names.append(name)

    def _read_segment(self, stem: str, count: int) -> tuple[np.ndarray, np.ndarray | None, list[str]]:
        """One segment's arrays and names, checked against the manifest and meta (StoreError naming the file)."""
        path = self.path / f"{stem}.npy"
        try:
            if "/" in stem or "\\" in stem or stem.startswith("."):
                raise ValueError(f"segment stem {stem!r} is not a plain file name")
            data = np.load(path, mmap_mode="r", allow_pickle=False)
            shape = (count, self.dim) if self.max_length is None else (count, self.max_length, self.dim)
            if data.shape != shape or data.dtype != np.float32:
                raise ValueError(f"holds {data.dtype} {data.shape}, the manifest and meta say float32 {shape}")
            lengths = None
            if self.max_length is not None:
                path = self.path / f"{stem}.len.npy"
                lengths = np.load(path, allow_pickle=False)
                if lengths.shape != (count,) or lengths.dtype.kind not in "iu" or (count and (lengths.min() < 0 or lengths.max() > self.max_length)):
                    raise ValueError(f"lengths {lengths.dtype} {lengths.shape} do not fit {count} rows of at most {self.max_length}")
            path = self.path / f"{stem}.names.txt"
            names = path.read_text("utf-8").splitlines()
            if len(names) != count:
                raise ValueError(f"{len(names)} names for {count} rows")
        except _READ_ERRORS as exc:
            raise StoreError(f"{path}: damaged feature store segment ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
        return data, lengths, names

    @property
    def names(self) -> list[str]:
        """All stored names in write order (duplicates included, see ``check_store``)."""
        return list(self._names)

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, name: object) -> bool:
        return name in self._index

    def get(self, name: str) -> np.ndarray:
        """Feature of one sample: D (fixed) or length×D (variable; the padding is cut off)."""
        si, row = self._index[name]
        seg = self._segments[si]
        if seg.lengths is None:
            return np.asarray(seg.data[row])
        return np.asarray(seg.data[row, : int(seg.lengths[row])])

    def get_padded(self, name: str) -> tuple[np.ndarray, int]:
        """Padded feature (L×D) and its valid length; fixed-width kinds return (D, D)."""
        si, row = self._index[name]
        seg = self._segments[si]
        if seg.lengths is None:
            return np.asarray(seg.data[row]), self.dim
        return np.asarray(seg.data[row]), int(seg.lengths[row])

    def get_many(self, names: Sequence[str]) -> tuple[np.ndarray, np.ndarray | None]:
        """Stack features for ``names`` in that order: (N×D or N×L×D, lengths or None)."""
        shape = (len(names), self.dim) if self.max_length is None else (len(names), self.max_length, self.dim)
        out = np.zeros(shape, dtype=np.float32)
        lengths = None if self.max_length is None else np.zeros(len(names), dtype=np.int32)
        for i, name in enumerate(names):
            si, row = self._index[name]
            seg = self._segments[si]
            out[i] = seg.data[row]
            if lengths is not None:
                lengths[i] = seg.lengths[row]
        return out, lengths

    def iter_segments(self) -> Iterable[tuple[list[str], np.ndarray, np.ndarray | None]]:
        for seg in self._segments:
            yield seg.names, seg.data, seg.lengths

    # ------------------------------------------------------------------ writing
    def _cleanup(self) -> None:
        """Remove temp files and segment files that no manifest lists (leftovers of a killed writer)."""
        live = {seg.stem for seg in self._segments}
        for entry in self.path.iterdir():
            if entry.name.endswith(TMP_SUFFIX):
                entry.unlink(missing_ok=True)
                continue
            m = _SEG_RE.match(entry.name)
            if m and f"{m.group(1)}-{m.group(2)}" not in live:
                entry.unlink(missing_ok=True)
        self._cleaned = True

    def append(
        self,
        names: Sequence[str],
        features: np.ndarray | Sequence[np.ndarray],
        lengths: Sequence[int] | np.ndarray | None = None,
        *,
        on_duplicate: str = "error",
    ) -> int:
        """Commit one chunk; returns the number of rows written.

        ``features``: N×D for fixed-width stores; for variable-length stores either N×L'×D with
        ``lengths`` or a list of per-sample (len_i×D) arrays. ``on_duplicate``: "error" (default),
        "skip" (drop names already stored) or "keep" (write anyway; the new row wins on ``get``).
        """
        if on_duplicate not in ("error", "skip", "keep"):
            raise ValueError(f"on_duplicate must be error|skip|keep, got {on_duplicate!r}")
        names = [str(n) for n in names]
        if not self._cleaned:
            self._cleanup()
        padded, lens = self._normalise(names, features, lengths)
        keep = np.ones(len(names), dtype=bool)
        seen: set[str] = set()
        for i, name in enumerate(names):
            dup = name in self._index or name in seen
            seen.add(name)
            if dup:
                if on_duplicate == "error":
                    raise ValueError(f"sample {name!r} is already in the store {self.path}")
                if on_duplicate == "skip":
                    keep[i] = False
        if not keep.all():
            names = [n for n, k in zip(names, keep) if k]
            padded = padded[keep]
            lens = None if lens is None else lens[keep]
        if not names:
            return 0
        stem = f"seg-{self._next_id:06d}"
        self._commit_segment(stem, names, padded, lens, replace=None)
        return len(names)

    def _normalise(
        self,
        names: list[str],
        features: np.ndarray | Sequence[np.ndarray],
        lengths: Sequence[int] | np.ndarray | None,
    ) -> tuple[np.ndarray, np.ndarray | None]:
        n = len(names)
        if self.max_length is None:
            arr = np.asarray(features, dtype=np.float32)
            if arr.shape != (n, self.dim):
                raise ValueError(f"expected features of shape {(n, self.dim)}, got {arr.shape}")
            return np.ascontiguousarray(arr), None
        L = self.max_length
        out = np.zeros((n, L, self.dim), dtype=np.float32)
        lens = np.zeros(n, dtype=np.int32)
        if isinstance(features, np.ndarray) and features.ndim == 3:
            if lengths is None:
                raise ValueError("variable-length store: pass lengths with an N×L×D array")
            if features.shape[0] != n or features.shape[2] != self.dim:
                raise ValueError(f"expected N×L×{self.dim} with N={n}, got {features.shape}")
            items = [features[i, : int(lengths[i])] for i in range(n)]
        else:
            items = [np.asarray(f, dtype=np.float32).reshape(-1, self.dim) for f in features]
            if len(items) != n:
                raise ValueError(f"{len(items)} features for {n} names")
        for i, item in enumerate(items):
            if item.shape[0] > L:
                raise ValueError(f"sample {names[i]!r} has length {item.shape[0]} > max_length {L}")
            out[i, : item.shape[0]] = item
            lens[i] = item.shape[0]
        return out, lens

    def _commit_segment(
        self,
        stem: str,
        names: list[str],
        data: np.ndarray,
        lens: np.ndarray | None,
        replace: list[str] | None,
    ) -> None:
        atomic_save_npy(self.path / f"{stem}.npy", data)
        if lens is not None:
            atomic_save_npy(self.path / f"{stem}.len.npy", lens)
        atomic_write_bytes(self.path / f"{stem}.names.txt", ("\n".join(names) + "\n").encode("utf-8"))
        segs = [
            {"stem": s.stem, "count": s.count} for s in self._segments if replace is None or s.stem not in replace
        ]
        segs.append({"stem": stem, "count": len(names)})
        _write_json(
            self.path / MANIFEST_FILE,
            {"format_version": FORMAT_VERSION, "segments": segs, "next_id": self._next_id + 1},
        )
        if replace is not None:
            self._reload()
            return
        # Incremental: map only the new segment (a full reload per chunk would be quadratic).
        self._next_id += 1
        si = len(self._segments)
        mm = np.load(self.path / f"{stem}.npy", mmap_mode="r", allow_pickle=False)
        self._segments.append(_Segment(stem, len(names), mm, lens, list(names)))
        for row, name in enumerate(names):
            self._index[name] = (si, row)
            self._names.append(name)

    def consolidate(self) -> None:
        """Merge all segments into one (single memmap); crash-safe like ``append``."""
        if len(self._segments) <= 1:
            return
        if not self._cleaned:
            self._cleanup()
        old = [s.stem for s in self._segments]
        names = [n for s in self._segments for n in s.names]
        data = np.concatenate([np.asarray(s.data) for s in self._segments], axis=0)
        lens = None
        if self.max_length is not None:
            lens = np.concatenate([s.lengths for s in self._segments]).astype(np.int32)
        stem = f"data-{self._next_id:06d}"
        self._commit_segment(stem, names, data, lens, replace=old)
        for s in old:
            for suffix in (".npy", ".len.npy", ".names.txt"):
                (self.path / f"{s}{suffix}").unlink(missing_ok=True)


@dataclass
class StoreCheck:
    """Result of ``check_store``: what a training run would trip over."""

    path: str
    kind: str
    dim: int
    count: int
    expected: int | None
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    nonfinite: list[str] = field(default_factory=list)
    empty: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.duplicates or self.nonfinite or self.empty)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["ok"] = self.ok
        return d

    def summary(self) -> str:
        exp = "" if self.expected is None else f"/{self.expected} expected"
        return (
            f"{self.path}: {self.count} samples{exp}, kind={self.kind}, dim={self.dim}; "
            f"missing={len(self.missing)} extra={len(self.extra)} duplicates={len(self.duplicates)} "
            f"non-finite={len(self.nonfinite)} empty={len(self.empty)} -> {'OK' if self.ok else 'PROBLEMS'}"
        )


def check_store(path: str | Path, expected_names: Sequence[str] | None = None) -> StoreCheck:
    """Report missing / extra / duplicate / non-finite / zero-length entries of a store."""
    store = FeatureStore.open(path)
    counts: dict[str, int] = {}
    nonfinite: list[str] = []
    empty: list[str] = []
    for names, data, lengths in store.iter_segments():
        for name in names:
            counts[name] = counts.get(name, 0) + 1
        arr = np.asarray(data)
        if lengths is None:
            bad = ~np.isfinite(arr.reshape(arr.shape[0], -1)).all(axis=1)
        else:
            valid = np.arange(arr.shape[1])[None, :] < lengths[:, None]
            finite = np.isfinite(arr).all(axis=2) | ~valid
            bad = ~finite.all(axis=1)
            empty.extend(n for n, ln in zip(names, lengths) if ln <= 0)
        nonfinite.extend(n for n, b in zip(names, bad) if b)
    present = set(counts)
    result = StoreCheck(
        path=str(path),
        kind=store.kind,
        dim=store.dim,
        count=len(present),
        expected=None if expected_names is None else len(expected_names),
        duplicates=sorted(n for n, c in counts.items() if c > 1),
        nonfinite=sorted(set(nonfinite)),
        empty=sorted(set(empty)),
    )
    if expected_names is not None:
        exp = list(dict.fromkeys(expected_names))
        exp_set = set(exp)
        result.missing = [n for n in exp if n not in present]
        result.extra = sorted(present - exp_set)
    return result


def package_versions(*packages: str) -> dict[str, str]:
    """Versions of the packages that produced a store (recorded in meta.json)."""
    from importlib import metadata

    out: dict[str, str] = {}
    for pkg in ("mmcl", "numpy", "torch", *packages):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            continue
    return out
