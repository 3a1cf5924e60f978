"""Multi-stream score fusion, aligned by sample name (REFERENCE §8, without its defects).

The reference ensembles (REFERENCE §8.2, §8.3) pair the rows of different score files by their
*position* and crash for some stream counts (§12 items 12-13). Here every score file is a
``scores.npz`` keyed by sample name (:mod:`mmcl.results.scores`) and streams are joined on
that name: files in any order fuse to the same result, and files that do not cover the same
samples, disagree on a label or repeat a name are refused with a message saying which.

Weights are fixed (``--weights``), read from a YAML/JSON file or a built-in preset (the reference
weights), or **fitted on the validation split** that training carved from the training set
(``data.val_fraction > 0`` writes ``val_scores.npz``). Fitting is kept away from the test split by
construction: :func:`fit_weights` accepts only score sets loaded from validation files, and
:func:`fit_weights_from_runs` opens nothing but ``val_scores.npz``.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import yaml

from mmcl.io import atomic_write_bytes
from mmcl.results.metrics import ClassificationMetrics, compute_metrics
from mmcl.results.scores import (
    SCORE_FILE,
    ScoreSet,
    align_score_sets,
    canonical_label,
    default_labels,
    first_names,
    load_score_set,
    save_scores,
)

__all__ = [
    "NORMALIZATIONS",
    "PRESETS",
    "PRESET_NORMALIZATION",
    "FitResult",
    "EnsembleResult",
    "normalize_scores",
    "fuse_scores",
    "resolve_weights",
    "fit_weights",
    "fit_weights_from_runs",
    "run_ensemble",
    "format_ensemble_table",
]

log = logging.getLogger("mmcl")

NORMALIZATIONS = ("none", "softmax", "l2")

#: Reference weights (REFERENCE §8.2, §8.3), keyed by stream label (see :func:`canonical_label`).
PRESETS: dict[str, dict[str, float]] = {
    # CTR-GCN ensemble.py, 4 streams: 0.6·J + 0.6·B + 0.4·JM + 0.4·BM on raw logits (all benchmarks)
    "ctrgcn-4s": {"J": 0.6, "B": 0.6, "JM": 0.4, "BM": 0.4},
    # CTR-GCN ensemble.py, 2 streams: J + alpha·B with the default alpha = 1
    "ctrgcn-2s": {"J": 1.0, "B": 1.0},
    # CTR-GCN ensemble.py, 3 streams (the branch that crashes in the reference, §12 item 12)
    "ctrgcn-3s": {"J": 0.6, "B": 0.6, "JM": 0.4},
    # MMCL Ensemble/ensemble.py, NTU-120 X-Sub (the only benchmark with real weights, §12 item 13)
    "mmcl-ntu120-xsub": {
        "J": 2.361693262051476,
        "B": 4.35402786600752,
        "JM": 3.6038236890242237,
        "BM": 1.0158095311333564,
        "HDJ": 3.0574845840597544,
        "HDB": 5.0,
    },
    # HD-GCN ensemble.py: joint/bone × CoM 1, 2, 21 (NTU), equal weights on L2-normalised scores
    "hdgcn-6way": {"HDJ1": 1.0, "HDB1": 1.0, "HDJ2": 1.0, "HDB2": 1.0, "HDJ21": 1.0, "HDB21": 1.0},
    # the same for NW-UCLA, whose third centre is joint 3 (the official script's joint_CoM_3 / bone_CoM_3)
    "hdgcn-6way-ucla": {"HDJ1": 1.0, "HDB1": 1.0, "HDJ2": 1.0, "HDB2": 1.0, "HDJ3": 1.0, "HDB3": 1.0},
}
#: the score normalisation a preset was made for (others: raw logits)
PRESET_NORMALIZATION: dict[str, str] = {"hdgcn-6way": "l2", "hdgcn-6way-ucla": "l2"}

def normalize_scores(scores: np.ndarray, method: str = "none") -> np.ndarray:
    """Per-sample score normalisation: raw logits (reference), softmax, or L2 (HD-GCN, REFERENCE §8.4)."""
    x = np.asarray(scores, dtype=np.float64)
    if method == "none":
        return x
    if method == "softmax":
        z = np.exp(x - x.max(axis=1, keepdims=True))
        return z / z.sum(axis=1, keepdims=True)
    if method == "l2":
        return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    raise ValueError(f"unknown normalisation {method!r}; choose from {', '.join(NORMALIZATIONS)}")


def fuse_scores(scores: Sequence[np.ndarray], weights: Sequence[float], normalize: str = "none") -> np.ndarray:
    """Weighted sum of aligned score matrices (float64): ``sum_s w_s · norm(score_s)``."""
    if len(scores) != len(weights):
        raise ValueError(f"{len(weights)} weight(s) for {len(scores)} stream(s)")
    if not scores:
        raise ValueError("nothing to fuse")
    fused = np.zeros(np.asarray(scores[0]).shape, dtype=np.float64)
    for s, w in zip(scores, weights):
        fused += float(w) * normalize_scores(s, normalize)
    return fused


def _read_weights_file(path: str | Path) -> Any:
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"weights file not found: {p}")
    try:
        data = yaml.safe_load(p.read_text())  # YAML is a superset of JSON
    except yaml.YAMLError as exc:
        raise ValueError(f"{p}: not valid YAML/JSON ({str(exc).splitlines()[0]})") from None
    if isinstance(data, dict) and "weights" in data:  # e.g. an ensemble.json written by this module
        data = data["weights"]
    return data


def _weights_from_spec(spec: Any, labels: Sequence[str], source: str) -> np.ndarray:
    if isinstance(spec, (list, tuple)):
        if len(spec) != len(labels):
            raise ValueError(f"{source}: {len(spec)} weight(s) for {len(labels)} stream(s)")
        values = list(spec)
    elif isinstance(spec, Mapping):
        table = {canonical_label(k): v for k, v in spec.items()}
        missing = [lab for lab in labels if canonical_label(lab) not in table]
        if missing:
            raise ValueError(
                f"{source} has no weight for stream(s) {first_names(missing)} (it has {', '.join(map(str, spec))}); name the inputs with --names"
            )
        values = [table[canonical_label(lab)] for lab in labels]
    else:
        raise ValueError(f"{source}: expected a list of weights or a mapping stream -> weight")
    try:
        weights = np.array([float(v) for v in values], dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{source}: weights must be numbers, got {values}") from None
    if not np.all(np.isfinite(weights)):
        raise ValueError(f"{source}: weights must be finite, got {weights.tolist()}")
    return weights


def resolve_weights(
    labels: Sequence[str],
    *,
    weights: Sequence[float] | None = None,
    weights_file: str | Path | None = None,
    preset: str | None = None,
) -> tuple[np.ndarray, str]:
    """Fixed weights from one of: a list, a YAML/JSON file, a preset; equal weights 1 when none is given."""
    given = [x is not None for x in (weights, weights_file, preset)]
    if sum(given) > 1:
        raise ValueError("give only one of --weights, --weights-file, --preset")
    if weights is not None:
        return _weights_from_spec(list(weights), labels, "--weights"), "fixed"
    if weights_file is not None:
        return _weights_from_spec(_read_weights_file(weights_file), labels, str(weights_file)), f"file:{weights_file}"
    if preset is not None:
        if preset not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}; choose from {', '.join(PRESETS)}")
        return _weights_from_spec(PRESETS[preset], labels, f"preset {preset}"), f"preset:{preset}"
    return np.ones(len(labels), dtype=np.float64), "equal"


# --------------------------------------------------------------------------- fitting (validation only)
@dataclass
class FitResult:
    """Weights fitted on validation scores (non-negative, sum 1) and what they achieved there."""

    weights: np.ndarray
    val_top1: float
    val_nll: float
    val_stream_top1: list[float]
    num_samples: int
    val_files: list[str]
    normalize: str
    step: float
    sample_names: list[str] = field(default_factory=list, repr=False)

    def to_dict(self, labels: Sequence[str]) -> dict[str, Any]:
        return {
            "split": "val",
            "objective": "val top-1, ties broken by val NLL of the softmax of the fused scores",
            "normalize": self.normalize,
            "grid_step": self.step,
            "num_samples": self.num_samples,
            "val_files": self.val_files,
            "val_top1": self.val_top1,
            "val_nll": self.val_nll,
            "val_stream_top1": dict(zip(labels, self.val_stream_top1)),
        }


def _objective(stack: np.ndarray, labels: np.ndarray, w: np.ndarray) -> tuple[int, float]:
    fused = np.tensordot(w, stack, axes=1)
    hits = int((fused.argmax(axis=1) == labels).sum())
    m = fused.max(axis=1, keepdims=True)
    lse = np.log(np.exp(fused - m).sum(axis=1)) + m[:, 0]
    nll = float(np.mean(lse - fused[np.arange(len(labels)), labels]))
    return hits, nll


def fit_weights(
    val_sets: Sequence[ScoreSet],
    *,
    normalize: str = "none",
    step: float = 0.05,
    max_rounds: int = 25,
    allow_partial: bool = False,
) -> FitResult:
    """Fit stream weights on **validation** score sets only.

    Coordinate ascent over non-negative weights summing to 1: each stream's share is tried on a
    grid of ``step`` (the others keep their proportions) and a move is kept when it raises val
    top-1, or keeps it and lowers the val NLL of the softmax-normalised fused scores. Starts
    from equal weights; deterministic. Refuses any set that was not loaded from a validation file.
    """
    not_val = [str(s.path) for s in val_sets if s.split != "val"]
    if not_val:
        raise ValueError(f"weights may only be fitted on validation scores, got {first_names(not_val)}")
    if not 0.0 < step <= 0.5:
        raise ValueError(f"fit grid step must be in (0, 0.5], got {step}")
    aligned = align_score_sets(val_sets, allow_partial=allow_partial)
    labels = aligned.labels
    stack = np.stack([normalize_scores(s, normalize) for s in aligned.scores])  # S×N×K
    n_streams = len(val_sets)
    stream_top1 = [float((s.argmax(axis=1) == labels).mean()) for s in aligned.scores]
    w = np.full(n_streams, 1.0 / n_streams)
    best = _objective(stack, labels, w)
    grid = np.round(np.arange(0.0, 1.0 + step / 2, step), 10)
    seen: dict[tuple[float, ...], tuple[int, float]] = {tuple(np.round(w, 9)): best}

    def better(a: tuple[int, float], b: tuple[int, float]) -> bool:
        return a[0] > b[0] or (a[0] == b[0] and a[1] < b[1] - 1e-9)

    for _ in range(max_rounds if n_streams > 1 else 0):
        moved = False
        for i in range(n_streams):
            rest = w.copy()
            rest[i] = 0.0
            total = rest.sum()
            rest = rest / total if total > 0 else np.where(np.arange(n_streams) == i, 0.0, 1.0 / (n_streams - 1))
            for g in grid:
                cand = (1.0 - g) * rest
                cand[i] = g
                key = tuple(np.round(cand, 9))
                if key not in seen:
                    seen[key] = _objective(stack, labels, cand)
                if better(seen[key], best):
                    best, w, moved = seen[key], cand, True
        if not moved:
            break
    return FitResult(
        weights=w,
        val_top1=best[0] / max(len(labels), 1),
        val_nll=best[1],
        val_stream_top1=stream_top1,
        num_samples=len(labels),
        val_files=[str(s.path) for s in val_sets],
        normalize=normalize,
        step=step,
        sample_names=aligned.names,
    )


def fit_weights_from_runs(
    inputs: Sequence[str | Path],
    labels: Sequence[str],
    *,
    normalize: str = "none",
    step: float = 0.05,
    allow_partial: bool = False,
) -> FitResult:
    """Load each input's ``val_scores.npz`` (never its test scores) and fit weights on them."""
    val_sets = [load_score_set(p, label, split="val") for p, label in zip(inputs, labels)]
    return fit_weights(val_sets, normalize=normalize, step=step, allow_partial=allow_partial)


