"""Per-sample score files and score sets: the currency between runs, ensembles and reports.

A score file holds names (unicode), labels (int64) and scores (N×K float32) — ``scores.npz`` in a
run directory, ``.csv`` for results committed to a repository — and is read without pickle. A
:class:`ScoreSet` is one such file with where it came from; :func:`align_score_sets` joins sets by
sample name, never by row order.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import yaml

from mmcl.io import atomic_write_bytes

__all__ = [
    "SCORE_FILE",
    "VAL_SCORE_FILE",
    "ScoreSet",
    "AlignedScores",
    "save_scores",
    "load_scores",
    "canonical_label",
    "resolve_score_path",
    "load_score_set",
    "default_label",
    "default_labels",
    "align_score_sets",
    "first_names",
]

log = logging.getLogger("mmcl")

def save_scores(path: str | Path, names: Sequence[str], labels: np.ndarray, scores: np.ndarray) -> None:
    """Write per-sample scores: names (unicode), labels (int64), scores (N×K float32); no pickle needed.

    ``.npz`` (what runs write) or ``.csv`` (text, for results committed to a repository: one row
    ``name,label,s0..s{K-1}`` per sample, floats with 9 significant digits, i.e. float32-exact).
    """
    names_arr = np.asarray([str(n) for n in names], dtype=np.str_)
    labels = np.asarray(labels, dtype=np.int64)
    scores = np.asarray(scores, dtype=np.float32)
    if not (len(names_arr) == len(labels) == len(scores)):
        raise ValueError("names, labels and scores must have the same length")
    if len(set(names_arr.tolist())) != len(names_arr):
        raise ValueError("sample names in a score file must be unique")
    if Path(path).suffix == ".csv":
        if any("," in n or "\n" in n for n in names_arr.tolist()):
            raise ValueError("sample names written to a CSV score file must not contain ',' or newlines")
        out = io.StringIO()
        out.write(",".join(["name", "label"] + [f"s{k}" for k in range(scores.shape[1])]) + "\n")
        for name, label, row in zip(names_arr.tolist(), labels.tolist(), scores):
            out.write(f"{name},{label}," + ",".join(f"{v:.9g}" for v in row.tolist()) + "\n")
        atomic_write_bytes(path, out.getvalue().encode())
        return
    buf = io.BytesIO()
    np.savez(buf, names=names_arr, labels=labels, scores=scores)
    atomic_write_bytes(path, buf.getvalue())


def load_scores(path: str | Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Read a score file written by :func:`save_scores` (``.npz`` with ``allow_pickle=False``, or ``.csv``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"score file not found: {path}")
    if path.suffix == ".csv":
        return _load_csv_scores(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            names = [str(n) for n in data["names"]]
            return names, data["labels"].astype(np.int64), data["scores"].astype(np.float32)
    except (KeyError, ValueError, OSError) as exc:
        raise ValueError(f"{path}: not a valid mmcl score file ({exc})") from None


def _load_csv_scores(path: Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    if not rows or rows[0][:2] != ["name", "label"] or len(rows[0]) < 3:
        raise ValueError(f"{path}: not a valid mmcl score file (expected a header 'name,label,s0,...')")
    width = len(rows[0])
    names, labels, scores = [], [], []
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != width:
            raise ValueError(f"{path}: line {line} has {len(row)} fields, expected {width} (truncated file?)")
        try:
            labels.append(int(row[1]))
            scores.append([float(v) for v in row[2:]])
        except ValueError:
            raise ValueError(f"{path}: line {line}: non-numeric label or score") from None
        names.append(row[0])
    if not names:
        raise ValueError(f"{path}: no samples")
    return names, np.asarray(labels, dtype=np.int64), np.asarray(scores, dtype=np.float32)


_ALIASES = {
    "j": "joint",
    "b": "bone",
    "jm": "joint_motion",
    "joint-motion": "joint_motion",
    "bm": "bone_motion",
    "bone-motion": "bone_motion",
}

SCORE_FILE = "scores.npz"
VAL_SCORE_FILE = "val_scores.npz"


def canonical_label(label: str) -> str:
    """Stream labels compare case-insensitively and J/B/JM/BM equal joint/bone/joint_motion/bone_motion."""
    key = str(label).strip().lower()
    return _ALIASES.get(key, key)


def first_names(items: Sequence[str], n: int = 3) -> str:
    shown = ", ".join(repr(x) for x in list(items)[:n])
    return shown + (", …" if len(items) > n else "")


# --------------------------------------------------------------------------- loading
@dataclass
class ScoreSet:
    """One stream's per-sample scores. ``split`` is 'val' only for validation score files."""

    label: str
    path: Path
    split: str  # "val" | "test"
    names: list[str]
    labels: np.ndarray
    scores: np.ndarray

    @property
    def num_classes(self) -> int:
        return int(self.scores.shape[1])


