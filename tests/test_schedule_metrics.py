"""Learning-rate schedule (REFERENCE §6.2), metrics and the score file format."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mmcl.results.metrics import compute_metrics
from mmcl.results.scores import load_scores, save_scores
from mmcl.training.schedule import lr_factor_fn


def test_reference_step_schedule_ntu() -> None:
    f = lr_factor_fn(schedule="step", warmup_epochs=5, epochs=65, lr_steps=[35, 55], lr_decay=0.1)
    lrs = [0.1 * f(e) for e in range(65)]
    assert lrs[:5] == pytest.approx([0.02, 0.04, 0.06, 0.08, 0.10])
    assert lrs[5] == pytest.approx(0.1) and lrs[34] == pytest.approx(0.1)
    assert lrs[35] == pytest.approx(0.01) and lrs[54] == pytest.approx(0.01)
    assert lrs[55] == pytest.approx(0.001) and lrs[64] == pytest.approx(0.001)


def test_reference_step_schedule_mmcl_and_ucla() -> None:
    f = lr_factor_fn(schedule="step", warmup_epochs=5, epochs=110, lr_steps=[90, 100])
    assert [f(e) for e in (89, 90, 99, 100, 109)] == pytest.approx([1, 0.1, 0.1, 0.01, 0.01])
    g = lr_factor_fn(schedule="step", warmup_epochs=5, epochs=65, lr_steps=[50])
    assert [g(e) for e in (49, 50, 64)] == pytest.approx([1, 0.1, 0.1])


def test_cosine_schedule() -> None:
    f = lr_factor_fn(schedule="cosine", warmup_epochs=2, epochs=12, min_factor=0.0)
    assert f(0) == pytest.approx(0.5) and f(1) == pytest.approx(1.0) and f(2) == pytest.approx(1.0)
    assert f(7) == pytest.approx(0.5) and f(12) == pytest.approx(0.0)
    assert all(f(e) >= f(e + 1) for e in range(2, 12))


def test_metrics_hand_computed() -> None:
    scores = np.array(
        [[0.9, 0.1, 0.0], [0.2, 0.7, 0.1], [0.5, 0.4, 0.1], [0.1, 0.2, 0.7], [0.3, 0.3, 0.4], [0.0, 0.6, 0.4]]
    )
    labels = np.array([0, 1, 1, 2, 0, 2])
    m = compute_metrics(scores, labels, 3)
    assert m.top1 == pytest.approx(3 / 6)
    assert m.top5 == 1.0  # 3 classes: every label is within the top 5
    assert m.per_class_accuracy.tolist() == pytest.approx([0.5, 0.5, 0.5])
    assert m.confusion.tolist() == [[1, 0, 1], [1, 1, 0], [0, 1, 1]]
    assert m.mean_class_accuracy == pytest.approx(0.5)


def test_top5_on_many_classes() -> None:
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(50, 20))
    labels = rng.integers(0, 20, size=50)
    ranks = (scores > scores[np.arange(50), labels][:, None]).sum(axis=1)
    m = compute_metrics(scores, labels)
    assert m.top5 == pytest.approx(np.mean(ranks < 5))
    assert m.top1 == pytest.approx(np.mean(ranks == 0))


def test_scores_round_trip_without_pickle(tmp_path: Path) -> None:
    names = ["S001C001P001R001A001", "S001C001P001R001A002"]
    save_scores(tmp_path / "scores.npz", names, np.array([0, 1]), np.array([[1.0, 0.0], [0.2, 0.8]]))
    with np.load(tmp_path / "scores.npz", allow_pickle=False) as data:
        assert data["names"].dtype.kind == "U" and data["labels"].dtype == np.int64
        assert data["scores"].dtype == np.float32 and data["scores"].shape == (2, 2)
    n, lab, sc = load_scores(tmp_path / "scores.npz")
    assert n == names and lab.tolist() == [0, 1]
    assert sc.dtype == np.float32 and np.array_equal(sc, np.array([[1.0, 0.0], [0.2, 0.8]], dtype=np.float32))
    save_scores(tmp_path / "scores.csv", names, lab, sc)  # the text form committed results use: float32-exact
    n2, lab2, sc2 = load_scores(tmp_path / "scores.csv")
    assert n2 == names and np.array_equal(lab2, lab) and np.array_equal(sc2, sc)


def test_scores_reject_duplicate_names(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unique"):
        save_scores(tmp_path / "s.npz", ["a", "a"], np.array([0, 1]), np.zeros((2, 2)))
