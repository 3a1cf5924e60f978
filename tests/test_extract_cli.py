"""``mmcl extract rgb|cnn|text`` and ``mmcl features check`` end to end through ``mmcl.cli.main``.

Small generated inputs only: tiny PyAV videos, a tiny prepared NTU folder with colour joints,
random-init ResNet-34 on a few small images, the tiny random BLIP of ``test_text_features``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("av")
torch = pytest.importorskip("torch")

from PIL import Image  # noqa: E402

from mmcl.cli import extract as extract_cmd  # noqa: E402
from mmcl.cli import main  # noqa: E402
from mmcl.formats.sample_store import write_dataset  # noqa: E402
from mmcl.modalities.composite import REPORT_FILE  # noqa: E402
from mmcl.modalities.detect import Box  # noqa: E402
from mmcl.modalities.store import FeatureStore  # noqa: E402
from mmcl.modalities.video import write_video  # noqa: E402

try:  # the tiny random BLIP of test_text_features, reused rather than rebuilt here
    from test_text_features import tiny_blip  # noqa: F401
except (ImportError, pytest.skip.Exception):

    @pytest.fixture(scope="module")
    def tiny_blip() -> Path:
        pytest.skip("transformers is not installed")

W, H, T = 96, 72, 12
TRAIN = ["S001C001P001R001A001", "S001C001P001R001A002", "S001C001P001R001A003"]
TEST = ["S001C001P002R001A001", "S001C001P002R001A002"]
NO_VIDEO = "S001C001P001R001A003"  # listed in the prepared folder, video absent
NO_PERSON = "S001C001P002R001A002"  # colour joints all zero


def _clip(path: Path, size: tuple[int, int] = (W, H)) -> np.ndarray:
    """A clip with a red rectangle moving right; returns its colour joints T×2×25×2."""
    frames, colors = [], np.zeros((T, 2, 25, 2), np.float32)
    for t in range(T):
        f = np.full((size[1], size[0], 3), 200, np.uint8)
        x = 10 + 3 * t
        f[20:60, x : x + 16] = (220, 30, 30)
        colors[t, 0, :, 0] = np.linspace(x, x + 16, 25)
        colors[t, 0, :, 1] = np.linspace(20, 60, 25)
        frames.append(f)
    write_video(path, frames, fps=10)
    return colors


@pytest.fixture(scope="module")
def ntu(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(prepared folder, video folder) with 3 train + 2 test samples."""
    root = tmp_path_factory.mktemp("ntu")
    prepared, videos = root / "xsub", root / "videos" / "s001"
    videos.mkdir(parents=True)
    rng = np.random.default_rng(0)
    samples, all_colors = [], []
    for split, names in (("train", TRAIN), ("test", TEST)):
        for name in names:
            c = _clip(videos / f"{name}_rgb.avi") if name != NO_VIDEO else _clip(root / "unused.avi")
            all_colors.append(np.zeros_like(c) if name == NO_PERSON else c)
            samples.append(rng.normal(size=(3, T, 25, 2)).astype(np.float32))
        if NO_VIDEO in names:
            assert not (videos / f"{NO_VIDEO}_rgb.avi").exists()
    names = [*TRAIN, *TEST]
    write_dataset(root, samples, np.arange(len(names)), names, dataset="ntu60", layout="ntu25", num_classes=60,
                  benchmarks={"xsub": {"train": np.arange(len(TRAIN)), "test": len(TRAIN) + np.arange(len(TEST))}},
                  colors=all_colors)
    return prepared, root / "videos"


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four small composites named like the prepared folder's samples (one sample has none)."""
    d = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(1)
    for name in [*TRAIN, *TEST][:4]:
        Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(d / f"{name}.jpg")
    (d / ".partial.jpg.1234.tmp").write_bytes(b"")  # a leftover temp file is not an image
    return d


def _mtimes(d: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in d.iterdir()}


