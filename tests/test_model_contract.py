"""One model contract from training to deployment, checked by comparing paths, not by reading code.

For every stream and both layouts a tiny model is trained through the real training code on raw
files (synthetic NTU ``.skeleton`` files prepared with ``mmcl prepare ntu``, NW-UCLA-named JSON
files read directly); then the same test samples are scored five ways and must agree per sample
name (max |Δp| ≤ 1e-4):

1. the training run's own test pass (``scores.npz``),
2. ``mmcl test --checkpoint best.ckpt --data PATH`` with no config (everything from the card),
3. ``mmcl predict`` on the raw files with the checkpoint,
4. ``mmcl predict`` with the exported folder (safetensors, torch runtime),
5. ``mmcl predict --runtime onnx`` and ``--runtime torchscript`` (graphs that apply the stream).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mmcl.checkpoints import open_checkpoint
from mmcl.config import Config
from mmcl.training.fit import train
from mmcl.prepare.ntu import prepare_ntu
from mmcl.prepare.ntu_synth import random_sample, sample_name, write_skeleton
from mmcl.skeleton.streams import STREAMS

from cli_runner import run  # noqa: E402  (shared in-process CLI runner)

TOLERANCE = 1e-4  # max |Δ probability| between any two paths (issue: one model contract)
WINDOW = 16  # a short test window keeps the tiny trainings fast; the card carries it
NWUCLA_ACTIONS = (1, 2, 3, 4, 5, 6, 8, 9, 11, 12)  # the 10 NW-UCLA classes (REFERENCE §3.3)


def _softmax(scores: np.ndarray) -> np.ndarray:
    e = np.exp(scores - scores.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _scores_by_name(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as s:
        return dict(zip(s["names"].tolist(), _softmax(s["scores"].astype(np.float64))))


@pytest.fixture(scope="module")
def ntu_data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    """Raw NTU-120 files (one and two actors; P001 = X-Sub train, P003 = test) and their X-Sub folder."""
    root = tmp_path_factory.mktemp("ntu")
    rng = np.random.default_rng(0)
    test_files = []
    (root / "raw").mkdir()
    for performer in (1, 3):
        for action in (1, 2, 3):
            for rep, bodies in ((1, 1), (2, 2)):
                path = write_skeleton(root / "raw" / f"{sample_name(1, 1, performer, rep, action)}.skeleton", random_sample(rng, int(rng.integers(20, 40)), bodies))
                if performer == 3:
                    test_files.append(path)
    prepare_ntu([root / "raw"], "ntu120", root / "prepared", workers=1, progress=False)
    return root / "prepared" / "xsub", sorted(test_files)


@pytest.fixture(scope="module")
def nwucla_data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    """NW-UCLA-named JSON files: views 1 and 2 train, view 3 test (cross-view protocol)."""
    root = tmp_path_factory.mktemp("all_sqe")
    rng = np.random.default_rng(1)
    test_files = []
    for action in NWUCLA_ACTIONS[:4]:
        for view in (1, 2, 3):
            path = root / f"a{action:02d}_s01_e00_v{view:02d}.json"
            frames = (rng.normal(size=(int(rng.integers(12, 30)), 20, 3)) * 0.3 + np.linspace(0, 1, 20)[None, :, None]).tolist()
            path.write_text(json.dumps({"file_name": path.stem, "skeletons": frames}))
            if view == 3:
                test_files.append(path)
    return root, sorted(test_files)


def _train(data: Path, work_dir: Path, layout: str, stream: str, backbone: str = "ctrgcn") -> Path:
    cfg = Config()
    cfg.model.backbone = backbone
    d = cfg.data
    d.path, d.stream, d.window, d.batch_size, d.test_batch_size, d.num_workers = str(data), stream, WINDOW, 4, 5, 0
    if layout == "ntu25":
        d.dataset, d.layout, d.num_classes, d.num_persons, d.transform = "ntu120", "ntu25", 120, 2, "ntu"
    else:
        d.dataset, d.layout, d.num_classes, d.num_persons, d.transform = "nwucla", "kinect20", 10, 1, "ucla"
    cfg.model.base_channels = 64 if backbone == "ctrs-gcn" else 8  # ctrs-gcn has the reference width only
    cfg.optim.warmup_epochs = 0
    cfg.trainer.epochs, cfg.trainer.work_dir, cfg.trainer.progress, cfg.trainer.seed = 1, str(work_dir), False, 3
    train(cfg.validate())
    return work_dir


def _predict(checkpoint: Path, files: list[Path], capsys: pytest.CaptureFixture[str], *extra: str) -> dict[str, np.ndarray]:
    code, out, err = run(["predict", "--checkpoint", str(checkpoint), "--json", "--top", "1000", *extra, *map(str, files)], capsys)
    assert code == 0, err
    probs = {}
    for line in out.splitlines():
        obj = json.loads(line)
        p = np.zeros(len(obj["top"]))
        for t in obj["top"]:
            p[t["label"]] = t["score"]
        probs[Path(obj["file"]).stem] = p
    return probs


def _max_diff(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> float:
    assert sorted(a) == sorted(b)
    return max(float(np.abs(a[k] - b[k]).max()) for k in a)


# A covering set rather than the full product: every stream on NTU-25 (two persons, the ntu transform);
# on Kinect-20 the streams whose inputs depend on the layout (its bone pairs) with the ucla transform,
# and its joint stream through CTRS-GCN; each backbone at least once.
CONTRACT_CASES = [("ntu25", stream, "ctrgcn") for stream in STREAMS] + [
    ("kinect20", "bone", "ctrgcn"),
    ("kinect20", "bone_motion", "ctrgcn"),
    ("ntu25", "joint_motion", "hdgcn"),  # HD-GCN: its hierarchy centre travels in the card; kNN ops in the graphs
    ("kinect20", "bone", "hdgcn"),
    ("kinect20", "joint", "ctrs-gcn"),
]


@pytest.mark.slow
@pytest.mark.parametrize("layout, stream, backbone", CONTRACT_CASES)
def test_every_path_gives_the_training_runs_scores(
    layout: str, stream: str, backbone: str, ntu_data, nwucla_data, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, raw_test = ntu_data if layout == "ntu25" else nwucla_data
    run_dir = _train(data, tmp_path / "run", layout, stream, backbone)
    best = run_dir / "checkpoints" / "best.ckpt"
    card = open_checkpoint(best).card
    assert (card.input.layout, card.input.stream, card.input.window, card.source) == (layout, stream, WINDOW, "card")
    assert card.backbone == backbone and card.com == ({"ntu25": 21, "kinect20": 3}[layout] if backbone == "hdgcn" else None)
    assert card.training["epochs_done"] == 1 and "val/top1" in card.training["eval_metrics"]

    trained = _scores_by_name(run_dir / "scores.npz")
    assert sorted(trained) == sorted(p.stem for p in raw_test)

    code, out, err = run(["test", "--checkpoint", str(best), "--data", str(data), "--out", str(tmp_path / "test")], capsys)
    assert code == 0, err
    assert f"{stream.replace('_', '-')}-stream" in out
    assert _max_diff(_scores_by_name(tmp_path / "test" / "scores.npz"), trained) <= TOLERANCE

    assert _max_diff(_predict(best, raw_test, capsys), trained) <= TOLERANCE

    exported = tmp_path / "exported"
    code, _, err = run(["export", "--checkpoint", str(best), "--out", str(exported), "--onnx", "--onnx-exporter", "torchscript"], capsys)
    assert code == 0, err
    assert _max_diff(_predict(exported, raw_test, capsys), trained) <= TOLERANCE
    assert _max_diff(_predict(exported, raw_test, capsys, "--runtime", "torchscript"), trained) <= TOLERANCE
    pytest.importorskip("onnxruntime")
    assert _max_diff(_predict(exported, raw_test, capsys, "--runtime", "onnx", "--batch-size", "3"), trained) <= TOLERANCE


@pytest.mark.slow
def test_test_command_explains_a_data_mismatch(ntu_data, nwucla_data, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An NW-UCLA model on NTU data (and the reverse) is refused in one line that names both sides."""
    run_dir = _train(nwucla_data[0], tmp_path / "ucla", "kinect20", "bone")
    capsys.readouterr()  # the training's own output
    code, _, err = run(["test", "--checkpoint", str(run_dir / "checkpoints" / "best.ckpt"), "--data", str(ntu_data[0])], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "this checkpoint is a 10-class Kinect-20 bone-stream ctrgcn model (1 person); the data" in err
    assert "is NTU-25 with 120 classes and 2 persons" in err
    # a config that says otherwise does not change the model's input: the card wins, with a note
    code, out, err = run(["test", "--checkpoint", str(run_dir / "checkpoints" / "best.ckpt"), "--data", str(nwucla_data[0]),
                          "-c", str(Path(__file__).parents[1] / "configs" / "nwucla.yaml"), "--out", str(tmp_path / "t")], capsys)
    assert code == 0 and "using the checkpoint's input (Kinect-20 bone stream" in err
    assert _max_diff(_scores_by_name(tmp_path / "t" / "scores.npz"), _scores_by_name(run_dir / "scores.npz")) <= TOLERANCE


@pytest.mark.realdata
@pytest.mark.slow
def test_real_nwucla_bone_model_predicts_its_training_scores(nwucla_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A small bone-stream model on real NW-UCLA: predict on the 464 raw view-3 files = its run's scores."""
    cfg = Config()
    d = cfg.data
    d.path, d.dataset, d.layout, d.num_classes, d.num_persons = str(nwucla_dir), "nwucla", "kinect20", 10, 1
    d.transform, d.window, d.stream, d.batch_size, d.test_batch_size, d.num_workers = "ucla", 52, "bone", 16, 64, 0
    cfg.model.base_channels = 8
    cfg.optim.warmup_epochs = 0
    cfg.trainer.epochs, cfg.trainer.limit_train_batches, cfg.trainer.progress = 1, 8, False
    cfg.trainer.work_dir, cfg.trainer.seed = str(tmp_path / "run"), 5
    train(cfg.validate())
    trained = _scores_by_name(tmp_path / "run" / "scores.npz")
    view3 = sorted(nwucla_dir.glob("*_v03.json"))
    assert len(view3) == len(trained) == 464
    probs = _predict(tmp_path / "run" / "checkpoints" / "best.ckpt", view3, capsys, "--batch-size", "64")
    assert _max_diff(probs, trained) <= TOLERANCE
    top1 = {k: int(np.argmax(v)) for k, v in trained.items()}
    assert all(int(np.argmax(probs[k])) == top1[k] for k in trained)


@pytest.mark.slow
def test_export_on_a_base_install_without_onnx(nwucla_data, tmp_path: Path) -> None:
    """Without the onnx package (base install) export writes safetensors + TorchScript and says which extra adds ONNX."""
    run_dir = _train(nwucla_data[0], tmp_path / "run", "kinect20", "joint_motion")
    blocker = tmp_path / "site"  # shadows the ONNX packages with ones that cannot be imported, as if absent
    for name in ("onnx", "onnxscript", "onnxruntime"):
        (blocker / name).mkdir(parents=True)
        (blocker / name / "__init__.py").write_text(f"raise ModuleNotFoundError(\"No module named '{name}'\")\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(blocker), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "mmcl", "export", "--checkpoint", str(run_dir / "checkpoints" / "best.ckpt"), "--out", str(tmp_path / "out")]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "ONNX skipped: the onnx package is not installed (pip install 'mmcl[export]')" in proc.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["model.json", "model.safetensors", "model.torchscript.pt"]
    proc = subprocess.run([*cmd, "--onnx"], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [
        "mmcl: error: --onnx needs the onnx package: pip install 'mmcl[export]'  (MMCL_DEBUG=1 shows the traceback)"
    ]
