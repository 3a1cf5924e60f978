"""Stopping inside an epoch: Ctrl-C / SIGTERM save between two steps, timed saves bound what a crash
loses, and --resume continues with the next batch bit for bit (weights, EMA, log rows and values)."""

from __future__ import annotations

import csv
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from mmcl.config import Config, ConfigError
from mmcl.datasets.base import EpochSampler
from mmcl.demo import DEMO_BENCHMARK, prepare_demo_data
from mmcl.training.fit import train
from mmcl.training.loggers import DropRowsAfterCheckpoint
from mmcl.training.module import ActionRecognitionModule

STEPS_PER_EPOCH = 6  # 27 training clips of the tiny benchmark in batches of 4 (the last partial one dropped)


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synthetic")
    prepare_demo_data(root, per_class=3, seed=0)
    return root / DEMO_BENCHMARK


def tiny_config(data: Path, work_dir: Path, *, workers: int = 0, ema: float = 0.0, minutes: float = 10.0,
                accumulate: int = 1) -> Config:
    cfg = Config()
    cfg.data.path, cfg.data.dataset, cfg.data.layout = str(data), "synthetic", "ntu25"
    cfg.data.num_classes, cfg.data.num_persons = 12, 1
    cfg.data.window, cfg.data.batch_size, cfg.data.test_batch_size, cfg.data.num_workers = 8, 4, 16, workers
    cfg.model.base_channels = 8
    cfg.optim.warmup_epochs, cfg.optim.lr_steps = 1, [2]
    t = cfg.trainer
    t.epochs, t.work_dir, t.progress, t.seed, t.log_every_n_steps = 3, str(work_dir), False, 7, 1
    t.ema_decay, t.checkpoint_minutes, t.accumulate_grad_batches = ema, minutes, accumulate
    return cfg.validate()


def _checkpoint(run: Path) -> dict:
    return torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)


