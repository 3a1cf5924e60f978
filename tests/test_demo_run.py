"""The demo ends with the product: a skeleton-only export that classifies a held-out raw file exactly
as the trained run scored it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mmcl.demo import run_demo
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