# --------------------------------------------------------------------------- the whole job
@dataclass
class EnsembleResult:
    labels: list[str]
    paths: list[str]
    weights: np.ndarray
    weight_source: str
    normalize: str
    names: list[str]
    sample_labels: np.ndarray
    fused: np.ndarray
    stream_metrics: list[ClassificationMetrics]
    fused_metrics: ClassificationMetrics
    dropped: dict[str, int]
    fit: FitResult | None = None

    def to_dict(self) -> dict[str, Any]:
        def clean(d: dict[str, Any]) -> dict[str, Any]:
            return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in d.items()}

        return {
            "inputs": [{"label": lab, "path": p} for lab, p in zip(self.labels, self.paths)],
            "weights": {lab: float(w) for lab, w in zip(self.labels, self.weights)},
            "weight_source": self.weight_source,
            "normalize": self.normalize,
            "num_samples": len(self.names),
            "dropped_samples": self.dropped,
            "streams": {lab: clean(m.summary()) for lab, m in zip(self.labels, self.stream_metrics)},
            "fused": clean(self.fused_metrics.summary()),
            "fused_per_class_accuracy": [None if math.isnan(a) else float(a) for a in self.fused_metrics.per_class_accuracy],
            "fit": self.fit.to_dict(self.labels) if self.fit is not None else None,
        }


