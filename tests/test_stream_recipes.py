"""Stream specs and recipes of `mmcl streams` (the paper's six streams, HD-GCN's six-way), and their presets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import mmcl.results.ensemble as ens
from mmcl.results.scores import save_scores
from mmcl.training.streams import StreamSpec, parse_stream_spec, recipe_streams, train_command


def test_stream_specs_parse_and_refuse() -> None:
    assert parse_stream_spec("bone") == StreamSpec("bone", "bone")
    spec = parse_stream_spec("HDJ21:joint:model.backbone=hdgcn:model.com=21")
    assert spec == StreamSpec("HDJ21", "joint", ("model.backbone=hdgcn", "model.com=21"))
    assert str(spec) == "HDJ21:joint:model.backbone=hdgcn:model.com=21"
    with pytest.raises(ValueError, match="unknown input stream 'bones'"):
        parse_stream_spec("B:bones")
    with pytest.raises(ValueError, match=r"goes before --streams"):  # argparse gives a trailing override to --streams
        parse_stream_spec("trainer.epochs=3")
    with pytest.raises(ValueError, match="overrides look like KEY=VALUE, got 'hdgcn'"):
        parse_stream_spec("HDB:bone:hdgcn")
    with pytest.raises(ValueError, match="the label names a run directory"):
        parse_stream_spec("a/b:joint")


def test_recipes() -> None:
    four = recipe_streams("ctrgcn-4s", "ntu25")
    assert [s.label for s in four] == ["joint", "bone", "joint_motion", "bone_motion"] and not any(s.overrides for s in four)
    six = recipe_streams("mmcl-6s", "ntu25")
    assert [s.label for s in six[4:]] == ["HDJ", "HDB"] and [s.stream for s in six[4:]] == ["joint", "bone"]
    assert all(s.overrides == ("model.backbone=hdgcn",) for s in six[4:])
    hd = recipe_streams("hdgcn-6way", "ntu25")
    assert [s.label for s in hd] == ["HDJ1", "HDB1", "HDJ2", "HDB2", "HDJ21", "HDB21"]
    assert hd[5] == StreamSpec("HDB21", "bone", ("model.backbone=hdgcn", "model.com=21"))
    assert [s.label for s in recipe_streams("hdgcn-6way", "kinect20")][-2:] == ["HDJ3", "HDB3"]
    with pytest.raises(ValueError, match="unknown recipe"):
        recipe_streams("stgcn", "ntu25")


def test_train_command_carries_the_stream_overrides_after_the_shared_ones(tmp_path: Path) -> None:
    spec = parse_stream_spec("HDB2:bone:model.backbone=hdgcn:model.com=2")
    cmd = train_command("c.yaml", "data", spec, tmp_path / "run_HDB2", 1, ["trainer.epochs=3"])
    i = cmd.index("--stream")
    assert cmd[i + 1] == "bone"
    # the thread count first: an explicit trainer.num_threads among the overrides wins over it
    assert cmd[cmd.index("trainer.num_threads=1"):] == ["trainer.num_threads=1", "trainer.epochs=3", "model.backbone=hdgcn", "model.com=2"]


def test_hdgcn_presets_fuse_l2_normalised_scores_with_equal_weights(tmp_path: Path) -> None:
    """HD-GCN ensemble.py: sum over streams of score / ||score|| per sample."""
    rng = np.random.default_rng(0)
    names = [f"S001C001P001R001A{a:03d}" for a in range(1, 9)]
    labels = np.arange(8) % 4
    labs = ["HDJ1", "HDB1", "HDJ2", "HDB2", "HDJ21", "HDB21"]
    scores = [rng.normal(size=(8, 4)).astype(np.float32) for _ in labs]
    runs = []
    for lab, s in zip(labs, scores):
        save_scores(tmp_path / lab / "scores.npz", names, labels, s)
        runs.append(tmp_path / lab)
    res = ens.run_ensemble(runs, names=labs, preset="hdgcn-6way")
    assert res.normalize == "l2" and res.weights.tolist() == [1.0] * 6
    expected = sum(s.astype(np.float64) / np.linalg.norm(s.astype(np.float64), axis=1, keepdims=True) for s in scores)
    np.testing.assert_allclose(res.fused, expected, rtol=1e-6)
    assert ens.run_ensemble(runs, names=labs, preset="hdgcn-6way", normalize="none").normalize == "none"  # explicit wins
    with pytest.raises(ValueError, match="no weight for stream"):
        ens.run_ensemble(runs, names=labs, preset="hdgcn-6way-ucla")