def _split_of(path: Path) -> str:
    return "val" if path.name == VAL_SCORE_FILE or path.name.startswith("val_") else "test"


def resolve_score_path(path: str | Path, split: str = "test") -> Path:
    """The score file of an input: a run directory's ``scores.npz`` / ``val_scores.npz`` or a file.

    For ``split='val'`` a file input ``DIR/NAME.npz`` maps to its sibling ``DIR/val_NAME.npz``,
    the name training gives the validation scores; the test file itself is never returned.
    """
    if split not in ("test", "val"):
        raise ValueError(f"split must be 'test' or 'val', got {split!r}")
    p = Path(path)
    if p.is_dir():
        target = p / (VAL_SCORE_FILE if split == "val" else SCORE_FILE)
        if not target.is_file() and target.with_suffix(".csv").is_file():  # text copy of a committed run
            target = target.with_suffix(".csv")
        if not target.is_file():
            if split == "val":
                raise FileNotFoundError(
                    f"no {VAL_SCORE_FILE} in {p}: fitting weights needs runs trained with data.val_fraction>0"
                )
            if (p / "ensemble.json").is_file():
                raise FileNotFoundError(f"no {SCORE_FILE} in {p}: {_ensemble_rebuild_hint(p)}")
            raise FileNotFoundError(f"no {SCORE_FILE} in {p} (not a finished run directory?)")
        return target
    if split == "val" and _split_of(p) != "val":
        target = p.with_name(f"val_{p.name}")
        if not target.is_file():
            raise FileNotFoundError(
                f"no validation scores next to {p} (expected {target}): fitting weights needs runs trained with data.val_fraction>0"
            )
        return target
    if not p.is_file():
        raise FileNotFoundError(f"score input not found: {p} (give a run directory or a scores.npz file)")
    return p


def _ensemble_rebuild_hint(folder: Path) -> str:
    """How to regenerate the fused scores of an ``ensemble.json``-only folder (committed results keep no .npz)."""
    try:
        record = json.loads((folder / "ensemble.json").read_text())
        inputs = [str(Path(x["path"]).parent if Path(x["path"]).stem == "scores" else x["path"]) for x in record["inputs"]]
        labels = [str(x["label"]) for x in record["inputs"]]
        weights = [f"{float(record['weights'][lab]):g}" for lab in labels]
        normalize = str(record.get("normalize", "none"))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return f"it holds an unreadable ensemble.json ({exc})"
    return (
        "it holds only an ensemble.json; recreate the fused scores with "
        f"`mmcl ensemble {' '.join(inputs)} --names {' '.join(labels)} --weights {' '.join(weights)} "
        f"--normalize {normalize} --out runs/{folder.resolve().name}` and use that folder"
    )


def load_score_set(path: str | Path, label: str | None = None, split: str = "test") -> ScoreSet:
    """Load one input (run directory or score file) for ``split``; refuses duplicate sample names."""
    file = resolve_score_path(path, split)
    names, labels, scores = load_scores(file)
    if scores.ndim != 2:
        raise ValueError(f"{file}: scores must be N×K, got shape {scores.shape}")
    if len(set(names)) != len(names):
        dups = [n for n, c in Counter(names).items() if c > 1]
        raise ValueError(f"{file}: {len(dups)} duplicate sample name(s) (first: {first_names(dups)})")
    return ScoreSet(label or default_label(path), file, _split_of(file), names, labels, scores)


