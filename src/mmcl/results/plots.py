"""Plots people would rather look at than read: training curves, confusion matrix, per-class accuracy."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Sequence

import numpy as np

from mmcl.io import atomic_write_bytes

__all__ = ["read_csv_log", "plot_training_curves", "plot_confusion", "plot_per_class", "plot_per_class_comparison"]


def _figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | Path) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    atomic_write_bytes(path, buf.getvalue())


def read_csv_log(path: str | Path) -> dict[str, list[tuple[int, float]]]:
    """Read Lightning's CSV ``metrics.csv`` into ``{metric: [(epoch, value), ...]}``."""
    series: dict[str, list[tuple[int, float]]] = {}
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            try:
                epoch = int(float(row.get("epoch") or 0))
            except ValueError:
                continue
            for key, value in row.items():
                if key in ("epoch", "step") or value in ("", None):
                    continue
                try:
                    series.setdefault(key, []).append((epoch, float(value)))
                except ValueError:
                    pass
    return series


def _one_based(points: list[tuple[int, float]]) -> tuple[list[int], list[float]]:
    """Epochs as the console and the summary count them (1 = first; metrics.csv counts from 0)."""
    return [e + 1 for e, _ in points], [v for _, v in points]


def plot_training_curves(csv_path: str | Path, out_path: str | Path, title: str = "") -> None:
    """Loss, accuracy and learning rate per epoch from a run's CSV log."""
    series = read_csv_log(csv_path)
    plt = _figure()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for key in sorted(series):
        if not key.endswith("_epoch") or "loss" not in key:
            continue
        e, v = _one_based(series[key])
        axes[0].plot(e, v, marker=".", label=key.replace("train/", "").replace("_epoch", ""))
    axes[0].set_title("training losses")
    for key in ("train/top1_epoch", "val/top1", "val/top5", "test/top1"):
        if key in series:
            e, v = _one_based(series[key])
            axes[1].plot(e, [100 * x for x in v], marker=".", label=key.replace("_epoch", ""))
    axes[1].set_title("accuracy (%)")
    if "train/lr" in series:
        e, v = _one_based(series["train/lr"])
        axes[2].plot(e, v, marker=".")
    axes[2].set_title("learning rate")
    for ax in axes:
        ax.set_xlabel("epoch (1 = first)")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    _save(fig, out_path)
    plt.close(fig)


def plot_confusion(confusion: np.ndarray, out_path: str | Path, class_names: Sequence[str] | None = None, title: str = "") -> None:
    """Row-normalised confusion matrix (rows = true class)."""
    plt = _figure()
    k = confusion.shape[0]
    norm = confusion / np.maximum(confusion.sum(axis=1, keepdims=True), 1)
    size = min(24, max(5, 0.25 * k + 3))
    fig, ax = plt.subplots(figsize=(size, size))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    if k <= 40:
        labels = list(class_names) if class_names is not None and len(class_names) == k else [str(i) for i in range(k)]
        ax.set_xticks(range(k), labels, rotation=90, fontsize=7)
        ax.set_yticks(range(k), labels, fontsize=7)
        if k <= 20:
            for i in range(k):
                for j in range(k):
                    if confusion[i, j]:
                        ax.text(j, i, int(confusion[i, j]), ha="center", va="center", fontsize=7, color="white" if norm[i, j] > 0.5 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    fig.colorbar(im, ax=ax, fraction=0.046)
    ax.set_title(title or "confusion matrix (row-normalised)")
    _save(fig, out_path)
    plt.close(fig)


def plot_per_class(per_class: np.ndarray, out_path: str | Path, class_names: Sequence[str] | None = None, title: str = "") -> None:
    plt = _figure()
    k = len(per_class)
    fig, ax = plt.subplots(figsize=(max(6, 0.3 * k + 2), 4))
    ax.bar(range(k), 100 * np.nan_to_num(per_class), color="tab:blue")
    labels = list(class_names) if class_names is not None and len(class_names) == k else [str(i) for i in range(k)]
    ax.set_xticks(range(k), labels, rotation=90, fontsize=7)
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title(title or "per-class accuracy")
    ax.grid(axis="y", alpha=0.3)
    _save(fig, out_path)
    plt.close(fig)


def plot_per_class_comparison(
    acc_a: np.ndarray,
    acc_b: np.ndarray,
    out_path: str | Path,
    *,
    label_a: str,
    label_b: str,
    class_names: Sequence[str] | None = None,
    classes: Sequence[int] | None = None,
    title: str = "",
) -> None:
    """Paired bars per class with the difference annotated, in the spirit of the paper's Table 1."""
    plt = _figure()
    idx = list(classes) if classes is not None else list(range(len(acc_a)))
    k = len(idx)
    fig, ax = plt.subplots(figsize=(max(6, 0.55 * k + 2), 4.5))
    x = np.arange(k)
    a = 100 * np.nan_to_num(np.asarray(acc_a)[idx])
    b = 100 * np.nan_to_num(np.asarray(acc_b)[idx])
    ax.bar(x - 0.2, a, 0.4, label=label_a, color="tab:gray")
    ax.bar(x + 0.2, b, 0.4, label=label_b, color="tab:blue")
    for i in range(k):
        d = b[i] - a[i]
        ax.text(x[i] + 0.2, b[i] + 1, f"{d:+.1f}", ha="center", fontsize=7, color="tab:green" if d >= 0 else "tab:red")
    names = list(class_names) if class_names is not None else [str(i) for i in range(len(acc_a))]
    ax.set_xticks(x, [names[i] for i in idx], rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 110)
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    ax.set_title(title or "per-class accuracy")
    _save(fig, out_path)
    plt.close(fig)
