"""A readable report of one run, and a per-class comparison of two runs (the paper's Table 1 style).

Everything is recomputed from the run's ``scores.npz`` (the per-sample source of truth), so a
report also works for directories that only hold scores, such as the output of ``mmcl ensemble``.
Training curves come from ``csv/metrics.csv`` when the run has one. Plots are drawn by
:mod:`mmcl.results.plots`, metrics by :mod:`mmcl.results.metrics`.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import yaml

from mmcl.datasets import class_names
from mmcl.io import atomic_write_bytes
from mmcl.results.metrics import ClassificationMetrics, compute_metrics
from mmcl.results.plots import (
    plot_confusion,
    plot_per_class,
    plot_per_class_comparison,
    plot_training_curves,
    read_csv_log,
)
from mmcl.results.scores import ScoreSet, align_score_sets, load_score_set

__all__ = ["RunData", "Comparison", "load_run", "worst_confusions", "compare_runs", "write_report"]

log = logging.getLogger("mmcl")


@dataclass
class RunData:
    """What a report needs from a run directory."""

    run_dir: Path
    label: str
    names: list[str]
    labels: np.ndarray
    scores: np.ndarray
    metrics: ClassificationMetrics
    config: dict[str, Any]
    results: dict[str, Any]
    class_names: list[str] | None
    csv_path: Path | None
    val_metrics: ClassificationMetrics | None


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        log.warning("ignoring unreadable %s", path)
        return {}
    return data if isinstance(data, dict) else {}


def _read_config(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "config.yaml"
    if not path.is_file():
        return {}

    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        log.warning("ignoring unreadable %s", path)
        return {}
    return data if isinstance(data, dict) else {}


def _class_names(dataset: str | None, num_classes: int) -> list[str] | None:
    """Shipped class names of ``dataset`` (``mmcl.datasets.class_names``) when they cover every class."""
    if not dataset:
        return None
    try:
        names = class_names(dataset)
    except (ImportError, ValueError, KeyError, FileNotFoundError):
        return None
    return names[:num_classes] if len(names) >= num_classes else None


def load_run(run_dir: str | Path, *, label: str | None = None, dataset: str | None = None) -> RunData:
    """Read a run directory: test scores (required), config, results, CSV log and validation scores."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run directory not found: {run_dir}")
    scores = load_score_set(run_dir, label or run_dir.resolve().name, split="test")
    config = _read_config(run_dir)
    k = scores.num_classes
    if dataset is None:
        dataset = (config.get("data") or {}).get("dataset")
    try:  # validation scores exist only for runs that carved a validation split
        val = load_score_set(run_dir, split="val")
    except FileNotFoundError:
        val = None
    val_metrics = compute_metrics(val.scores, val.labels, k) if val is not None else None
    csv_path = run_dir / "csv" / "metrics.csv"
    if not csv_path.is_file():  # a collected copy (benchmarks/results/<run>/) keeps the log at the top
        csv_path = run_dir / "metrics.csv"
    return RunData(
        run_dir=run_dir,
        label=scores.label,
        names=scores.names,
        labels=scores.labels,
        scores=scores.scores,
        metrics=compute_metrics(scores.scores, scores.labels, k),
        config=config,
        results=_read_json(run_dir / "results.json"),
        class_names=_class_names(dataset, k),
        csv_path=csv_path if csv_path.is_file() else None,
        val_metrics=val_metrics,
    )


# --------------------------------------------------------------------------- analysis
def worst_confusions(confusion: np.ndarray, top: int = 10) -> list[tuple[int, int, int, float]]:
    """The most frequent mistakes: ``(true, predicted, count, share of the true class)``, largest first."""
    conf = np.asarray(confusion)
    off = conf.copy()
    np.fill_diagonal(off, 0)
    rows, cols = np.nonzero(off)
    order = sorted(zip(rows.tolist(), cols.tolist()), key=lambda rc: (-off[rc], rc))
    totals = conf.sum(axis=1)
    return [(r, c, int(off[r, c]), float(off[r, c] / max(totals[r], 1))) for r, c in order[:top]]


