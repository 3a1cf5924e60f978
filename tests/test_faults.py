"""Faults a user's machine produces (kill -9, full disk, bad files, two runs at once, outputs that
cannot be written): each test reproduces one, and fails on the code before the fix."""

from __future__ import annotations

import errno
import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_runner import run  # noqa: E402  (shared in-process CLI runner)

import mmcl.io
from mmcl.checkpoints import ModelCard
from mmcl.datasets.base import DataError
from mmcl.datasets.pipeline import InputSpec
from mmcl.datasets.prepared import PreparedSource
from mmcl.export import export_backbone
from mmcl.formats.checkpoint_file import CheckpointError
from mmcl.formats.skeleton_file import SkeletonFileError, read_skeleton_file
from mmcl.io import COMMIT_JOURNAL, LockedError, exclusive_lock, pending_commit
from mmcl.models import build_backbone
from mmcl.predict import load_model, predict_files
from mmcl.prepare.ntu import PREPARE_LOCK, prepare_ntu
from mmcl.prepare.ntu_synth import random_sample, sample_name, write_skeleton
from mmcl.prepare.nwucla import prepare_nwucla

NTU_CARD = ModelCard("ctrgcn", 60, InputSpec("ntu25", 2, window=16), dataset="ntu60", base_channels=8)