def default_label(path: str | Path) -> str:
    """A readable stream label: the run directory's name (or the file stem for loose files)."""
    p = Path(path)
    if p.is_dir():
        return p.resolve().name
    if p.name in (SCORE_FILE, VAL_SCORE_FILE):
        return p.resolve().parent.name
    return p.stem


def _stream_of_run(path: str | Path) -> str | None:
    """The ``data.stream`` of a run directory's config.yaml, when there is one."""
    p = Path(path)
    run_dir = p if p.is_dir() else p.parent
    cfg = run_dir / "config.yaml"
    if not cfg.is_file():
        return None
    try:
        data = yaml.safe_load(cfg.read_text()) or {}
        stream = (data.get("data") or {}).get("stream")
    except Exception:  # an unreadable config only costs the nicer label
        return None
    return str(stream) if stream else None


def default_labels(inputs: Sequence[str | Path]) -> list[str]:
    """Stream labels for inputs without ``--names``: the runs' streams when distinct, else directory names."""
    streams = [_stream_of_run(p) for p in inputs]
    if all(streams) and len(set(streams)) == len(streams):
        return [str(s) for s in streams]
    labels = [default_label(p) for p in inputs]
    if len(set(labels)) != len(labels):
        labels = [f"{lab}#{i + 1}" for i, lab in enumerate(labels)]
    return labels


# --------------------------------------------------------------------------- alignment
@dataclass
class AlignedScores:
    """Score sets joined on sample name: row i of every matrix is sample ``names[i]``."""

    names: list[str]
    labels: np.ndarray
    scores: list[np.ndarray]
    dropped: dict[str, int] = field(default_factory=dict)  # per input: samples not in the intersection


def align_score_sets(sets: Sequence[ScoreSet], *, allow_partial: bool = False) -> AlignedScores:
    """Join score sets by sample name (never by row order).

    Identical name sets are required unless ``allow_partial`` (then the intersection is used and
    a warning says how many samples each input lost). Rows follow the first input's order.
    """
    if not sets:
        raise ValueError("no score files to align")
    for s in sets:
        if len(set(s.names)) != len(s.names):
            dups = [n for n, c in Counter(s.names).items() if c > 1]
            raise ValueError(f"{s.path}: {len(dups)} duplicate sample name(s) (first: {first_names(dups)})")
    k = {s.num_classes for s in sets}
    if len(k) > 1:
        detail = ", ".join(f"{s.label}: {s.num_classes}" for s in sets)
        raise ValueError(f"score files have different numbers of classes ({detail})")
    name_sets = [set(s.names) for s in sets]
    common = set.intersection(*name_sets)
    union = set.union(*name_sets)
    dropped = {s.label: len(s.names) - len(common) for s in sets}
    if common != union:
        if not allow_partial:
            parts = []
            for s, ns in zip(sets, name_sets):
                missing = sorted(union - ns)
                if missing:
                    parts.append(f"{s.path} lacks {len(missing)} of {len(union)} samples (first: {first_names(missing)})")
            raise ValueError(
                "score files cover different samples: " + "; ".join(parts) + " — pass --allow-partial to fuse the common samples"
            )
        if not common:
            raise ValueError("score files share no sample names; nothing to fuse")
        log.warning(
            "fusing the %d samples common to all inputs; dropped per input: %s",
            len(common),
            ", ".join(f"{lab}: {n}" for lab, n in dropped.items()),
        )
    names = [n for n in sets[0].names if n in common]
    matrices, label_rows = [], []
    for s in sets:
        index = {n: i for i, n in enumerate(s.names)}
        rows = np.fromiter((index[n] for n in names), dtype=np.int64, count=len(names))
        matrices.append(s.scores[rows])
        label_rows.append(s.labels[rows])
    ref = label_rows[0]
    for s, lab in zip(sets[1:], label_rows[1:]):
        bad = np.nonzero(lab != ref)[0]
        if len(bad):
            i = int(bad[0])
            raise ValueError(
                f"labels disagree for sample {names[i]!r}: {int(ref[i])} in {sets[0].path} but {int(lab[i])} in {s.path}"
                f" ({len(bad)} sample(s) disagree)"
            )
    return AlignedScores(names=names, labels=ref.copy(), scores=matrices, dropped=dropped)


# --------------------------------------------------------------------------- fusion
