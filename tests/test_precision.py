"""bf16 on a CPU without native bf16 (AVX-512 BF16 / AMX) falls back to float32: training, the run's
record of it, and evaluation; CPUs with it and GPUs keep the configured precision."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

import mmcl.device
from mmcl.device import usable_precision
from mmcl.results.evaluation import eval_loader, run_inference
from mmcl.training.fit import train
from mmcl.training.module import ActionRecognitionModule
from test_engine import tiny_config, tiny_data  # noqa: F401  (the engine tests' tiny benchmark)


@pytest.fixture
def no_native_bf16(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mmcl.device, "cpu_has_native_bf16", lambda: False)


def test_usable_precision(monkeypatch: pytest.MonkeyPatch) -> None:
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    monkeypatch.setattr(mmcl.device, "cpu_has_native_bf16", lambda: False)
    precision, why = usable_precision("bf16-mixed", cpu)
    assert precision == "32-true" and "no native bf16" in why and "bf16-mixed" in why
    assert usable_precision("bf16-mixed", cuda) == ("bf16-mixed", None)  # GPUs decide for themselves
    assert usable_precision("32-true", cpu) == ("32-true", None)
    monkeypatch.setattr(mmcl.device, "cpu_has_native_bf16", lambda: True)
    assert usable_precision("bf16-mixed", cpu) == ("bf16-mixed", None)


def test_training_falls_back_and_records_it(tiny_data: Path, tmp_path: Path, no_native_bf16: None,
                                            caplog: pytest.LogCaptureFixture) -> None:
    cfg = tiny_config(tiny_data, tmp_path / "run", precision="bf16-mixed", accelerator="cpu", epochs=1)
    seen = []
    original = ActionRecognitionModule.on_train_start

    def spy(self: ActionRecognitionModule) -> None:
        seen.append(str(self.trainer.precision))
        original(self)

    with caplog.at_level(logging.WARNING, logger="mmcl"), pytest.MonkeyPatch.context() as mp:
        mp.setattr(ActionRecognitionModule, "on_train_start", spy)
        train(cfg)
    assert seen == ["32-true"]  # Lightning trained in float32
    assert "-> 32-true" in caplog.text and "no native bf16" in caplog.text
    recorded = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert recorded["trainer"]["precision"] == "32-true"  # what the run used, so evaluations repeat it
    assert cfg.trainer.precision == "bf16-mixed"  # the caller's config is left as it was


def test_evaluation_runs_float32_without_native_bf16(tiny_data: Path, tmp_path: Path, no_native_bf16: None) -> None:
    from mmcl.checkpoints import ModelCard
    from mmcl.training.data import SkeletonDataModule

    cfg = tiny_config(tiny_data, tmp_path / "run", accelerator="cpu")
    torch.manual_seed(0)
    backbone = ModelCard.from_config(cfg).build()
    data = SkeletonDataModule(cfg)
    data.setup("fit")
    fp32 = run_inference(backbone, eval_loader(cfg, data.test_set), cfg)
    cfg.trainer.precision = "bf16-mixed"
    asked_bf16 = run_inference(backbone, eval_loader(cfg, data.test_set), cfg)
    np.testing.assert_array_equal(asked_bf16["scores"], fp32["scores"])  # no autocast at all
