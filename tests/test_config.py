"""Configs: YAML files, dotted overrides, streams as overrides, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmcl.config import Config, ConfigError, apply_overrides, config_from_dict, config_to_dict, flat_keys, load_config

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


@pytest.mark.parametrize("name", ["ntu60_xsub", "ntu60_xview", "ntu120_xsub", "ntu120_xset", "nwucla"])
def test_shipped_configs_load_and_follow_reference(name: str) -> None:
    cfg = load_config(CONFIGS / f"{name}.yaml")
    assert cfg.optim.momentum == 0.9 and cfg.optim.nesterov and cfg.optim.base_lr == 0.1
    assert cfg.optim.warmup_epochs == 5 and cfg.trainer.epochs == 65
    if name == "nwucla":
        assert (cfg.data.layout, cfg.data.num_classes, cfg.data.num_persons) == ("kinect20", 10, 1)
        assert cfg.optim.weight_decay == pytest.approx(1e-4) and cfg.optim.lr_steps == [50]
        assert (cfg.data.transform, cfg.data.window, cfg.data.repeat, cfg.data.batch_size) == ("ucla", 52, 5, 16)
    else:
        assert cfg.data.num_classes == (120 if "120" in name else 60)
        assert cfg.optim.weight_decay == pytest.approx(4e-4) and cfg.optim.lr_steps == [35, 55]
        assert (cfg.data.window, cfg.data.batch_size) == (64, 64)


@pytest.mark.parametrize("stream", ["joint", "bone", "joint_motion", "bone_motion"])
def test_streams_are_overrides(stream: str) -> None:
    cfg = load_config(CONFIGS / "ntu120_xsub.yaml", [f"data.stream={stream}"])
    assert cfg.data.stream == stream


def test_override_types() -> None:
    cfg = apply_overrides(Config(), ["optim.base_lr=0.05", "data.batch_size=32", "optim.nesterov=false",
                                      "optim.lr_steps=[10, 20]", "data.path=/x/y", "trainer.devices=2"])
    assert cfg.optim.base_lr == 0.05 and isinstance(cfg.optim.base_lr, float)
    assert cfg.data.batch_size == 32 and cfg.optim.nesterov is False
    assert cfg.optim.lr_steps == [10, 20] and cfg.data.path == "/x/y" and cfg.trainer.devices == 2


@pytest.mark.parametrize(
    "override, message",
    [
        ("optim.nope=1", "unknown config key 'optim.nope'"),
        ("data.batch_size=abc", "expects an integer"),
        ("optim.nesterov=3", "expects true/false"),
        ("noequals", "key=value"),
    ],
)
def test_override_errors(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        apply_overrides(Config(), [override])


def test_unknown_stream_is_rejected() -> None:
    with pytest.raises(ConfigError, match="unknown stream 'legs'"):
        load_config(None, ["data.stream=legs"])


def test_round_trip_dict() -> None:
    cfg = load_config(CONFIGS / "nwucla.yaml")
    again = config_from_dict(config_to_dict(cfg))
    assert config_to_dict(again) == config_to_dict(cfg)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")


def test_base_inheritance(tmp_path: Path) -> None:
    (tmp_path / "parent.yaml").write_text("data:\n  num_classes: 10\n  window: 52\noptim:\n  lr_steps: [50]\n")
    (tmp_path / "child.yaml").write_text("base: parent.yaml\ndata:\n  window: 40\ntrainer:\n  epochs: 5\n")
    cfg = load_config(tmp_path / "child.yaml")
    assert (cfg.data.num_classes, cfg.data.window, cfg.optim.lr_steps, cfg.trainer.epochs) == (10, 40, [50], 5)
    (tmp_path / "loop.yaml").write_text("base: loop.yaml\n")
    with pytest.raises(ConfigError, match="circular"):
        load_config(tmp_path / "loop.yaml")


_flat = flat_keys


@pytest.mark.parametrize(
    "name, expected",
    [
        ("nwucla_cpu", {"trainer.epochs": 20, "trainer.eval_every": 1, "trainer.work_dir": "runs/nwucla_cpu"}),
        ("nwucla_cpu_long", {"trainer.epochs": 65, "trainer.eval_every": 5, "trainer.work_dir": "runs/nwucla_cpu_long"}),
    ],
)
def test_nwucla_cpu_recipes_differ_from_reference_only_where_documented(name: str, expected: dict) -> None:
    """The CPU recipes keep the reference data pipeline, model and optimiser (configs/nwucla.yaml);
    only the schedule shape, EMA, precision, reporting and loader/work-dir settings change."""
    ref = _flat(config_to_dict(load_config(CONFIGS / "nwucla.yaml")))
    cpu = _flat(config_to_dict(load_config(CONFIGS / f"{name}.yaml")))
    changed = {k for k in ref if ref[k] != cpu[k]}
    allowed = {"name", "data.num_workers", "optim.schedule", "optim.min_lr", "trainer.ema_decay", "trainer.precision",
               "trainer.final_checkpoint"} | set(expected)
    assert changed <= allowed, changed - allowed
    assert (cpu["optim.schedule"], cpu["trainer.final_checkpoint"], cpu["trainer.precision"]) == ("cosine", "last", "bf16-mixed")
    assert cpu["trainer.ema_decay"] == pytest.approx(0.999)
    for key, value in expected.items():
        assert cpu[key] == value, key