def _disk_full(*_: object, **__: object) -> None:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _digest(folder: Path) -> dict[str, str]:
    """Every file below ``folder`` (cache and lock excluded) -> sha256 of its bytes."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and ".cache" not in p.parts and not p.name.endswith(".lock")
    }


def _temporaries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.name.endswith(mmcl.io.TMP_SUFFIX))


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_backbone(num_classes=60, layout="ntu25", num_persons=2, base_channels=8).eval()


# --------------------------------------------------------------------------- export


def test_export_killed_by_a_full_disk_keeps_the_old_export_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "export"
    export_backbone(_model(), out, card=NTU_CARD, formats=("safetensors", "torchscript"))
    before = _digest(out)
    newer = _model()
    with torch.no_grad():
        next(newer.parameters()).add_(1.0)
    monkeypatch.setattr(torch.jit, "save", _disk_full)  # the last big file fails, after the weights were written
    with pytest.raises(OSError, match="No space left"):
        export_backbone(newer, out, card=NTU_CARD, formats=("safetensors", "torchscript"))
    assert _digest(out) == before  # not a new model.safetensors beside the old graph and description
    assert _temporaries(tmp_path) == []


def test_export_replaces_the_folder_as_a_whole_and_refuses_foreign_files(tmp_path: Path) -> None:
    out = tmp_path / "export"
    export_backbone(_model(), out, card=NTU_CARD, formats=("safetensors", "torchscript"))
    export_backbone(_model(), out, card=NTU_CARD, formats=("safetensors",))
    assert sorted(p.name for p in out.iterdir()) == ["model.json", "model.safetensors"]  # no stale graph
    (out / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="notes.txt"):
        export_backbone(_model(), out, card=NTU_CARD, formats=("safetensors",))
    assert (out / "notes.txt").read_text() == "mine"


def test_export_refuses_nan_weights_and_a_second_writer(tmp_path: Path) -> None:
    model = _model()
    with torch.no_grad():
        next(model.parameters())[0] = float("nan")
    with pytest.raises(CheckpointError, match="NaN or infinite"):
        export_backbone(model, tmp_path / "nan", card=NTU_CARD, formats=("safetensors",))
    assert not (tmp_path / "nan").exists()
    with exclusive_lock(tmp_path / ".busy.lock"):
        with pytest.raises(LockedError, match="another process"):
            export_backbone(_model(), tmp_path / "busy", card=NTU_CARD, formats=("safetensors",))


# --------------------------------------------------------------------------- prepare ntu


def _corpus(root: Path, n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    names = []
    for i in range(n):
        name = sample_name(1, 1 + i % 3, 1 + i % 4, 1, 1 + i % 5)
        if name in names:
            continue
        write_skeleton(root / f"{name}.skeleton", random_sample(rng, int(rng.integers(15, 30)), 1))
        names.append(name)
    return names


def test_prepare_failing_late_keeps_every_old_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    raw, out = tmp_path / "raw", tmp_path / "out"
    _corpus(raw, 8)
    prepare_ntu([raw], "ntu60", out, workers=1, progress=False, npz=True)
    before = _digest(out)
    _corpus(raw, 12, seed=1)  # new data, then the disk fills while the second npz file is written
    from mmcl.prepare import ntu

    real = ntu.atomic_savez
    calls = []

    def savez(path: Path, **arrays: object) -> Path:
        if str(path).endswith("_CV.npz"):
            _disk_full()
        calls.append(path)
        return real(path, **arrays)

    monkeypatch.setattr(ntu, "atomic_savez", savez)
    with pytest.raises(OSError, match="No space left"):
        prepare_ntu([raw], "ntu60", out, workers=1, progress=False, npz=True)
    assert any(str(p).endswith("_CS.npz") for p in calls)  # xsub and its npz were already written
    assert _digest(out) == before  # ... but into the staging folder: xsub, xview, npz and report all old
    assert _temporaries(out) == []  # the staging folder went with the failure


def test_prepare_killed_while_moving_outputs_is_refused_by_readers_and_finished_by_the_next_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw, out, fresh = tmp_path / "raw", tmp_path / "out", tmp_path / "fresh"
    _corpus(raw, 8)
    prepare_ntu([raw], "ntu60", out, workers=1, progress=False)
    _corpus(raw, 12, seed=1)
    real_rename, moved = os.rename, []

    def rename(a: object, b: object) -> None:
        if len(moved) == 3:  # old xsub out, new xsub in, old xview out: killed before the new xview
            raise KeyboardInterrupt
        moved.append((a, b))
        real_rename(a, b)

    monkeypatch.setattr(os, "rename", rename)
    with pytest.raises(KeyboardInterrupt):
        prepare_ntu([raw], "ntu60", out, workers=1, progress=False, keep_cache=True)
    monkeypatch.setattr(os, "rename", real_rename)
    assert pending_commit(out) and (out / COMMIT_JOURNAL).is_file()
    with pytest.raises(DataError, match="being replaced by `mmcl prepare`"):
        PreparedSource(out / "xsub", "train")
    report = prepare_ntu([raw], "ntu60", out, workers=1, progress=False)
    assert report.reused == report.samples and report.parsed == 0  # the cache was complete
    prepare_ntu([raw], "ntu60", fresh, workers=1, progress=False)
    for f in ("samples/joints.npy", "samples/names.txt", "samples/colors.npy", "xsub/train.npy", "xview/test.npy"):
        assert (out / f).read_bytes() == (fresh / f).read_bytes()
    assert not pending_commit(out) and _temporaries(out) == []
    assert len(PreparedSource(out / "xview", "train")) == len(PreparedSource(fresh / "xview", "train"))


def test_prepare_is_locked_and_removes_what_a_killed_run_left(tmp_path: Path) -> None:
    raw, out = tmp_path / "raw", tmp_path / "out"
    _corpus(raw, 6)
    with exclusive_lock(out / PREPARE_LOCK):
        with pytest.raises(LockedError, match="another mmcl prepare"):
            prepare_ntu([raw], "ntu60", out, workers=1, progress=False)
    cache = out / ".cache" / "ntu-f1-reference"
    leftovers = [out / ".x_test.npy.abc123.tmp", out / ".staging.zz.tmp" / "x.npy", cache / ".shard-1.npz.q.tmp"]
    for p in leftovers:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"partial")
    prepare_ntu([raw], "ntu60", out, workers=1, progress=False, keep_cache=True)
    assert _temporaries(out) == []
    assert len(PreparedSource(out / "xsub", "train")) + len(PreparedSource(out / "xsub", "test")) == 6


def test_prepare_reports_a_file_name_that_is_not_utf8(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    raw, out = tmp_path / "raw", tmp_path / "out"
    _corpus(raw, 4)
    odd = os.path.join(os.fsencode(raw), b"S001C001P001R001A001\xff.skeleton")
    with open(odd, "wb") as fh:
        fh.write((raw / f"{sample_name(1, 1, 1, 1, 1)}.skeleton").read_bytes())
    code, stdout, err = run(["prepare", "ntu", "--skeletons", str(raw), "--dataset", "ntu60", "--out", str(out), "--workers", "1"], capsys)
    assert code == 0, err
    assert "A001\\xff.skeleton: not an NTU sample name" in stdout
    report = json.loads((out / "prepare_report.json").read_text())
    assert report["samples"] == 4 and len(report["ignored"]) == 1
    assert "A001\\xff" in (out / "prepare_report.txt").read_text()
    assert not (out / ".cache").exists()


@pytest.mark.slow
def test_sigkilled_prepare_leaves_no_worker_running(tmp_path: Path) -> None:
    """A real `prepare ntu --workers 2` is SIGKILLed while its workers parse; they die with it."""
    import signal
    import subprocess
    import sys
    import time

    raw, pids = tmp_path / "raw", tmp_path / "pids"
    _corpus(raw, 40)
    pids.mkdir()
    script = (
        "import os, sys, time\n"
        "from functools import partial\n"
        "from mmcl.prepare.ntu import prepare_ntu\n"
        "def mark(folder, path):\n"
        "    open(os.path.join(folder, str(os.getpid())), 'w').close(); time.sleep(0.5)\n"
        "if __name__ == '__main__':\n"
        f"    prepare_ntu([{str(raw)!r}], 'ntu60', {str(tmp_path / 'out')!r}, workers=2, chunk_size=1, progress=False,\n"
        f"                on_file=partial(mark, {str(pids)!r}))\n"
    )
    (tmp_path / "job.py").write_text(script)
    proc = subprocess.Popen([sys.executable, str(tmp_path / "job.py")], cwd=tmp_path)
    deadline = time.time() + 120
    while time.time() < deadline and len(list(pids.iterdir())) < 2 and proc.poll() is None:
        time.sleep(0.05)
    workers = [int(p.name) for p in pids.iterdir()]
    assert proc.poll() is None and len(workers) == 2 and proc.pid not in workers
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    for _ in range(100):
        alive = [w for w in workers if Path(f"/proc/{w}").exists() and "Z" not in _state(w)]
        if not alive:
            break
        time.sleep(0.1)
    else:
        for w in alive:
            os.kill(w, signal.SIGKILL)
        pytest.fail(f"worker processes {alive} outlived the killed prepare")


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except (FileNotFoundError, IndexError):
        return "Z"


# --------------------------------------------------------------------------- prepare nw-ucla


def _nwucla_file(path: Path, frames: int = 12, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    path.write_text(json.dumps({"skeletons": rng.normal(size=(frames, 20, 3)).round(4).tolist()}))


def _nwucla_folder(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(["a01_s01_e00_v01", "a02_s01_e00_v02", "a03_s01_e00_v03", "a04_s02_e00_v03"]):
        _nwucla_file(root / f"{name}.json", seed=i)
    return root


def test_prepare_nwucla_skips_unreadable_files_and_reports_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sqe = _nwucla_folder(tmp_path / "all_sqe")
    (sqe / "a05_s03_e00_v01.json").symlink_to(tmp_path / "gone.json")  # dangling
    _nwucla_file(sqe / "a06_s03_e00_v01.json")
    with open(os.path.join(os.fsencode(sqe), b"a08_s03_e00_v01\xe9.json"), "w") as fh:
        fh.write("{}")
    real_read = Path.read_text

    def read_text(self: Path, *args: object, **kwargs: object) -> str:
        if self.name == "a06_s03_e00_v01.json":
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(self))
        return real_read(self, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", read_text)
    root = prepare_nwucla(sqe, tmp_path / "out", progress=False)
    monkeypatch.setattr(Path, "read_text", real_read)
    meta = json.loads((root / "meta.json").read_text())
    skipped = "\n".join(meta["skipped"]["train"])
    assert "a05_s03_e00_v01: a symbolic link to a missing file" in skipped
    assert "a06_s03_e00_v01: cannot be read (Permission denied)" in skipped
    assert "a08_s03_e00_v01\\xe9.json: the file name is not valid UTF-8" in skipped
    assert meta["counts"] == {"train": 2, "test": 2}


def test_prepare_nwucla_failing_on_the_test_split_keeps_the_old_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    sqe, out = _nwucla_folder(tmp_path / "all_sqe"), tmp_path / "out"
    root = prepare_nwucla(sqe, out, progress=False)
    before = _digest(root.parent)  # the store and the benchmark folder
    _nwucla_file(sqe / "a09_s04_e00_v01.json", frames=30)  # a new, longer train sample changes every array
    from mmcl.formats import sample_store as store

    real = store.write_split_index

    def write_index(path: Path, *args: object, **kwargs: object) -> Path:
        real(path, *args, **kwargs)
        _disk_full()  # the new store is written; its benchmark folder fails
        return path

    monkeypatch.setattr(store, "write_split_index", write_index)
    code, _, err = run(["prepare", "nw-ucla", "--all-sqe", str(sqe), "--out", str(out)], capsys)
    assert code == 2 and "No space left on device" in err and len(err.strip().splitlines()) == 1
    assert _digest(root.parent) == before  # not a new store beside the old split index
    assert _temporaries(out) == []


# --------------------------------------------------------------------------- outputs checked first


@pytest.mark.parametrize(
    "argv",
    [
        ["prepare", "ntu", "--skeletons", "RAW", "--dataset", "ntu60", "--out", "OUT"],
        ["prepare", "nw-ucla", "--all-sqe", "RAW", "--out", "OUT"],
        ["test", "--checkpoint", "CKPT", "--data", "RAW", "--out", "OUT"],
        ["export", "--checkpoint", "CKPT", "--out", "OUT"],
        ["extract", "rgb", "--videos", "RAW", "--out", "OUT"],
        ["extract", "cnn", "--images", "RAW", "--out", "OUT", "--random-init"],
        ["extract", "text", "--images", "RAW", "--out", "OUT", "--blip-model", "RAW"],
        ["train", "--config", "configs/nwucla_cpu.yaml", "--data", "RAW", "trainer.work_dir=OUT"],
    ],
    ids=lambda a: " ".join(a[:2]),
)
def test_an_output_that_is_a_file_is_refused_in_one_line_before_any_work(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    (tmp_path / "taken").write_text("keep me")
    config = Path(__file__).resolve().parents[1] / "configs" / "nwucla_cpu.yaml"
    subs = {"RAW": str(raw), "OUT": str(tmp_path / "taken"), "CKPT": str(tmp_path / "no.ckpt"), "configs/nwucla_cpu.yaml": str(config)}
    code, _, err = run([subs.get(a, a.replace("OUT", subs["OUT"])) for a in argv], capsys)
    assert code == 2, err
    assert "is a file" in err and str(tmp_path / "taken") in err and len(err.strip().splitlines()) == 1
    assert (tmp_path / "taken").read_text() == "keep me"


def test_test_into_an_unwritable_folder_fails_before_the_evaluation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    locked = tmp_path / "readonly"
    locked.mkdir()
    real = mmcl.io.tempfile.mkstemp

    def mkstemp(*args: object, dir: object = None, **kwargs: object) -> tuple[int, str]:
        if dir is not None and Path(str(dir)) == locked:  # as a read-only mount answers (root ignores chmod)
            raise OSError(errno.EROFS, os.strerror(errno.EROFS))
        return real(*args, dir=dir, **kwargs)

    monkeypatch.setattr(mmcl.io.tempfile, "mkstemp", mkstemp)
    code, _, err = run(["test", "--checkpoint", str(tmp_path / "missing.ckpt"), "--data", str(tmp_path), "--out", str(locked)], capsys)
    assert code == 2 and "cannot write in" in err and "Read-only file system" in err  # not "checkpoint not found"


# --------------------------------------------------------------------------- predict inputs


@pytest.fixture(scope="module")
def exported_ntu(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ntu_export") / "model"
    export_backbone(_model(), out, card=NTU_CARD, formats=("safetensors",))
    return out


def test_bad_npy_files_get_one_clear_line_and_the_good_files_are_still_predicted(exported_ntu: Path, tmp_path: Path) -> None:
    good = tmp_path / "good.npy"
    np.save(good, np.random.default_rng(0).normal(size=(3, 20, 25, 2)).astype(np.float32))
    (tmp_path / "empty.npy").write_bytes(b"")
    (tmp_path / "random.npy").write_bytes(np.random.default_rng(1).bytes(300))
    np.save(tmp_path / "four.npy", np.random.default_rng(2).normal(size=(3, 20, 25, 4)).astype(np.float32))
    padded = np.zeros((3, 20, 25, 4), np.float32)
    padded[..., 0] = padded[..., 2] = 1.0
    np.save(tmp_path / "padded.npy", padded)
    files = [tmp_path / n for n in ("empty.npy", "good.npy", "random.npy", "four.npy", "padded.npy")]
    report = predict_files(load_model(exported_ntu), files)
    assert [Path(p.file).name for p in report.predictions] == ["good.npy", "padded.npy"]
    problems = {Path(f).name: why for f, why in report.failures}
    assert "empty file (0 bytes)" in problems["empty.npy"] and str(tmp_path / "empty.npy") in problems["empty.npy"]
    assert "not a NumPy .npy file" in problems["random.npy"]  # not "contains pickled data"
    assert "holds 4 persons with data" in problems["four.npy"] and "takes 2" in problems["four.npy"]


def test_npy_values_beyond_float32_are_refused(tmp_path: Path) -> None:
    x = np.ones((3, 10, 25, 1))
    x[0, 3, 4, 0] = 1e39
    np.save(tmp_path / "big.npy", x)
    with pytest.raises(SkeletonFileError, match="big.npy: contains NaN or infinite"):
        read_skeleton_file(tmp_path / "big.npy")


@pytest.mark.parametrize(
    ("skeletons", "problem"),
    [
        (["a", "b", "c"], "each frame must be a list of joints"),  # was "ragged frames … [20]; expected 20"
        ({"0": [[0.0, 0.0, 0.0]] * 20}, '"skeletons" must be a list of frames, got dict'),  # was "zero frames"
        ([[["1", "2", "3"]] * 20], "coordinates must be numbers, got text values"),  # was read as numbers
        ([[[True, 0.0, 1.0]] * 20], "coordinates must be numbers, got bool values"),
    ],
    ids=["strings as frames", "dict", "numeric strings", "booleans"],
)
def test_nwucla_json_content_errors_say_what_is_wrong(skeletons: object, problem: str, tmp_path: Path) -> None:
    path = tmp_path / "a01_s01_e00_v01.json"
    path.write_text(json.dumps({"skeletons": skeletons}))
    with pytest.raises(DataError, match=problem) as info:
        read_skeleton_file(path)
    assert str(path) in str(info.value)


def test_a_full_disk_during_training_is_one_line_and_the_run_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from mmcl.demo import DEMO_BENCHMARK, prepare_demo_data
    from mmcl.training import checkpoint

    data, work = tmp_path / "data", tmp_path / "run"
    prepare_demo_data(data, per_class=2, seed=0)
    data = data / DEMO_BENCHMARK
    argv = [
        "train", f"data.path={data}", "data.dataset=synthetic", "data.layout=ntu25", "data.num_classes=12",
        "data.num_persons=1", "data.window=8", "data.batch_size=8", "data.num_workers=0", "model.base_channels=8",
        "trainer.epochs=3", "trainer.progress=false", f"trainer.work_dir={work}",
    ]
    real, saves = checkpoint.atomic_write_bytes, []

    def write(path: Path, data: bytes) -> Path:
        saves.append(path)
        if len(saves) == 3:  # epoch 1's checkpoint: the disk fills while it is written
            return mmcl.io.atomic_write(path, _disk_full)
        return real(path, data)

    monkeypatch.setattr(checkpoint, "atomic_write_bytes", write)
    code, _, err = run(argv, capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "No space left on device while writing" in err and ".ckpt" in err
    assert torch.load(work / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] == 0  # the old one, whole
    monkeypatch.setattr(checkpoint, "atomic_write_bytes", real)
    code, out, err = run([*argv, "--resume", str(work)], capsys)
    assert code == 0, err
    assert torch.load(work / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] == 2


def test_ntu_values_beyond_float32_are_refused_naming_the_line(tmp_path: Path) -> None:
    from mmcl.formats.ntu_parse import NTUParseError
    from mmcl.prepare.ntu_synth import format_skeleton

    lines = format_skeleton(random_sample(np.random.default_rng(0), 12, 1)).splitlines()
    row = next(i for i, line in enumerate(lines) if len(line.split()) == 12)
    fields = lines[row].split()
    fields[1] = "3.5e38"  # finite as a float64, inf as the float32 the arrays hold
    lines[row] = " ".join(fields)
    path = tmp_path / "S001C001P001R001A001.skeleton"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(NTUParseError, match=rf"A001.skeleton:{row + 1}: field 2 '3.5e38' is beyond float32"):
        read_skeleton_file(path)
    report = prepare_ntu([tmp_path], "ntu60", tmp_path / "out", workers=1, progress=False)
    assert report.samples == 0 and "beyond float32" in report.failed[0]["message"]  # skipped and reported