def _logged(run: Path) -> list[tuple[str, str, str, str]]:
    """Every (epoch, step, column, value) of metrics.csv, values included (they must match too)."""
    with open(run / "csv" / "metrics.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    cells = [(r["epoch"], r["step"], k, v) for r in rows for k, v in r.items() if v and k not in ("epoch", "step")]
    assert len({c[:3] for c in cells}) == len(cells), "a step was logged twice"
    return sorted(cells)


def _assert_same_run(run: Path, reference: Path) -> None:
    got, want = _checkpoint(run), _checkpoint(reference)
    assert got["global_step"] == want["global_step"] and got["epoch"] == want["epoch"]
    for part in ("state_dict", "current_model_state"):  # the latter: raw weights beside an EMA
        assert (part in got) == (part in want)
        for key, value in want.get(part, {}).items():
            assert torch.equal(got[part][key], value), f"{part}:{key}"
    assert _logged(run) == _logged(reference)


def _on_batch_end(monkeypatch: pytest.MonkeyPatch, epoch: int, batch: int, action) -> None:
    original = ActionRecognitionModule.on_train_batch_end

    def hook(self: ActionRecognitionModule, outputs, batch_data, batch_idx: int) -> None:
        original(self, outputs, batch_data, batch_idx)
        if self.current_epoch == epoch and batch_idx == batch:
            action()

    monkeypatch.setattr(ActionRecognitionModule, "on_train_batch_end", hook)


@pytest.fixture(scope="module")
def plain_run(tiny_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The uninterrupted run (no workers, no EMA) that interrupted ones must end on."""
    run = tmp_path_factory.mktemp("plain") / "full"
    train(tiny_config(tiny_data, run))
    return run


@pytest.mark.slow
@pytest.mark.parametrize(("workers", "ema", "sig"), [(0, 0.0, signal.SIGINT), (2, 0.9, signal.SIGTERM)])
def test_a_signal_inside_an_epoch_saves_after_the_step_and_resumes_bit_for_bit(
    tiny_data: Path, plain_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: int, ema: float, sig: int
) -> None:
    if workers or ema:
        train(tiny_config(tiny_data, tmp_path / "full", workers=workers, ema=ema))
    reference = tmp_path / "full" if workers or ema else plain_run

    cut = tmp_path / "cut"
    # the signal comes during the 3rd batch of epoch 2 (after its callbacks ran): the 4th batch completes, then it stops
    _on_batch_end(monkeypatch, epoch=1, batch=2, action=lambda: os.kill(os.getpid(), sig))
    with pytest.raises(KeyboardInterrupt):
        train(tiny_config(tiny_data, cut, workers=workers, ema=ema))
    monkeypatch.undo()
    saved = _checkpoint(cut)
    assert saved["epoch"] == 1 and saved["global_step"] == STEPS_PER_EPOCH + 4
    assert saved["loops"]["fit_loop"]["state_dict"]["combined_loader"] == [{"epoch": 1, "batches": 4, "batch_size": 4}]
    card = saved["mmcl_card"]["training"]
    assert card["epochs_done"] == 1 and card["batches_into_next_epoch"] == 4
    # the Ctrl-C handler is gone once training stopped: a Ctrl-C now is Python's KeyboardInterrupt again
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler

    results = train(tiny_config(tiny_data, cut, workers=workers, ema=ema), resume=cut)
    assert results["resumed_from"].endswith("last.ckpt")
    _assert_same_run(cut, reference)


@pytest.mark.slow
def test_a_signal_between_accumulated_batches_waits_for_the_optimiser_step(
    tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With trainer.accumulate_grad_batches=2 the summed gradients of a half-done step are not in a
    checkpoint: a stop seen after an odd batch trains one more batch, steps, then saves."""
    train(tiny_config(tiny_data, tmp_path / "full", accumulate=2))
    cut = tmp_path / "cut"
    # the signal comes during the 2nd batch of epoch 2; the 3rd batch only accumulates, the 4th steps
    _on_batch_end(monkeypatch, epoch=1, batch=1, action=lambda: os.kill(os.getpid(), signal.SIGINT))
    with pytest.raises(KeyboardInterrupt):
        train(tiny_config(tiny_data, cut, accumulate=2))
    monkeypatch.undo()
    saved = _checkpoint(cut)
    assert saved["global_step"] == STEPS_PER_EPOCH // 2 + 2  # optimiser steps: 3 in epoch 1, 2 in epoch 2
    assert saved["loops"]["fit_loop"]["state_dict"]["combined_loader"] == [{"epoch": 1, "batches": 4, "batch_size": 4}]
    train(tiny_config(tiny_data, cut, accumulate=2), resume=cut)
    _assert_same_run(cut, tmp_path / "full")


@pytest.mark.slow
def test_timed_saves_bound_what_a_crash_loses_and_change_nothing(
    tiny_data: Path, plain_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """trainer.checkpoint_minutes: with a tiny interval every step saves; a crash in epoch 2 then loses
    only the step it happened in, and the resumed run equals one that never saved inside an epoch."""
    assert not _checkpoint(plain_run)["mmcl_card"]["training"].get("batches_into_next_epoch")

    cut = tmp_path / "cut"
    original = ActionRecognitionModule.training_step

    def crash(self: ActionRecognitionModule, batch, batch_idx: int):
        if self.current_epoch == 1 and batch_idx == 3:
            raise RuntimeError("simulated crash")
        return original(self, batch, batch_idx)

    monkeypatch.setattr(ActionRecognitionModule, "training_step", crash)
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(tiny_config(tiny_data, cut, minutes=1e-9))
    monkeypatch.undo()
    assert _checkpoint(cut)["global_step"] == STEPS_PER_EPOCH + 3  # the three steps before the crash are kept
    evaluated = _checkpoint(cut)["mmcl_card"]["training"]["eval_metrics"]
    assert "val/top1" in evaluated

    # the resumed run crashes after one step: its checkpoint, written before it evaluated anything itself,
    # still carries the last evaluation's metrics in its model card
    calls = []

    def crash_on_second_step(self: ActionRecognitionModule, batch, batch_idx: int):
        calls.append(batch_idx)
        if len(calls) == 2:
            raise RuntimeError("simulated crash")
        return original(self, batch, batch_idx)

    monkeypatch.setattr(ActionRecognitionModule, "training_step", crash_on_second_step)
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(tiny_config(tiny_data, cut, minutes=1e-9), resume=cut)
    monkeypatch.undo()
    assert _checkpoint(cut)["global_step"] == STEPS_PER_EPOCH + 4
    assert _checkpoint(cut)["mmcl_card"]["training"]["eval_metrics"] == evaluated

    train(tiny_config(tiny_data, cut, minutes=1e-9), resume=cut)
    _assert_same_run(cut, plain_run)


def test_resume_drops_the_log_rows_after_a_mid_epoch_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "metrics.csv"
    rows = [("0", str(s), "0.5", "") for s in range(6)] + [("0", "5", "", "0.25")]  # steps, then the epoch summary
    rows += [("1", str(s), "0.4", "") for s in range(6, 10)]  # epoch 2 ran 4 steps; its checkpoint came after 2
    path.write_text("epoch,step,train/loss_step,val/top1\n" + "".join(",".join(r) + "\n" for r in rows))
    cb = DropRowsAfterCheckpoint(path)
    cb.on_load_checkpoint(None, None, {"epoch": 1, "global_step": 8})
    with open(path, newline="") as fh:
        kept = [(r["epoch"], r["step"], r["val/top1"]) for r in csv.DictReader(fh)]
    assert cb.dropped == 2 and kept[-1] == ("1", "7", "") and ("0", "5", "0.25") in kept
    cb.on_load_checkpoint(None, None, {"epoch": 0, "global_step": 6})  # an epoch-end checkpoint keeps its summary
    with open(path, newline="") as fh:
        assert [r["step"] for r in csv.DictReader(fh)][-2:] == ["5", "5"]


def test_the_sampler_skips_only_the_resumed_epochs_trained_part() -> None:
    sampler = EpochSampler(10, shuffle=True, seed=3, epoch_source=lambda: 2)
    whole = list(sampler)
    sampler.resume_at(2, 4)
    assert list(sampler) == whole[4:] and list(sampler) == whole  # once: the next iteration is the whole epoch
    sampler.resume_at(1, 4)  # an epoch-end checkpoint of epoch 1: epoch 2 starts at its beginning
    assert list(sampler) == whole and len(sampler) == 10
    with pytest.raises(ValueError, match="skip"):
        sampler.resume_at(2, -1)


def test_checkpoint_minutes_is_validated() -> None:
    cfg = Config()
    cfg.trainer.checkpoint_minutes = -1
    with pytest.raises(ConfigError, match="checkpoint_minutes"):
        cfg.validate()


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "killpg"), reason="needs process groups")
def test_a_real_training_stopped_by_ctrl_c_then_killed_ends_on_the_uninterrupted_weights(tiny_data: Path, tmp_path: Path) -> None:
    """A real `mmcl train` with 2 DataLoader workers. Ctrl-C to its process group (as a terminal sends
    it: workers included, which must not quit under the step the trainer still finishes): exit 130,
    a checkpoint inside the epoch. The resumed process is then SIGKILLed (no save: it loses the part
    since its last checkpoint). A second resume ends bit for bit on the uninterrupted run, every log
    cell once with the same value, and no process of the stopped runs survives."""
    overrides = [
        f"data.path={tiny_data}", "data.dataset=synthetic", "data.layout=ntu25", "data.num_classes=12", "data.num_persons=1",
        "data.window=8", "data.batch_size=2", "data.test_batch_size=16", "data.num_workers=2", "model.base_channels=8",
        "optim.warmup_epochs=1", "optim.lr_steps=[2]", "trainer.epochs=4", "trainer.progress=false", "trainer.seed=7",
        "trainer.log_every_n_steps=1",  # metrics.csv on disk after every step: the killed part leaves rows
    ]
    full, cut = tmp_path / "full", tmp_path / "cut"
    train_cmd = [sys.executable, "-m", "mmcl", "train", *overrides]
    subprocess.run([*train_cmd, f"trainer.work_dir={full}"], check=True, capture_output=True, timeout=600)

    proc = _start(train_cmd + [f"trainer.work_dir={cut}"], cut, epoch=1)
    os.killpg(proc.pid, signal.SIGINT)
    said = []
    for line in proc.stderr:  # a SIGTERM right after the stop is reported (mmcl streams asks too) changes nothing
        said.append(line)
        if line.startswith("mmcl: interrupted in"):
            os.killpg(proc.pid, signal.SIGTERM)
            break
    proc.wait(timeout=120)  # what is left to read is a few lines: no pipe fills up meanwhile
    err = "".join(said) + proc.stderr.read()
    proc.stdout.close(), proc.stderr.close()
    assert proc.returncode == 130, err[-2000:]
    assert "saving after this step" in err and f"--resume {cut}" in err
    saved = _checkpoint(cut)
    inside = saved["mmcl_card"]["training"].get("batches_into_next_epoch", 0)
    assert saved["epoch"] == 1 and inside > 0 and f"mmcl: interrupted in epoch 2 after {inside} batches;" in err
    assert f"the last checkpoint is {cut / 'checkpoints' / 'last.ckpt'}" in err
    assert re.search(r"continue exactly where it stopped with: mmcl train .*trainer.epochs=4 .*--resume " + re.escape(str(cut)), err)
    _wait_for_group_to_end(proc.pid)

    proc = _start(train_cmd + [f"trainer.work_dir={cut}", "--resume", str(cut)], cut, epoch=2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    assert 1 <= _checkpoint(cut)["epoch"] < 3
    _wait_for_group_to_end(proc.pid)  # DataLoader workers notice their parent is gone and exit

    subprocess.run([*train_cmd, f"trainer.work_dir={cut}", "--resume", str(cut)], check=True, capture_output=True, timeout=600)
    _assert_same_run(cut, full)


def _start(cmd: list[str], run: Path, epoch: int) -> subprocess.Popen:
    """Start a training in its own process group; return once it logged a step of ``epoch`` (0-based)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # a background pytest ignores it
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if any(int(e) >= epoch for e, _ in _rows(run) if e):
            return proc
        time.sleep(0.01)
    proc.kill()
    pytest.fail(f"the training did not reach epoch {epoch + 1}: {proc.communicate()[1][-2000:]}")


def _wait_for_group_to_end(pgid: int) -> None:
    for _ in range(100):
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    pytest.fail("processes of the stopped training are still running")


def _rows(run: Path) -> list[tuple[str, str]]:
    try:
        with open(run / "csv" / "metrics.csv", newline="") as fh:
            return [(r["epoch"], r["step"]) for r in csv.DictReader(fh)]
    except (FileNotFoundError, csv.Error, KeyError):
        return []