def best_epoch(run: RunData) -> tuple[int | None, float | None, str]:
    """Best epoch (1-based) and its selection top-1: results.json first, else the CSV log's best val/top1."""
    res = run.results
    if res.get("best_epoch") is not None and int(res["best_epoch"]) > 0:
        return int(res["best_epoch"]), res.get("best_selection_top1"), str(res.get("selection_split", ""))
    if run.csv_path is not None:
        series = read_csv_log(run.csv_path).get("val/top1")
        if series:
            epoch, value = max(series, key=lambda ev: (ev[1], -ev[0]))
            split = "val" if float((run.config.get("data") or {}).get("val_fraction") or 0) > 0 else "test"
            return epoch + 1, value, split
    return None, None, ""


@dataclass
class Comparison:
    """Per-class accuracies of two runs on the samples they share (aligned by name)."""

    label_a: str
    label_b: str
    acc_a: np.ndarray
    acc_b: np.ndarray
    counts: np.ndarray
    top1_a: float
    top1_b: float
    mean_class_a: float
    mean_class_b: float
    num_samples: int
    fixed: int  # samples B gets right and A wrong
    broken: int  # samples A gets right and B wrong
    classes: list[int]  # the classes where the two differ most, largest |delta| first
    dropped: dict[str, int]

    @property
    def delta(self) -> np.ndarray:
        return self.acc_b - self.acc_a


def compare_runs(run_a: RunData, run_b: RunData, *, top: int = 10) -> Comparison:
    """Per-class accuracy of two runs joined by sample name; picks up to ``top`` classes by |B − A| (Δ ≠ 0)."""

    sets = [
        ScoreSet(run_a.label, run_a.run_dir, "test", run_a.names, run_a.labels, run_a.scores),
        ScoreSet(run_b.label, run_b.run_dir, "test", run_b.names, run_b.labels, run_b.scores),
    ]
    aligned = align_score_sets(sets, allow_partial=True)
    k = run_a.scores.shape[1]
    ma = compute_metrics(aligned.scores[0], aligned.labels, k)
    mb = compute_metrics(aligned.scores[1], aligned.labels, k)
    hit_a = aligned.scores[0].argmax(axis=1) == aligned.labels
    hit_b = aligned.scores[1].argmax(axis=1) == aligned.labels
    delta = mb.per_class_accuracy - ma.per_class_accuracy
    differing = [i for i in range(k) if not math.isnan(delta[i]) and delta[i] != 0]
    ranked = sorted(differing, key=lambda i: (-abs(delta[i]), i))
    return Comparison(
        label_a=run_a.label,
        label_b=run_b.label,
        acc_a=ma.per_class_accuracy,
        acc_b=mb.per_class_accuracy,
        counts=ma.per_class_count,
        top1_a=ma.top1,
        top1_b=mb.top1,
        mean_class_a=ma.mean_class_accuracy,
        mean_class_b=mb.mean_class_accuracy,
        num_samples=len(aligned.names),
        fixed=int((hit_b & ~hit_a).sum()),
        broken=int((hit_a & ~hit_b).sum()),
        classes=ranked[:top],
        dropped=aligned.dropped,
    )


# --------------------------------------------------------------------------- Markdown
def _pct(x: float | None) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.2f}"


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _class_label(i: int, names: Sequence[str] | None) -> str:
    return _cell(names[i]) if names is not None else ""