def run_ensemble(
    inputs: Sequence[str | Path],
    *,
    names: Sequence[str] | None = None,
    weights: Sequence[float] | None = None,
    weights_file: str | Path | None = None,
    preset: str | None = None,
    fit: str | None = None,
    normalize: str | None = None,
    allow_partial: bool = False,
    fit_step: float = 0.05,
    out_dir: str | Path | None = None,
) -> EnsembleResult:
    """Fuse the test scores of several runs; optionally fit the weights on their validation scores first.

    ``normalize=None`` means the preset's own normalisation (:data:`PRESET_NORMALIZATION`), else none.
    Writes ``ensemble.json`` and the fused ``scores.npz`` into ``out_dir`` when given.
    """
    if not inputs:
        raise ValueError("give at least one run directory or score file")
    if normalize is None:
        normalize = PRESET_NORMALIZATION.get(preset or "", "none")
    if normalize not in NORMALIZATIONS:
        raise ValueError(f"unknown normalisation {normalize!r}; choose from {', '.join(NORMALIZATIONS)}")
    if names is not None and len(names) != len(inputs):
        raise ValueError(f"{len(names)} name(s) for {len(inputs)} input(s)")
    labels = list(names) if names is not None else default_labels(inputs)
    if len({canonical_label(x) for x in labels}) != len(labels):
        raise ValueError(f"stream names must be distinct, got {labels}")
    fit_result: FitResult | None = None
    if fit is not None:
        if fit != "val":
            raise ValueError(f"weights can only be fitted on 'val' (the validation split), got {fit!r}")
        if any(x is not None for x in (weights, weights_file, preset)):
            raise ValueError("--fit val cannot be combined with --weights, --weights-file or --preset")
        # Fit first, from validation files only; the test scores are not even loaded yet.
        fit_result = fit_weights_from_runs(inputs, labels, normalize=normalize, step=fit_step, allow_partial=allow_partial)
        w, source = fit_result.weights, "fit:val"
    else:
        w, source = resolve_weights(labels, weights=weights, weights_file=weights_file, preset=preset)
    sets = [load_score_set(p, lab, split="test") for p, lab in zip(inputs, labels)]
    if fit_result is not None:
        _check_val_test_disjoint(fit_result, sets)
    aligned = align_score_sets(sets, allow_partial=allow_partial)
    fused = fuse_scores(aligned.scores, w, normalize)
    k = sets[0].num_classes
    result = EnsembleResult(
        labels=labels,
        paths=[str(s.path) for s in sets],
        weights=np.asarray(w, dtype=np.float64),
        weight_source=source,
        normalize=normalize,
        names=aligned.names,
        sample_labels=aligned.labels,
        fused=fused,
        stream_metrics=[compute_metrics(s, aligned.labels, k) for s in aligned.scores],
        fused_metrics=compute_metrics(fused, aligned.labels, k),
        dropped=aligned.dropped,
        fit=fit_result,
    )
    if out_dir is not None:
        out = Path(out_dir)
        save_scores(out / SCORE_FILE, result.names, result.sample_labels, result.fused)
        atomic_write_bytes(out / "ensemble.json", json.dumps(result.to_dict(), indent=2).encode())
    return result


