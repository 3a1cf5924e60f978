"""The real-data results committed under ``benchmarks/results/`` agree with themselves and with the code.

The README's results table is only trustworthy if anyone can recompute it from the committed
per-sample scores. These tests recompute every collected run's test metrics from its ``scores.csv``
and every committed ensemble from its recorded inputs and weights, so a re-collected run, a changed
score file or a change in the metric/fusion code that would silently alter a published figure fails.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from mmcl.results.ensemble import run_ensemble
from mmcl.results.metrics import compute_metrics
from mmcl.results.scores import load_scores

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
RUNS = sorted(p.parent for p in RESULTS.glob("*/scores.csv") if (p.parent / "results.json").is_file())
ENSEMBLES = sorted(RESULTS.glob("*/ensemble.json"))


@pytest.mark.parametrize("run", RUNS, ids=lambda p: p.name)
def test_collected_run_scores_reproduce_its_reported_metrics(run: Path) -> None:
    names, labels, scores = load_scores(run / "scores.csv")
    assert len(set(names)) == len(names), "duplicate sample names"
    metrics = compute_metrics(scores, labels)
    reported = json.loads((run / "results.json").read_text())["test"]
    assert metrics.num_samples == reported["num_samples"]
    for key in ("top1", "top5", "mean_class_accuracy"):
        assert getattr(metrics, key) == pytest.approx(reported[key], abs=1e-9), key
    with open(run / "test_confusion.csv", newline="") as f:
        rows = list(csv.reader(f))[1:]
    confusion = np.array([[int(v) for v in row[1:]] for row in rows])
    np.testing.assert_array_equal(confusion, metrics.confusion)


@pytest.mark.parametrize("record", ENSEMBLES, ids=lambda p: p.parent.name)
def test_committed_ensemble_is_recomputable_from_its_inputs(record: Path) -> None:
    spec = json.loads(record.read_text())
    assert spec["fit"] is None, "committed ensembles use fixed weights (fitted ones need val scores)"
    inputs = [ROOT / item["path"] for item in spec["inputs"]]
    labels = [item["label"] for item in spec["inputs"]]
    result = run_ensemble(
        inputs, names=labels, weights=[spec["weights"][lab] for lab in labels], normalize=spec["normalize"]
    )
    assert len(result.names) == spec["num_samples"]
    for key in ("top1", "top5", "mean_class_accuracy"):
        assert getattr(result.fused_metrics, key) == pytest.approx(spec["fused"][key], abs=1e-9), key
    for lab, m in zip(labels, result.stream_metrics):
        assert m.top1 == pytest.approx(spec["streams"][lab]["top1"], abs=1e-9), lab