def _config_rows(run: RunData) -> list[tuple[str, Any]]:
    cfg = run.config
    data, model, optim, trainer, co = (cfg.get(s) or {} for s in ("data", "model", "optim", "trainer", "colearning"))
    rows: list[tuple[str, Any]] = [
        ("name", cfg.get("name")),
        ("dataset", data.get("dataset")),
        ("data path", data.get("path")),
        ("stream", data.get("stream")),
        ("classes", run.scores.shape[1]),
        ("backbone", model.get("backbone")),
        ("co-learning", ", ".join(x for x in ("FAM", "FRM") if co.get(x.lower())) or ("off" if co else None)),
        ("epochs", trainer.get("epochs")),
        ("batch size", data.get("batch_size")),
        ("base LR / schedule", f"{optim.get('base_lr')} / {optim.get('schedule')}" if optim else None),
        ("validation fraction", data.get("val_fraction")),
        ("precision", trainer.get("precision")),
        ("seed", trainer.get("seed")),
    ]
    return [(k, v) for k, v in rows if v not in (None, "")]


def _markdown(run: RunData, plots: dict[str, str], comparison: Comparison | None, top: int) -> str:
    m = run.metrics
    names = run.class_names
    out: list[str] = [f"# Run report: {_cell(run.config.get('name') or run.label)}", "", f"Run directory: `{run.run_dir}`", ""]
    rows = _config_rows(run)
    if rows:
        out += ["## Configuration", "", "| key | value |", "|---|---|"]
        out += [f"| {k} | {_cell(v)} |" for k, v in rows]
        out.append("")
    epoch, sel_top1, split = best_epoch(run)
    out += ["## Results (test split, recomputed from the per-sample scores)", "", "| metric | value |", "|---|---|"]
    out += [
        f"| top-1 (%) | {_pct(m.top1)} |",
        f"| top-5 (%) | {_pct(m.top5)} |",
        f"| mean class accuracy (%) | {_pct(m.mean_class_accuracy)} |",
        f"| test samples | {m.num_samples} |",
    ]
    if epoch is not None:
        out.append(f"| best epoch | {epoch}" + (f" (selected on {split}, top-1 {_pct(sel_top1)} %)" if sel_top1 is not None else "") + " |")
    if run.val_metrics is not None:
        out.append(f"| validation top-1 (%) | {_pct(run.val_metrics.top1)} ({run.val_metrics.num_samples} samples) |")
    out.append("")
    for key, title in (("curves", "Training curves"), ("confusion", "Confusion matrix"), ("per_class", "Per-class accuracy")):
        if key in plots:
            out += [f"![{title}]({plots[key]})", ""]
    if "curves" not in plots:
        out += ["_No training curves: the run has no csv/metrics.csv._", ""]

    out += [f"## Worst confusions (top {top})", ""]
    worst = worst_confusions(m.confusion, top)
    if worst:
        out += ["| true | predicted | samples | share of true class (%) |", "|---|---|---|---|"]
        for r, c, n, share in worst:
            tr = f"{r} {_class_label(r, names)}".strip()
            pr = f"{c} {_class_label(c, names)}".strip()
            out.append(f"| {tr} | {pr} | {n} | {_pct(share)} |")
    else:
        out.append("_No misclassified samples._")
    out.append("")

    out += ["## Per-class accuracy", "", "| class | name | samples | accuracy (%) |", "|---|---|---|---|"]
    for i in range(len(m.per_class_accuracy)):
        out.append(f"| {i} | {_class_label(i, names)} | {int(m.per_class_count[i])} | {_pct(float(m.per_class_accuracy[i]))} |")
    out.append("")

    if comparison is not None:
        c = comparison
        out += [
            f"## Comparison: {_cell(c.label_a)} → {_cell(c.label_b)}",
            "",
            f"On the {c.num_samples} test samples both runs scored (joined by sample name):",
            "",
            "| run | top-1 (%) | mean class (%) |",
            "|---|---|---|",
            f"| {_cell(c.label_a)} | {_pct(c.top1_a)} | {_pct(c.mean_class_a)} |",
            f"| {_cell(c.label_b)} | {_pct(c.top1_b)} | {_pct(c.mean_class_b)} |",
            "",
            f"{_cell(c.label_b)} corrects {c.fixed} sample(s) that {_cell(c.label_a)} gets wrong and misses {c.broken} that it gets right.",
        ]
        dropped = {k: v for k, v in c.dropped.items() if v}
        if dropped:
            out.append("Samples present in only one run were left out: " + ", ".join(f"{_cell(k)} {v}" for k, v in dropped.items()) + ".")
        out += ["", f"Classes where the runs differ most (top {len(c.classes)} by |Δ|, Δ = {_cell(c.label_b)} − {_cell(c.label_a)}):", ""]
        if "comparison" in plots:
            out += [f"![Per-class comparison]({plots['comparison']})", ""]
        if not c.classes:
            out.append("_No class accuracy differs between the two runs._")
        else:
            out += [f"| class | name | samples | {_cell(c.label_a)} (%) | {_cell(c.label_b)} (%) | Δ (points) |", "|---|---|---|---|---|---|"]
        for i in c.classes:
            d = float(c.delta[i])
            out.append(
                f"| {i} | {_class_label(i, names)} | {int(c.counts[i])} | {_pct(float(c.acc_a[i]))} | {_pct(float(c.acc_b[i]))} | {100 * d:+.2f} |"
            )
        out.append("")
    return "\n".join(out)