def _check_val_test_disjoint(fit_result: FitResult, test_sets: Sequence[ScoreSet]) -> None:
    """Weights fitted on samples that are also test samples would leak the test split."""
    val_names = set(fit_result.sample_names)
    for s in test_sets:
        shared = sorted(val_names.intersection(s.names))
        if shared:
            raise ValueError(
                f"validation and test samples overlap ({len(shared)} shared, first: {first_names(shared)}) in {s.path}: refusing to use weights fitted on test samples"
            )


def format_ensemble_table(result: EnsembleResult) -> str:
    """Plain-text table: weight, top-1, top-5 and mean class accuracy per stream and fused."""
    width = max(6, *(len(x) for x in result.labels))
    head = f"{'stream':<{width}}  {'weight':>8}  {'top-1':>7}  {'top-5':>7}  {'mean cls':>8}"
    lines = [head, "-" * len(head)]

    def row(label: str, weight: str, m: ClassificationMetrics) -> str:
        return f"{label:<{width}}  {weight:>8}  {100 * m.top1:7.2f}  {100 * m.top5:7.2f}  {100 * m.mean_class_accuracy:8.2f}"

    for lab, w, m in zip(result.labels, result.weights, result.stream_metrics):
        lines.append(row(lab, f"{w:.4g}", m))
    lines.append("-" * len(head))
    lines.append(row("fused", "", result.fused_metrics))
    extra = [f"{len(result.names)} samples", f"weights: {result.weight_source}", f"normalize: {result.normalize}"]
    if result.fit is not None:
        extra.append(f"val top-1 of the fit {100 * result.fit.val_top1:.2f}% on {result.fit.num_samples} validation samples")
    dropped = {k: v for k, v in result.dropped.items() if v}
    if dropped:
        extra.append("dropped (not in every input): " + ", ".join(f"{k} {v}" for k, v in dropped.items()))
    return "\n".join(lines + ["", "; ".join(extra)])
