"""Score fusion: alignment by sample name, clear refusals, fixed weights, weights fitted on validation only."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

import mmcl.results.ensemble as ens
from mmcl.cli import main
from mmcl.datasets.splits import carve_validation
import mmcl.results.scores as sc
from mmcl.results.scores import load_scores, save_scores

K = 6


def _streams(n: int = 60, seed: int = 0) -> tuple[list[str], np.ndarray, list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    names = [f"S001C001P{p:03d}R001A{a:03d}" for p in range(1, n // K + 1) for a in range(1, K + 1)]
    labels = np.array([int(x[-3:]) - 1 for x in names], dtype=np.int64)
    scores = [rng.normal(size=(len(names), K)).astype(np.float32) for _ in range(3)]
    for s, strength in zip(scores, (1.5, 1.0, 0.5)):
        s[np.arange(len(names)), labels] += strength
    return names, labels, scores


def _run(root: Path, name: str, names: list[str], labels: np.ndarray, scores: np.ndarray, order: np.ndarray | None = None) -> Path:
    run = root / name
    idx = np.arange(len(names)) if order is None else order
    save_scores(run / "scores.npz", [names[i] for i in idx], labels[idx], scores[idx])
    return run


def test_alignment_by_name_ignores_row_order(tmp_path: Path) -> None:
    names, labels, scores = _streams()
    rng = np.random.default_rng(1)
    aligned = [_run(tmp_path / "a", f"s{i}", names, labels, s) for i, s in enumerate(scores)]
    shuffled = [_run(tmp_path / "b", f"s{i}", names, labels, s, rng.permutation(len(names))) for i, s in enumerate(scores)]
    w = [0.5, 0.3, 0.2]
    r1 = ens.run_ensemble(aligned, weights=w, out_dir=tmp_path / "o1")
    r2 = ens.run_ensemble(shuffled, weights=w, out_dir=tmp_path / "o2")
    by_name1 = dict(zip(r1.names, r1.fused))
    by_name2 = dict(zip(r2.names, r2.fused))
    assert by_name1.keys() == by_name2.keys()
    for n in names:
        np.testing.assert_allclose(by_name1[n], by_name2[n], rtol=1e-12)
    assert r1.fused_metrics.top1 == r2.fused_metrics.top1
    n2, l2, s2 = load_scores(tmp_path / "o2" / "scores.npz")
    assert dict(zip(n2, l2.tolist())) == dict(zip(names, labels.tolist()))


def test_fixed_weights_equal_hand_computation(tmp_path: Path) -> None:
    names, labels, scores = _streams()
    runs = [_run(tmp_path, f"s{i}", names, labels, s) for i, s in enumerate(scores[:2])]
    res = ens.run_ensemble(runs, names=["J", "B"], weights=[0.6, 0.4], out_dir=tmp_path / "out")
    expected = 0.6 * scores[0].astype(np.float64) + 0.4 * scores[1].astype(np.float64)
    np.testing.assert_allclose(res.fused, expected, rtol=1e-12)
    assert res.fused_metrics.top1 == pytest.approx(float((expected.argmax(1) == labels).mean()))
    payload = json.loads((tmp_path / "out" / "ensemble.json").read_text())
    assert payload["weights"] == {"J": 0.6, "B": 0.4}
    assert payload["fused"]["top1"] == pytest.approx(res.fused_metrics.top1)
    assert set(payload["streams"]) == {"J", "B"}
    _, _, fused = load_scores(tmp_path / "out" / "scores.npz")
    np.testing.assert_allclose(fused, expected, rtol=1e-6)
    # softmax and l2 normalisation are applied per sample before the weighted sum
    res = ens.run_ensemble(runs, weights=[1.0, 1.0], normalize="l2")
    unit = [s / np.linalg.norm(s.astype(np.float64), axis=1, keepdims=True) for s in scores[:2]]
    np.testing.assert_allclose(res.fused, unit[0] + unit[1], rtol=1e-9)
    res = ens.run_ensemble(runs, weights=[1.0, 1.0], normalize="softmax")
    np.testing.assert_allclose(res.fused.sum(axis=1), 2.0, rtol=1e-9)


def test_presets_and_weights_files_match_stream_names(tmp_path: Path) -> None:
    names, labels, scores = _streams()
    runs = [_run(tmp_path, f"s{i}", names, labels, s) for i, s in enumerate(scores[:2])]
    res = ens.run_ensemble(runs, names=["joint", "B"], preset="ctrgcn-2s")
    assert res.weights.tolist() == [1.0, 1.0]
    wf = tmp_path / "w.yaml"
    wf.write_text("weights:\n  B: 0.25\n  J: 0.75\n")
    res = ens.run_ensemble(runs, names=["J", "B"], weights_file=wf, out_dir=tmp_path / "o")
    assert res.weights.tolist() == [0.75, 0.25]
    # an ensemble.json is itself a weights file
    res2 = ens.run_ensemble(runs, names=["J", "B"], weights_file=tmp_path / "o" / "ensemble.json")
    assert res2.weights.tolist() == [0.75, 0.25]
    with pytest.raises(ValueError, match="no weight for stream"):
        ens.run_ensemble(runs, names=["J", "JM"], weights_file=wf)
    with pytest.raises(ValueError, match=r"3 weight\(s\) for 2 stream"):
        ens.run_ensemble(runs, weights=[0.6, 0.6, 0.4])


def test_mismatched_sets_raise_or_intersect(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    names, labels, scores = _streams()
    a = _run(tmp_path, "a", names, labels, scores[0])
    b = _run(tmp_path, "b", names[:-3], labels[:-3], scores[1][:-3])
    with pytest.raises(ValueError, match=r"lacks 3 of 60 samples \(first: 'S001C001P010R001A004'") as err:
        ens.run_ensemble([a, b])
    assert "--allow-partial" in str(err.value) and "\n" not in str(err.value)
    with caplog.at_level(logging.WARNING, logger="mmcl"):
        res = ens.run_ensemble([a, b], allow_partial=True)
    assert len(res.names) == 57 and "common to all inputs" in caplog.text
    assert res.dropped == {"a": 3, "b": 0}


def test_label_disagreement_and_duplicates_raise(tmp_path: Path) -> None:
    names, labels, scores = _streams()
    a = _run(tmp_path, "a", names, labels, scores[0])
    bad = labels.copy()
    bad[7] = (bad[7] + 1) % K
    b = _run(tmp_path, "b", names, bad, scores[1])
    with pytest.raises(ValueError, match=f"labels disagree for sample '{names[7]}'"):
        ens.run_ensemble([a, b])
    # duplicate names (save_scores refuses them, so write the file by hand)
    dup = tmp_path / "dup" / "scores.npz"
    dup.parent.mkdir()
    np.savez(dup, names=np.array(names[:5] + names[:1]), labels=labels[:6], scores=scores[0][:6])
    with pytest.raises(ValueError, match=f"duplicate sample name.*'{names[0]}'"):
        ens.run_ensemble([a, dup.parent])
    c = tmp_path / "c"
    save_scores(c / "scores.npz", names, labels, scores[2][:, :4])
    with pytest.raises(ValueError, match="different numbers of classes"):
        ens.run_ensemble([a, c])
    with pytest.raises(FileNotFoundError, match="no scores.npz"):
        sc.load_score_set(tmp_path)


def _val_vs_test_runs(root: Path) -> list[Path]:
    """Stream A is right on validation and wrong on test; stream B the opposite."""
    rng = np.random.default_rng(5)
    n = 48
    val_names = [f"v{i:03d}" for i in range(n)]
    test_names = [f"t{i:03d}" for i in range(n)]
    y = rng.integers(0, K, n)

    def good() -> np.ndarray:
        s = rng.normal(scale=0.1, size=(n, K)).astype(np.float32)
        s[np.arange(n), y] += 3.0
        return s

    def bad() -> np.ndarray:
        s = rng.normal(scale=0.1, size=(n, K)).astype(np.float32)
        s[np.arange(n), (y + 1) % K] += 3.0
        return s

    runs = []
    for stream, (val_s, test_s) in {"A": (good(), bad()), "B": (bad(), good())}.items():
        run = root / stream
        save_scores(run / "val_scores.npz", val_names, y, val_s)
        save_scores(run / "scores.npz", test_names, y, test_s)
        runs.append(run)
    return runs


def test_fit_uses_only_validation_scores(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runs = _val_vs_test_runs(tmp_path)
    opened: list[str] = []
    real = sc.load_scores

    def spy(path):  # every score file the module reads
        opened.append(Path(path).name)
        return real(path)

    monkeypatch.setattr(sc, "load_scores", spy)
    fit = ens.fit_weights_from_runs(runs, ["A", "B"])
    assert opened == ["val_scores.npz", "val_scores.npz"]  # the fit never opened a test file
    assert fit.weights[0] > 0.9 and fit.weights.sum() == pytest.approx(1.0) and (fit.weights >= 0).all()
    assert fit.val_top1 == 1.0
    # the whole command: weights follow validation (A) although B is the better stream on test
    res = ens.run_ensemble(runs, names=["A", "B"], fit="val", out_dir=tmp_path / "out")
    assert res.weights[0] > res.weights[1]
    assert res.stream_metrics[1].top1 == 1.0 and res.fused_metrics.top1 < 0.5
    payload = json.loads((tmp_path / "out" / "ensemble.json").read_text())
    assert payload["weight_source"] == "fit:val" and payload["fit"]["split"] == "val"
    # deterministic
    assert np.array_equal(ens.fit_weights_from_runs(runs, ["A", "B"]).weights, fit.weights)
    # works without any test file present: it is never needed for fitting
    for run in runs:
        (run / "scores.npz").unlink()
    assert np.array_equal(ens.fit_weights_from_runs(runs, ["A", "B"]).weights, fit.weights)


def test_fit_refuses_test_scores_and_leaks(tmp_path: Path) -> None:
    runs = _val_vs_test_runs(tmp_path)
    test_sets = [sc.load_score_set(r, split="test") for r in runs]
    with pytest.raises(ValueError, match="only be fitted on validation"):
        ens.fit_weights(test_sets)
    # resolve_score_path never maps a val request to the test file
    assert sc.resolve_score_path(runs[0], "val").name == "val_scores.npz"
    assert sc.resolve_score_path(runs[0] / "scores.npz", "val").name == "val_scores.npz"
    # a run without validation scores cannot be fitted
    lone = tmp_path / "lone"
    save_scores(lone / "scores.npz", ["x", "y"], np.array([0, 1]), np.eye(2, K, dtype=np.float32))
    with pytest.raises(FileNotFoundError, match="data.val_fraction"):
        ens.run_ensemble([runs[0], lone], fit="val")
    # validation samples that are also test samples are refused
    leak = tmp_path / "leak"
    names, y, s = load_scores(runs[0] / "val_scores.npz")
    save_scores(leak / "val_scores.npz", names, y, s)
    save_scores(leak / "scores.npz", names, y, s)
    with pytest.raises(ValueError, match="overlap"):
        ens.run_ensemble([leak], fit="val")


def test_carved_validation_is_disjoint_from_test_and_train() -> None:
    names, labels = [], []
    for setup in (1, 2):  # NTU-style cross-subject: even performers train, odd test
        for p in range(1, 9):
            for a in range(1, 5):
                for c in (1, 2, 3):
                    names.append(f"S{setup:03d}C{c:03d}P{p:03d}R001A{a:03d}")
                    labels.append(a - 1)
    labels_arr = np.array(labels)
    train_mask = np.array([int(n[9:12]) % 2 == 0 for n in names])
    train_names = [n for n, m in zip(names, train_mask) if m]
    test_names = {n for n, m in zip(names, train_mask) if not m}
    tr, va = carve_validation(train_names, labels_arr[train_mask], 0.2, seed=0)
    val_set = {train_names[i] for i in va}
    rest = {train_names[i] for i in tr}
    assert val_set and rest
    assert not val_set & test_names and not val_set & rest
    assert val_set | rest == set(train_names)


def test_cli_ensemble_table_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    names, labels, scores = _streams()
    runs = [str(_run(tmp_path, f"s{i}", names, labels, s)) for i, s in enumerate(scores)]
    code = main(["ensemble", *runs, "--names", "J", "B", "JM", "--preset", "ctrgcn-3s", "--out", str(tmp_path / "o")])
    out, _ = capsys.readouterr()
    assert code == 0 and "fused" in out and "JM" in out and "preset:ctrgcn-3s" in out
    assert (tmp_path / "o" / "ensemble.json").is_file() and (tmp_path / "o" / "scores.npz").is_file()
    short = tmp_path / "short"
    save_scores(short / "scores.npz", names[:10], labels[:10], scores[0][:10])
    code = main(["ensemble", runs[0], str(short)])
    _, err = capsys.readouterr()
    lines = [x for x in err.splitlines() if x.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("mmcl: error: score files cover different samples")
    code = main(["ensemble", runs[0], str(tmp_path / "nope")])
    _, err = capsys.readouterr()
    assert code == 2 and "score input not found" in err


def test_text_score_files_round_trip_and_fuse_like_npz(tmp_path: Path) -> None:
    """Committed results keep scores as CSV text; they load float32-exact and fuse exactly as the npz."""
    names, labels, scores = _streams()
    npz_runs, csv_runs = [], []
    for i, s in enumerate(scores):
        npz_runs.append(_run(tmp_path / "npz", f"s{i}", names, labels, s))
        run = tmp_path / "csv" / f"s{i}"
        save_scores(run / "scores.csv", names, labels, s)
        csv_runs.append(run)
        n2, l2, s2 = load_scores(run / "scores.csv")
        assert n2 == names and np.array_equal(l2, labels) and np.array_equal(s2, s)  # bit-exact float32
    a = ens.run_ensemble(npz_runs, weights=[0.6, 0.6, 0.4])
    b = ens.run_ensemble(csv_runs, weights=[0.6, 0.6, 0.4])
    np.testing.assert_array_equal(a.fused, b.fused)
    # a truncated text file names the file and the line
    path = csv_runs[0] / "scores.csv"
    text = path.read_text()
    path.write_text(text[: text.rindex(",")])
    with pytest.raises(ValueError, match=r"scores\.csv: line 61 has 7 fields, expected 8"):
        load_scores(path)
    path.write_text("just,some\ntext\n")
    with pytest.raises(ValueError, match="not a valid mmcl score file"):
        load_scores(path)
    with pytest.raises(ValueError, match="must not contain ','"):
        save_scores(tmp_path / "bad.csv", ["a,b"], np.array([0]), np.zeros((1, 2)))


def test_collect_run_copy_is_readable_by_ensemble_and_report(tmp_path: Path) -> None:
    import importlib.util

    from mmcl.results.report import load_run

    spec = importlib.util.spec_from_file_location("collect_run", Path(__file__).parents[1] / "benchmarks" / "collect_run.py")
    collect_run = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(collect_run)
    names, labels, scores = _streams()
    run = _run(tmp_path, "run", names, labels, scores[0])
    (run / "results.json").write_text(json.dumps({"train_seconds": 1.0}))
    (run / "csv").mkdir()
    (run / "csv" / "metrics.csv").write_text("epoch,step,val/top1\n0,10,0.5\n")
    (run / "checkpoints").mkdir()
    (run / "checkpoints" / "last.ckpt").write_bytes(b"weights")
    dest = tmp_path / "collected"
    written = collect_run.collect(run, dest)
    assert set(written) == {"results.json", "metrics.csv", "scores.csv"}
    assert sorted(p.name for p in dest.iterdir()) == ["metrics.csv", "results.json", "scores.csv"]  # no weights
    res = ens.run_ensemble([dest], weights=[1.0])
    assert res.fused_metrics.top1 == pytest.approx(float((scores[0].argmax(1) == labels).mean()))
    loaded = load_run(dest)
    assert loaded.csv_path == dest / "metrics.csv" and loaded.results["train_seconds"] == 1.0


def test_ensemble_json_only_folder_names_the_command_that_rebuilds_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Committed ensembles keep ensemble.json but no binary scores; the error must say how to rebuild them."""
    names, labels, scores = _streams()
    monkeypatch.chdir(tmp_path)
    runs = [_run(Path("res"), f"s{i}", names, labels, s) for i, s in enumerate(scores[:2])]
    res = ens.run_ensemble(runs, names=["J", "B"], weights=[0.6, 0.4], out_dir=Path("res/ens"))
    Path("res/ens/scores.npz").unlink()
    with pytest.raises(FileNotFoundError, match="only an ensemble.json") as info:
        sc.load_score_set(Path("res/ens"))
    command = str(info.value).split("`")[1].split()
    assert command[:2] == ["mmcl", "ensemble"]
    assert main(command[1:]) == 0  # the suggested command runs as given and reproduces the fused scores
    out = Path(command[command.index("--out") + 1])
    n2, _, fused = load_scores(out / "scores.npz")
    np.testing.assert_allclose(fused, res.fused, rtol=1e-6)
    assert n2 == res.names
