"""Evaluation metrics and the per-sample score file (the input of ensembling)."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from mmcl.io import atomic_write_bytes

__all__ = ["ClassificationMetrics", "top_k_classes", "topk_hits", "compute_metrics", "write_metrics"]


@dataclass
class ClassificationMetrics:
    top1: float
    top5: float
    mean_class_accuracy: float
    per_class_accuracy: np.ndarray  # K, NaN for classes absent from the labels
    per_class_count: np.ndarray  # K
    confusion: np.ndarray  # K×K, rows = true class, columns = predicted
    num_samples: int

    def summary(self) -> dict[str, float]:
        return {
            "top1": self.top1,
            "top5": self.top5,
            "mean_class_accuracy": self.mean_class_accuracy,
            "num_samples": self.num_samples,
        }


def top_k_classes(scores: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` best classes of each row (N×K scores -> N×k, best first; equal scores keep class
    order). The one ranking used by metrics, predict and zero-shot, so they never disagree."""
    scores = np.asarray(scores)
    k = max(1, min(int(k), scores.shape[-1]))
    return np.argsort(-scores, axis=-1, kind="stable")[..., :k]


def topk_hits(scores: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """Boolean hit per sample: label among the k largest scores (REFERENCE §6.4)."""
    return (top_k_classes(scores, k) == np.asarray(labels)[:, None]).any(axis=1)


def compute_metrics(scores: np.ndarray, labels: np.ndarray, num_classes: int | None = None) -> ClassificationMetrics:
    """Top-1/5, mean class accuracy, per-class accuracy and the confusion matrix."""
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    if scores.ndim != 2 or scores.shape[0] != labels.shape[0]:
        raise ValueError(f"scores {scores.shape} and labels {labels.shape} do not match")
    k = num_classes or scores.shape[1]
    pred = scores.argmax(axis=1)
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (labels, pred), 1)
    counts = confusion.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_class = np.where(counts > 0, np.diag(confusion) / np.maximum(counts, 1), np.nan)
    n = len(labels)
    return ClassificationMetrics(
        top1=float((pred == labels).mean()) if n else float("nan"),
        top5=float(topk_hits(scores, labels, 5).mean()) if n else float("nan"),
        mean_class_accuracy=float(np.nanmean(per_class)) if n else float("nan"),
        per_class_accuracy=per_class,
        per_class_count=counts,
        confusion=confusion,
        num_samples=n,
    )


def write_metrics(run_dir: str | Path, metrics: ClassificationMetrics, class_names: Sequence[str] | None, prefix: str = "test") -> None:
    """Write ``<prefix>_metrics.json``, ``<prefix>_per_class.csv`` and ``<prefix>_confusion.csv``."""
    run_dir = Path(run_dir)
    k = len(metrics.per_class_accuracy)
    names = list(class_names) if class_names is not None and len(class_names) == k else [str(i) for i in range(k)]
    payload = dict(metrics.summary())
    payload["per_class_accuracy"] = {
        names[i]: (None if np.isnan(metrics.per_class_accuracy[i]) else float(metrics.per_class_accuracy[i])) for i in range(k)
    }
    atomic_write_bytes(run_dir / f"{prefix}_metrics.json", json.dumps(payload, indent=2).encode())

    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["class", "name", "count", "accuracy"])
    for i in range(k):
        acc = metrics.per_class_accuracy[i]
        writer.writerow([i, names[i], int(metrics.per_class_count[i]), "" if np.isnan(acc) else f"{acc:.6f}"])
    atomic_write_bytes(run_dir / f"{prefix}_per_class.csv", out.getvalue().encode())
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["true\\pred"] + list(range(k)))
    for i in range(k):
        writer.writerow([i] + metrics.confusion[i].tolist())
    atomic_write_bytes(run_dir / f"{prefix}_confusion.csv", out.getvalue().encode())
