"""Run reports: files, numbers in the Markdown, and the per-class comparison of two runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from mmcl.cli import main
from mmcl.datasets import class_names
from mmcl.results.metrics import compute_metrics
from mmcl.results.scores import save_scores
from mmcl.results.report import compare_runs, load_run, worst_confusions, write_report

K = 10  # NW-UCLA, so class names are known


def _scores(labels: np.ndarray, correct: np.ndarray, wrong_as: int | None = None) -> np.ndarray:
    """One-hot-like logits: right where ``correct``, else class ``wrong_as`` (or label+1)."""
    n = len(labels)
    s = np.zeros((n, K), dtype=np.float32)
    pred = np.where(correct, labels, (labels + 1) % K if wrong_as is None else wrong_as)
    s[np.arange(n), pred] = 5.0
    s[np.arange(n), (pred + 2) % K] = 1.0
    return s


def _make_run(root: Path, name: str, correct_per_class: list[int], *, per_class: int = 10, order_seed: int | None = None) -> Path:
    run = root / name
    names = [f"a{c + 1:02d}_s{i + 1:02d}_e00_v03" for c in range(K) for i in range(per_class)]
    labels = np.repeat(np.arange(K), per_class)
    correct = np.concatenate([np.arange(per_class) < correct_per_class[c] for c in range(K)])
    scores = _scores(labels, correct)
    order = np.arange(len(names)) if order_seed is None else np.random.default_rng(order_seed).permutation(len(names))
    save_scores(run / "scores.npz", [names[i] for i in order], labels[order], scores[order])
    val_names = [f"a{c + 1:02d}_s{i + 1:02d}_e01_v01" for c in range(K) for i in range(2)]
    val_labels = np.repeat(np.arange(K), 2)
    save_scores(run / "val_scores.npz", val_names, val_labels, _scores(val_labels, np.ones(len(val_names), bool)))
    cfg = {"name": name, "data": {"dataset": "nwucla", "stream": "bone", "val_fraction": 0.1, "batch_size": 16},
           "model": {"backbone": "ctrgcn"}, "optim": {"base_lr": 0.1, "schedule": "step"}, "trainer": {"epochs": 3, "seed": 1},
           "colearning": {"fam": True, "frm": False}}
    (run / "config.yaml").write_text(yaml.safe_dump(cfg))
    (run / "csv").mkdir()
    rows = ["epoch,step,train/loss_epoch,train/top1_epoch,val/top1,val/top5,train/lr"]
    for e, v in enumerate((0.4, 0.7, 0.6)):
        rows.append(f"{e},{10 * (e + 1)},{2.0 - e * 0.5},{0.3 + 0.2 * e},{v},{min(1.0, v + 0.2)},0.1")
    (run / "csv" / "metrics.csv").write_text("\n".join(rows) + "\n")
    return run


def test_report_files_and_numbers(tmp_path: Path) -> None:
    run = _make_run(tmp_path, "joint", [10, 9, 8, 7, 6, 5, 4, 3, 2, 1])
    md_path = write_report(run)
    out = run / "report"
    assert md_path == out / "report.md"
    for f in ("curves.png", "confusion.png", "per_class.png"):
        assert (out / f).stat().st_size > 1000
    md = md_path.read_text()
    m = load_run(run).metrics
    assert m.top1 == pytest.approx(0.55)
    assert f"| top-1 (%) | {100 * m.top1:.2f} |" in md
    assert f"| top-5 (%) | {100 * m.top5:.2f} |" in md
    assert f"| mean class accuracy (%) | {100 * m.mean_class_accuracy:.2f} |" in md
    assert "| best epoch | 2 (selected on val, top-1 70.00 %) |" in md  # from the CSV log (no results.json)
    assert "validation top-1 (%) | 100.00 (20 samples)" in md
    names = class_names("nwucla")
    assert f"| 9 | {names[9]} | 10 | 10.00 |" in md  # per-class table with class names
    # worst confusion: class 9 mistaken for class 0 in 9 of 10 samples
    assert f"| 9 {names[9]} | 0 {names[0]} | 9 | 90.00 |" in md
    assert "| co-learning | FAM |" in md and "| stream | bone |" in md


def test_worst_confusions_order() -> None:
    conf = np.array([[5, 3, 0], [1, 2, 4], [0, 0, 7]])
    assert worst_confusions(conf, 2) == [(1, 2, 4, 4 / 7), (0, 1, 3, 3 / 8)]


def test_compare_picks_largest_deltas(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = _make_run(tmp_path, "ctrgcn", [5] * K)
    b_correct = [5] * K
    b_correct[3], b_correct[7], b_correct[1] = 10, 1, 7  # +50, -40, +20 points
    b = _make_run(tmp_path, "mmcl", b_correct, order_seed=3)  # other row order: joined by name
    comp = compare_runs(load_run(a), load_run(b), top=3)
    assert comp.classes == [3, 7, 1]
    assert comp.delta[3] == pytest.approx(0.5) and comp.delta[7] == pytest.approx(-0.4)
    assert comp.fixed == 5 + 2 and comp.broken == 4
    assert comp.num_samples == 10 * K
    code = main(["report", str(a), "--compare", str(b), "--labels", "CTR-GCN", "MMCL", "--out", str(tmp_path / "rep"), "--top", "5"])
    assert code == 0 and "report.md" in capsys.readouterr().out
    md = (tmp_path / "rep" / "report.md").read_text()
    assert (tmp_path / "rep" / "comparison.png").stat().st_size > 1000
    names = class_names("nwucla")
    assert f"| 3 | {names[3]} | 10 | 50.00 | 100.00 | +50.00 |" in md
    assert f"| 7 | {names[7]} | 10 | 50.00 | 10.00 | -40.00 |" in md
    table = md.split("Classes where the runs differ most")[1]
    assert table.index("| 3 |") < table.index("| 7 |") < table.index("| 1 |")
    assert "| 0 |" not in table and "top 3 by" in md  # unchanged classes are not listed


def test_report_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(FileNotFoundError, match="run directory not found"):
        write_report(tmp_path / "missing")
    run = _make_run(tmp_path, "r", [5] * K)
    with pytest.raises(ValueError, match="--labels"):
        write_report(run, labels=["A", "B"])
    (tmp_path / "empty").mkdir()
    code = main(["report", str(tmp_path / "empty")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("mmcl: error: no scores.npz")


def test_report_of_scores_only_directory(tmp_path: Path) -> None:
    """An ensemble output (scores.npz only) still gets a report, without curves."""
    labels = np.repeat(np.arange(K), 3)
    d = tmp_path / "ens"
    save_scores(d / "scores.npz", [f"x{i}" for i in range(len(labels))], labels, _scores(labels, np.ones(len(labels), bool)))
    md = write_report(d, out_dir=tmp_path / "out").read_text()
    assert "| top-1 (%) | 100.00 |" in md and "No training curves" in md
    assert compute_metrics(_scores(labels, np.ones(len(labels), bool)), labels).top1 == 1.0
