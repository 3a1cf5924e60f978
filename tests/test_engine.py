"""The training engine end to end on a tiny synthetic benchmark: run directory, scores, exact resume."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from mmcl.config import Config
from mmcl.demo import DEMO_BENCHMARK, prepare_demo_data
from mmcl.results.evaluation import evaluate
from mmcl.training.fit import train
from mmcl.training.module import ActionRecognitionModule


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synthetic")
    prepare_demo_data(root, per_class=3, seed=0)
    return root / DEMO_BENCHMARK


def tiny_config(data: Path, work_dir: Path, **trainer: object) -> Config:
    cfg = Config()
    cfg.data.path, cfg.data.dataset, cfg.data.layout = str(data), "synthetic", "ntu25"
    cfg.data.num_classes, cfg.data.num_persons = 12, 1
    cfg.data.window, cfg.data.batch_size, cfg.data.test_batch_size, cfg.data.num_workers = 8, 8, 16, 0
    cfg.model.base_channels = 8
    cfg.optim.warmup_epochs, cfg.optim.lr_steps = 1, [2]
    cfg.trainer.epochs, cfg.trainer.work_dir, cfg.trainer.progress, cfg.trainer.seed = 2, str(work_dir), False, 7
    for key, value in trainer.items():
        setattr(cfg.trainer, key, value)
    return cfg.validate()


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)["state_dict"]


def test_train_writes_run_directory(tiny_data: Path, tmp_path: Path) -> None:
    cfg = tiny_config(tiny_data, tmp_path / "run")
    results = train(cfg)
    run = tmp_path / "run"
    for name in ("config.yaml", "env.json", "results.json", "scores.npz", "test_metrics.json", "test_per_class.csv",
                 "test_confusion.csv", "curves.png", "confusion.png", "per_class.png", "csv/metrics.csv",
                 "checkpoints/last.ckpt", "checkpoints/best.ckpt"):
        assert (run / name).is_file(), name
    assert list((run / "tb").glob("events.out.tfevents.*"))
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)  # no arbitrary pickle needed
    assert ckpt["epoch"] == 1 and "mmcl_rng" in ckpt and ckpt["mmcl_config"]["data"]["num_classes"] == 12
    with np.load(run / "scores.npz", allow_pickle=False) as s:
        names, labels, scores = s["names"].tolist(), s["labels"], s["scores"]
    assert scores.shape == (len(names), 12) and len(names) == results["test"]["num_samples"]
    assert labels.dtype == np.int64 and labels.shape == (len(names),)
    assert all(n.startswith("syn_") for n in names) and len(set(names)) == len(names)
    assert 0.0 <= results["test"]["top1"] <= 1.0 and results["selection_split"] == "test"
    # the test command on the best checkpoint reproduces the stored scores exactly
    summary = evaluate(cfg, run / "checkpoints" / "best.ckpt", out_dir=tmp_path / "eval")
    with np.load(tmp_path / "eval" / "scores.npz", allow_pickle=False) as s2:
        assert s2["names"].tolist() == names
        np.testing.assert_allclose(s2["scores"], scores, rtol=1e-5, atol=1e-5)
    assert summary["checkpoint_kind"] == "mmcl-train"
    # class names stored with the data (the demo world's meta.json) reach the card and the per-class files
    from mmcl.checkpoints import open_checkpoint
    from mmcl.demo.world import SYNTHETIC_CLASSES

    expected = [c.name for c in SYNTHETIC_CLASSES]
    assert open_checkpoint(run / "checkpoints" / "best.ckpt").card.class_names == expected
    per_class = (run / "test_per_class.csv").read_text()
    assert all(name in per_class for name in expected)


def _train_until_crash(cfg: Config, monkeypatch: pytest.MonkeyPatch):
    """Train ``cfg`` with a crash at the start of the third epoch; returns the unpatched hook."""
    original = ActionRecognitionModule.on_train_epoch_start

    def crash_on_third_epoch(self: ActionRecognitionModule) -> None:
        if self.current_epoch == 2:
            raise RuntimeError("simulated crash")
        original(self)

    monkeypatch.setattr(ActionRecognitionModule, "on_train_epoch_start", crash_on_third_epoch)
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(cfg)
    return original


@pytest.mark.slow
@pytest.mark.parametrize(("eval_every", "workers"), [(1, 0), (3, 0), (1, 2)])
def test_resume_continues_exactly(tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, eval_every: int, workers: int) -> None:
    """Bit for bit, also with DataLoader workers (they draw the resumed epoch's first indices before
    Lightning calls set_epoch; the sampler asks the fit loop's epoch counter instead)."""
    full = tiny_config(tiny_data, tmp_path / "full", epochs=3, eval_every=eval_every)
    full.data.num_workers = workers
    train(full)
    reference = _weights(tmp_path / "full" / "checkpoints" / "last.ckpt")

    # the crash comes before epoch 3; last.ckpt holds epoch 2 even when epoch 2 was not evaluated (eval_every 3)
    interrupted = tiny_config(tiny_data, tmp_path / "cut", epochs=3, eval_every=eval_every)
    interrupted.data.num_workers = workers
    original = _train_until_crash(interrupted, monkeypatch)
    assert torch.load(tmp_path / "cut" / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] == 1
    monkeypatch.setattr(ActionRecognitionModule, "on_train_epoch_start", original)
    first_seconds = torch.load(tmp_path / "cut" / "checkpoints" / "last.ckpt", weights_only=True)["mmcl_train_seconds"]
    assert first_seconds > 0
    results = train(interrupted, resume=tmp_path / "cut")
    # the reported training time adds the interrupted process's time (up to its last checkpoint)
    assert results["resumed_from"].endswith("last.ckpt")
    assert results["train_seconds"] == pytest.approx(first_seconds + results["train_seconds_this_process"], abs=5.0)
    resumed = _weights(tmp_path / "cut" / "checkpoints" / "last.ckpt")
    assert resumed.keys() == reference.keys()
    for key in reference:
        assert torch.equal(resumed[key], reference[key]), key
    # env.json describes this part's machine and keeps the interrupted part's beside it
    import json

    env = json.loads((tmp_path / "cut" / "env.json").read_text())
    assert [sorted(part) for part in env["earlier_parts"]] == [sorted(set(env) - {"earlier_parts"})]
    # the CSV log continues across the interruption instead of starting over
    import csv

    with open(tmp_path / "cut" / "csv" / "metrics.csv", newline="") as fh:
        epochs = sorted({int(r["epoch"]) for r in csv.DictReader(fh) if r.get("val/top1")})
    assert epochs == [0, 1, 2][eval_every - 1 :: eval_every]


def test_validation_split_used_for_selection(tiny_data: Path, tmp_path: Path) -> None:
    cfg = tiny_config(tiny_data, tmp_path / "val", epochs=1)
    cfg.data.val_fraction = 0.3
    results = train(cfg)
    assert results["selection_split"] == "val"
    from mmcl.datasets.sources import open_source

    # the whole test split is still evaluated once at the end, with the checkpoint selected on validation
    assert results["test"]["num_samples"] == len(open_source(tiny_data, "test"))


def test_final_checkpoint_last_and_init_from(tiny_data: Path, tmp_path: Path) -> None:
    from mmcl.checkpoints import ModelCard
    from mmcl.checkpoints.official import reference_state_dict
    from mmcl.training.fit import initialise_from

    cfg = tiny_config(tiny_data, tmp_path / "last", epochs=1)
    cfg.trainer.final_checkpoint = "last"
    results = train(cfg)
    assert results["best_checkpoint"].endswith("last.ckpt") and results["selection_split"].startswith("none")
    trained = _weights(tmp_path / "last" / "checkpoints" / "last.ckpt")
    # fine-tuning start point from our checkpoint ...
    fresh = ModelCard.from_config(cfg).build()
    initialise_from(tmp_path / "last" / "checkpoints" / "last.ckpt", fresh, None)
    for key, value in fresh.state_dict().items():
        assert torch.equal(value, trained[f"backbone.{key}"]), key
    # ... and from an official-format file (reference key names, "module." prefix)
    official = {f"module.{k}": v for k, v in reference_state_dict(fresh).items()}
    torch.save(official, tmp_path / "official.pt")
    again = ModelCard.from_config(cfg).build()
    initialise_from(tmp_path / "official.pt", again, None)
    for key, value in again.state_dict().items():
        assert torch.equal(value, fresh.state_dict()[key]), key


@pytest.mark.slow
def test_ema_weights_reported_and_resume_exact(tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """trainer.ema_decay: checkpoints hold the averaged weights (raw ones beside them), the final test
    uses the average, and an interrupted EMA run resumes to the same averaged weights."""
    full = tiny_config(tiny_data, tmp_path / "full", epochs=3, ema_decay=0.9, final_checkpoint="last")
    full.data.num_workers = 2  # EMA and data workers together, as the shipped configs run
    results = train(full)
    ckpt = torch.load(tmp_path / "full" / "checkpoints" / "last.ckpt", weights_only=True)
    averaged, raw = ckpt["state_dict"], ckpt["current_model_state"]
    assert averaged.keys() == raw.keys()
    steps = ckpt["global_step"]
    assert int(ckpt["averaging_state"]["n_averaged"]) == steps > 0  # one update per optimiser step
    differs = [k for k in raw if raw[k].is_floating_point() and not torch.allclose(raw[k], averaged[k])]
    assert any(k.startswith("backbone.") for k in differs)
    assert results["test_raw_weights"]["num_samples"] == results["test"]["num_samples"]
    # the reported scores are those of the averaged weights (of the last epoch: trainer.final_checkpoint)
    summary = evaluate(full, tmp_path / "full" / "checkpoints" / "last.ckpt", out_dir=tmp_path / "eval")
    assert summary["top1"] == pytest.approx(results["test"]["top1"])
    with np.load(tmp_path / "eval" / "scores.npz") as a, np.load(tmp_path / "full" / "scores.npz") as b:
        np.testing.assert_allclose(a["scores"], b["scores"], rtol=1e-5, atol=1e-5)

    cut = tiny_config(tiny_data, tmp_path / "cut", epochs=3, ema_decay=0.9)
    cut.data.num_workers = 2
    original = _train_until_crash(cut, monkeypatch)
    monkeypatch.setattr(ActionRecognitionModule, "on_train_epoch_start", original)
    train(cut, resume=tmp_path / "cut")
    resumed = torch.load(tmp_path / "cut" / "checkpoints" / "last.ckpt", weights_only=True)
    for part in ("state_dict", "current_model_state"):
        for key, value in ckpt[part].items():
            assert torch.equal(resumed[part][key], value), f"{part}:{key}"  # bit for bit


def test_ema_with_negligible_decay_tracks_raw_weights(tiny_data: Path, tmp_path: Path) -> None:
    cfg = tiny_config(tiny_data, tmp_path / "ema0", epochs=1, ema_decay=1e-7)
    train(cfg)
    ckpt = torch.load(tmp_path / "ema0" / "checkpoints" / "last.ckpt", weights_only=True)
    for key, value in ckpt["current_model_state"].items():
        if value.is_floating_point():
            torch.testing.assert_close(ckpt["state_dict"][key], value, rtol=1e-5, atol=1e-5, msg=key)


def test_ema_decay_validated() -> None:
    from mmcl.config import ConfigError

    cfg = Config()
    cfg.trainer.ema_decay = 1.0
    with pytest.raises(ConfigError, match="ema_decay"):
        cfg.validate()


def test_ema_update_is_running_mean_then_exponential() -> None:
    from torch.optim.swa_utils import AveragedModel

    from mmcl.training.ema import ramped_ema_update

    model = torch.nn.BatchNorm1d(3)
    averaged = AveragedModel(model, use_buffers=True, multi_avg_fn=ramped_ema_update(0.75))  # window 4
    values = [float(v) for v in range(1, 9)]
    expected = None
    for i, v in enumerate(values):
        with torch.no_grad():
            model.weight.fill_(v)
            model.running_var.fill_(10 * v)
        model.num_batches_tracked.fill_(i)
        averaged.update_parameters(model)
        if i < 4:  # decay/(1-decay) = 3 earlier updates: plain mean of everything so far
            expected = sum(values[: i + 1]) / (i + 1)
        else:
            expected = 0.75 * expected + 0.25 * v
        torch.testing.assert_close(averaged.module.weight, torch.full((3,), expected))
        torch.testing.assert_close(averaged.module.running_var, torch.full((3,), 10 * expected))
        assert int(averaged.module.num_batches_tracked) == i


def test_a_run_directory_is_never_trained_into_twice_by_accident(tiny_data: Path, tmp_path: Path) -> None:
    from mmcl.io import exclusive_lock
    from mmcl.training.run_dir import RUN_LOCK, RunDirectoryError

    cfg = tiny_config(tiny_data, tmp_path / "run", epochs=1)
    train(cfg)
    before = _weights(tmp_path / "run" / "checkpoints" / "last.ckpt")
    # a second plain start would silently replace the finished run: refused, nothing touched
    with pytest.raises(RunDirectoryError, match=r"already holds a run \(checkpoints/last.ckpt, results.json\).*--resume"):
        train(cfg)
    for key, value in _weights(tmp_path / "run" / "checkpoints" / "last.ckpt").items():
        torch.testing.assert_close(value, before[key], rtol=0, atol=0)
    # while another process trains it, even --resume and --overwrite are refused
    with exclusive_lock(tmp_path / "run" / RUN_LOCK):
        for kwargs in ({"resume": tmp_path / "run"}, {"overwrite": True}):
            with pytest.raises(RunDirectoryError, match="being written by another training"):
                train(cfg, **kwargs)
    # --resume with other settings would continue the checkpoint as a different run: refused, naming
    # each changed key, before anything is written
    header = (tmp_path / "run" / "config.yaml").read_bytes()
    changed = tiny_config(tiny_data, tmp_path / "run", epochs=1)
    changed.optim.base_lr, changed.data.window = 0.05, 12
    with pytest.raises(RunDirectoryError, match=r"data.window: 8 -> 12; optim.base_lr: 0.1 -> 0.05\). Resume with the run's own"):
        train(changed, resume=tmp_path / "run")
    assert (tmp_path / "run" / "config.yaml").read_bytes() == header
    # --overwrite starts again from scratch and leaves nothing of the old run behind
    (tmp_path / "run" / "notes.txt").write_text("mine")
    (tmp_path / "run" / "tb" / "events.out.tfevents.old").write_text("")
    cfg.trainer.seed = 8
    results = train(cfg, overwrite=True)
    assert results["test"]["num_samples"] > 0 and (tmp_path / "run" / "notes.txt").read_text() == "mine"
    assert not (tmp_path / "run" / "tb" / "events.out.tfevents.old").exists()
    after = _weights(tmp_path / "run" / "checkpoints" / "last.ckpt")
    assert any(not torch.equal(after[k], before[k]) for k in before)


def test_a_resumed_run_keeps_its_own_precision_and_may_move(tmp_path: Path) -> None:
    """A run that began in float32 (e.g. a CPU without native bf16 downgraded a bf16 recipe) goes on
    in float32 on a machine that would choose bf16; its files and thread count may change."""
    from mmcl.training.run_dir import RunDirectoryError, resumed_config, write_run_header

    began = tiny_config(tmp_path / "data", tmp_path / "run")
    began.trainer.precision = "32-true"
    write_run_header(began, tmp_path / "run")
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    now = tiny_config(tmp_path / "moved", tmp_path / "run", precision="bf16-mixed", num_threads=2)
    now.data.num_workers = 3
    kept, note = resumed_config(now, ckpt)
    assert kept.trainer.precision == "32-true" and now.trainer.precision == "bf16-mixed"
    assert kept.data.path == str(tmp_path / "moved") and kept.trainer.num_threads == 2
    assert note is not None and "32-true" in note
    assert resumed_config(began, ckpt) == (began, None)
    longer = tiny_config(tmp_path / "data", tmp_path / "run", precision="32-true", epochs=5)  # extending a run
    assert resumed_config(longer, ckpt) == (longer, "trainer.epochs 2 -> 5")
    now.trainer.seed = 99
    with pytest.raises(RunDirectoryError, match=r"trainer.seed: 7 -> 99"):
        resumed_config(now, ckpt)
    assert resumed_config(now, tmp_path / "elsewhere.ckpt") == (now, None)  # a bare checkpoint: nothing to compare
    recorded = tmp_path / "run" / "config.yaml"
    recorded.write_text(recorded.read_text().replace("  crop_min:", "  crop_maximum:"))  # e.g. another mmcl version's key
    with pytest.raises(RunDirectoryError, match=r"config.yaml is not a configuration this mmcl reads \(unknown config key 'data.crop_maximum'"):
        resumed_config(began, ckpt)


def test_a_failed_start_leaves_no_run_directory(tmp_path: Path) -> None:
    cfg = tiny_config(tmp_path / "no_data", tmp_path / "run", epochs=1)
    from mmcl.datasets.base import DataError

    with pytest.raises(DataError, match="no_data: does not exist"):
        train(cfg)
    assert not (tmp_path / "run").exists()


def test_a_diverging_training_stops_naming_the_step_and_keeps_its_last_checkpoint(tiny_data: Path, tmp_path: Path) -> None:
    from mmcl.training.module import NonFiniteLossError

    cfg = tiny_config(tiny_data, tmp_path / "run", epochs=4)
    cfg.optim.base_lr, cfg.optim.warmup_epochs, cfg.optim.lr_steps = 1e25, 0, []
    with pytest.raises(NonFiniteLossError, match=r"loss is (nan|inf) at epoch \d+, global step \d+.*inputs are finite.*batch samples: \w+"):
        train(cfg)
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    if last.is_file():  # whatever was saved before the stop holds finite weights
        assert all(torch.isfinite(v).all() for v in _weights(last).values() if v.is_floating_point())


def test_the_stop_message_names_the_samples_with_non_finite_input() -> None:
    from mmcl.training.module import nonfinite_loss_message

    x = torch.zeros(3, 3, 4, 25, 1)
    x[1, 0, 2, 3, 0] = float("inf")
    batch = {"x": x, "name": ["a01", "a02", "a03"], "label": torch.zeros(3, dtype=torch.long)}
    text = nonfinite_loss_message(torch.tensor(float("nan")), {"cls": torch.tensor(float("nan"))}, batch, 3, 41)
    assert "epoch 3, global step 41" in text and "loss term(s) cls" in text
    assert "non-finite input values in sample(s): a02" in text