# ---------------------------------------------------------------------------------- rgb
def test_rgb_ntu_prepared_and_resume(ntu: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    prepared, videos = ntu
    out = tmp_path / "rgb"
    argv = ["extract", "rgb", "--prepared", str(prepared), "--split", "all", "--videos", str(videos), "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "3 written, 0 skipped" in text and "missing_video=1" in text and "no_person=1" in text
    assert sorted(p.stem for p in out.glob("*.jpg")) == sorted(set(TRAIN + TEST) - {NO_VIDEO, NO_PERSON})
    with Image.open(out / f"{TRAIN[0]}.jpg") as im:
        assert im.size == (800, 320) and im.mode == "RGB"
    report = json.loads((out / REPORT_FILE).read_text())
    assert report["failures"][NO_VIDEO]["reason"] == "missing_video"
    assert report["failures"][NO_PERSON]["reason"] == "no_person"
    before = {k: v for k, v in _mtimes(out).items() if k.endswith(".jpg")}
    # resume: nothing new is written, the existing images are untouched
    assert main(argv) == 0
    assert "0 written, 3 skipped" in capsys.readouterr().out
    assert {k: v for k, v in _mtimes(out).items() if k.endswith(".jpg")} == before
    # one split only
    assert main([*argv[:4], "--split", "test", *argv[6:], "--overwrite"]) == 0
    assert "1 written, 0 skipped" in capsys.readouterr().out


def test_rgb_videos_with_detector(ntu: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    _, videos = ntu

    class FixedDetector:  # stands in for a YOLO model: one person box in every frame
        def detect(self, frame: np.ndarray) -> list[Box]:
            return [Box(20.0, 10.0, 60.0, 66.0, 0.9)]

    built: list[tuple] = []

    def fake_build(spec, model=None, config=None):
        built.append((spec, model, config))
        return FixedDetector()

    monkeypatch.setattr("mmcl.modalities.detect.build_detector", fake_build)
    out = tmp_path / "rgb"
    argv = ["extract", "rgb", "--videos", str(videos), "--pattern", "**/*.avi", "--name-suffix", "_rgb", "--detector", "yolo",
            "--detector-model", "person.pt", "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    assert built == [("yolo", "person.pt", None)]
    assert sorted(p.stem for p in out.glob("*.jpg")) == sorted(set(TRAIN + TEST) - {NO_VIDEO})
    assert "4 written" in capsys.readouterr().out
    assert main(argv) == 0 and "0 written, 4 skipped" in capsys.readouterr().out


def test_rgb_hog_no_person_and_user_errors(ntu: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    _, videos = ntu
    one = tmp_path / "one"
    one.mkdir()
    _clip(one / "clip.mp4", (160, 144))  # OpenCV's HOG needs frames >= its 64×128 window
    out = tmp_path / "rgb"
    # HOG finds no person in a red rectangle: reported per sample, exit 1 because nothing was produced
    assert main(["extract", "rgb", "--videos", str(one), "--out", str(out), "--no-progress"]) == 1
    assert "no_person=1" in capsys.readouterr().out
    assert json.loads((out / REPORT_FILE).read_text())["failure_counts"] == {"no_person": 1}
    for argv, message in [
        (["--videos", str(one), "--detector", "skeleton"], "--detector skeleton needs --prepared"),
        (["--videos", str(one), "--pattern", "*.webm"], "no videos matching '*.webm'"),
        (["--videos", str(tmp_path / "nope")], "video folder not found"),
        (["--videos", str(one), "--detector", "opencv-dnn"], "needs --detector-model"),
        (["--videos", str(one), "--prepared", str(tmp_path)], "not a prepared folder"),
    ]:
        assert main(["extract", "rgb", *argv, "--out", str(out), "--no-progress"]) == 2
        err = capsys.readouterr().err
        assert message in err and err.startswith("mmcl: error:") and err.count("\n") == 1


# ---------------------------------------------------------------------------------- cnn
@pytest.fixture
def empty_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    torch.set_num_threads(2)


def test_cnn_names_from_resume_and_check(empty_hub: None, ntu: tuple[Path, Path], images: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    prepared, _ = ntu
    store = tmp_path / "cnn"
    argv = ["extract", "cnn", "--images", str(images), "--out", str(store), "--names-from", str(prepared), "--split", "all",
            "--encoder", "resnet34", "--random-init", "--output", "pool", "--batch-size", "3", "--workers", "0",
            "--device", "cpu", "--no-progress"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "mmcl: warning:" in captured.err and "RANDOM" in captured.err
    assert "4 written" in captured.out and "1 without image" in captured.out and TEST[-1] in captured.out
    s = FeatureStore.open(store)
    assert (s.kind, s.dim, len(s)) == ("cnn_pool", 512, 4) and s.meta["weights"] == "random"
    report = json.loads((store / extract_cmd.FEATURE_REPORT).read_text())
    assert report["missing_images"] == [TEST[-1]] and report["written"] == 4
    # resume: nothing new
    assert main(argv) == 0
    assert "0 written, 4 skipped" in capsys.readouterr().out
    assert len(FeatureStore.open(store).names) == 4
    # the dataset has 5 names: check reports the one without an image, exit 1
    assert main(["features", "check", str(store), "--dataset", str(prepared)]) == 1
    out = capsys.readouterr().out
    assert "missing: 1" in out and TEST[-1] in out and "PROBLEMS" in out
    assert main(["features", "check", str(store), "--dataset", str(prepared), "--split", "train"]) == 0
    assert "OK" in capsys.readouterr().out


def test_cnn_folder_names_and_errors(empty_hub: None, images: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    base = ["extract", "cnn", "--images", str(images), "--out", str(tmp_path / "s"), "--encoder", "resnet34", "--device", "cpu", "--no-progress"]
    # no weights and no --random-init: the one-line message of build_image_encoder, nothing written
    assert main(base) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "mmcl: error: no ImageNet weights for resnet34: pass --rgb-weights PATH" in err
    assert "resnet34-b627a593.pth" in err and not (tmp_path / "s").exists()
    assert main([*base, "--rgb-weights", str(tmp_path / "nope.pth")]) == 2
    assert "--rgb-weights file not found" in capsys.readouterr().err
    assert main(["extract", "cnn", "--images", str(tmp_path / "none"), "--out", str(tmp_path / "s"), "--random-init"]) == 2
    assert "image folder not found" in capsys.readouterr().err
    # without --names-from every image of the folder (the temp leftover is ignored); --limit, then the rest
    assert main([*base, "--random-init", "--output", "logits", "--batch-size", "4", "--workers", "0", "--limit", "1"]) == 0
    assert "1 written" in capsys.readouterr().out
    assert main([*base, "--random-init", "--output", "logits", "--batch-size", "4", "--workers", "0"]) == 0
    assert "3 written, 1 skipped" in capsys.readouterr().out
    assert FeatureStore.open(tmp_path / "s").dim == 1000
    # resuming into a store of another output kind is refused
    assert main([*base, "--random-init", "--output", "pool", "--workers", "0"]) == 2
    assert "holds resnet34 logits features" in capsys.readouterr().err


# --------------------------------------------------------------------------------- text
def test_text_mirrors_library_constants() -> None:
    from mmcl.modalities import text

    assert extract_cmd.TEXT_KINDS == text.TEXT_KINDS and extract_cmd.DEFAULT_QUESTION == text.DEFAULT_QUESTION


def test_text_extract_resume_and_errors(tiny_blip: Path, images: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    blip = tiny_blip
    store = tmp_path / "text"
    argv = ["extract", "text", "--images", str(images), "--out", str(store), "--blip-model", str(blip),
            "--batch-size", "3", "--device", "cpu", "--dtype", "fp32", "--no-progress"]
    assert main(argv) == 0
    assert "4 written" in capsys.readouterr().out
    s = FeatureStore.open(store)
    assert s.kind == "answer_ids" and len(s) == 4 and s.meta["question"] == extract_cmd.DEFAULT_QUESTION
    assert len((store / "answers.tsv").read_text().splitlines()) == 4
    assert main(argv) == 0 and "0 written, 4 skipped" in capsys.readouterr().out
    assert main(["features", "check", str(store)]) == 0
    # a different question must not be mixed into the same store
    assert main([*argv, "--question", "is anyone sitting?"]) == 2
    assert "question" in capsys.readouterr().err
    assert main(["extract", "text", "--images", str(images), "--out", str(tmp_path / "t2")]) == 2
    assert "pass --blip-model DIR" in capsys.readouterr().err
    assert main(["extract", "text", "--images", str(images), "--out", str(tmp_path / "t2"), "--blip-model", str(tmp_path)]) == 2
    assert "no BLIP VQA model in" in capsys.readouterr().err


# ------------------------------------------------------------------------ features check
def test_features_check_missing_nan_and_duplicates(ntu: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    prepared, _ = ntu
    store = FeatureStore.create(tmp_path / "s", dim=3, kind="cnn_pool")
    rows = np.ones((4, 3), np.float32)
    rows[2, 1] = np.nan
    store.append(TRAIN + TEST[:1], rows)
    store.append(TRAIN[:1], np.zeros((1, 3), np.float32), on_duplicate="keep")
    assert main(["features", "check", str(tmp_path / "s"), "--dataset", str(prepared)]) == 1
    out = capsys.readouterr().out
    assert "missing: 1" in out and TEST[1] in out
    assert "non-finite: 1" in out and TRAIN[2] in out
    assert "duplicates: 1" in out
    assert main(["features", "check", str(tmp_path / "s"), "--json"]) == 1
    result = json.loads(capsys.readouterr().out)
    assert result["ok"] is False and result["nonfinite"] == [TRAIN[2]] and result["missing"] == []
    good = FeatureStore.create(tmp_path / "g", dim=2, kind="answer_probs")
    good.append(TRAIN, np.full((3, 2), 0.5, np.float32))
    assert main(["features", "check", str(tmp_path / "g"), "--dataset", str(prepared), "--split", "train"]) == 0
    assert main(["features", "check", str(tmp_path / "nope")]) == 2
    assert "not a feature store" in capsys.readouterr().err
    npz = tmp_path / "ref.npz"
    np.savez(npz, x_train=np.ones((1, 4, 150), np.float32), y_train=np.eye(2)[[0]], x_test=np.ones((1, 4, 150), np.float32), y_test=np.eye(2)[[1]])
    assert main(["features", "check", str(tmp_path / "g"), "--dataset", str(npz)]) == 2
    assert "has no sample names" in capsys.readouterr().err
