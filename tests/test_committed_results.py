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


STUDIES = sorted(RESULTS.glob("colearning_study*.json"))


@pytest.mark.parametrize("study_file", STUDIES, ids=lambda p: p.stem)
def test_the_colearning_study_table_is_recomputed_from_its_runs_and_shown_in_the_docs(study_file: Path) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("colearning_study", ROOT / "benchmarks" / "colearning_study.py")
    study = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(study)
    committed = json.loads(study_file.read_text())
    runs = committed["runs"]
    seeds = {r["seed"] for r in runs}
    variants = {r["variant"] for r in runs}
    assert len(seeds) >= 5 and "skeleton only" in variants and variants <= {v[0] for v in study.VARIANTS}
    assert len(runs) == len(seeds) * len(variants)  # every variant on every seed: the differences are paired
    for run in runs:  # the object-class figure is the mean of its per-class accuracies
        per_class = run["per_class_accuracy"]
        assert run["object_class_accuracy"] == pytest.approx(np.mean([per_class[n] for n in study.OBJECT_CLASSES]), abs=1e-4)
    assert study.summarise(runs) == committed["table"]
    table = study.markdown(committed["table"])
    assert study_file.with_suffix(".md").read_text().strip() == table
    assert table in (ROOT / "docs" / "colearning.md").read_text()


PROTOCOLS = sorted(RESULTS.glob("nwucla_protocols*.json"))


@pytest.mark.parametrize("record", PROTOCOLS, ids=lambda p: p.stem)
def test_both_protocols_are_recomputed_from_the_committed_scores(record: Path) -> None:
    """Protocol (a) (last epoch) and (b) (each stream's best test epoch) of every stream and ensemble
    in the committed table follow from the committed per-sample scores and the recorded weights."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("nwucla_protocols", ROOT / "benchmarks" / "nwucla_protocols.py")
    protocols = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(protocols)
    from mmcl.results.ensemble import fuse_scores

    rows = json.loads(record.read_text())["rows"]
    streams = {}
    for row in (r for r in rows if r["kind"] == "stream"):
        s = protocols._stream([ROOT / f for f in row["folders"]])  # one folder, or a model's training cycles in order
        assert s["last_top1"] == pytest.approx(row["a_top1"], abs=1e-9), row["name"]
        assert (s["best_top1"], s["best_epoch"]) == (pytest.approx(row["b_top1"], abs=1e-6), row["b_epoch"]), row["name"]
        streams[row["name"]] = s
    for row in (r for r in rows if r["kind"] == "ensemble"):
        first = streams[row["streams"][0]]
        parts = [protocols._aligned(ROOT / streams[lab]["folders"][-1] / "scores.csv", first["names"]) for lab in row["streams"]]
        fused = fuse_scores([p[1] for p in parts], row["weights"], row["normalize"])
        assert compute_metrics(fused, first["labels"]).top1 == pytest.approx(row["a_top1"], abs=1e-9), row["name"]
        if row["b_top1"] is not None:  # every stream kept its per-epoch scores: fuse each one's best epoch
            best = [protocols._aligned(Path(streams[lab]["best_file"]), first["names"])[1] for lab in row["streams"]]
            fused = fuse_scores(best, row["weights"], row["normalize"])
            assert compute_metrics(fused, first["labels"]).top1 == pytest.approx(row["b_top1"], abs=1e-9), row["name"]