def write_report(
    run_dir: str | Path,
    *,
    out_dir: str | Path | None = None,
    compare: str | Path | None = None,
    labels: Sequence[str] | None = None,
    top: int = 10,
    dataset: str | None = None,
) -> Path:
    """Write plots and ``report.md`` for a run (default ``RUN_DIR/report``); returns the Markdown path.

    With ``compare``, ``run_dir`` is A and ``compare`` is B; ``labels`` names them (default: the
    directory names).
    """

    if labels is not None and len(labels) != (2 if compare is not None else 1):
        raise ValueError(f"--labels takes {'two names (RUN_DIR and --compare)' if compare is not None else 'one name'}, got {len(labels)}")
    if top < 1:
        raise ValueError(f"--top must be at least 1, got {top}")
    label_a = labels[0] if labels else None
    run = load_run(run_dir, label=label_a, dataset=dataset)
    other = None
    if compare is not None:
        label_b = labels[1] if labels else None
        other = load_run(compare, label=label_b, dataset=dataset)
        if other.scores.shape[1] != run.scores.shape[1]:
            raise ValueError(f"cannot compare runs with {run.scores.shape[1]} and {other.scores.shape[1]} classes")
        if other.label == run.label:
            run.label, other.label = f"{run.label} (A)", f"{other.label} (B)"
    out = Path(out_dir) if out_dir is not None else run.run_dir / "report"
    out.mkdir(parents=True, exist_ok=True)
    title = str(run.config.get("name") or run.label)
    plots: dict[str, str] = {}
    if run.csv_path is not None:
        plot_training_curves(run.csv_path, out / "curves.png", title=title)
        plots["curves"] = "curves.png"
    plot_confusion(run.metrics.confusion, out / "confusion.png", run.class_names)
    plots["confusion"] = "confusion.png"
    plot_per_class(run.metrics.per_class_accuracy, out / "per_class.png", run.class_names)
    plots["per_class"] = "per_class.png"
    comparison = None
    if other is not None:
        comparison = compare_runs(run, other, top=top)
        if comparison.classes:
            plot_per_class_comparison(
                comparison.acc_a,
                comparison.acc_b,
                out / "comparison.png",
                label_a=comparison.label_a,
                label_b=comparison.label_b,
                class_names=run.class_names,
                classes=comparison.classes,
                title=f"classes where {comparison.label_b} and {comparison.label_a} differ most",
            )
            plots["comparison"] = "comparison.png"
    md = out / "report.md"
    atomic_write_bytes(md, _markdown(run, plots, comparison, top).encode())
    return md
