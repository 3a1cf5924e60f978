"""Typed run configuration: dataclasses, YAML files and ``key=value`` overrides.

A run is fully described by :class:`Config`. YAML files under ``configs/`` set the values of one
benchmark; anything can be overridden from the command line with dotted keys
(``optim.base_lr=0.05``, ``data.stream=bone``). What runs is always visible in code: the config
holds plain values, never class paths.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mmcl.skeleton.streams import STREAMS

__all__ = [
    "Config",
    "DataConfig",
    "ModelConfig",
    "OptimConfig",
    "TrainerConfig",
    "CoLearningConfig",
    "ConfigError",
    "load_config",
    "apply_overrides",
    "config_to_dict",
    "config_from_dict",
    "flat_keys",
    "stream_work_dir",
]


class ConfigError(ValueError):
    """A configuration value or key is wrong (reported to the user as one line)."""


@dataclass
class DataConfig:
    """Where the skeletons come from and how a sample is made."""

    dataset: str = "custom"  # ntu60 | ntu120 | nwucla | synthetic | custom (informational + class names)
    path: str | None = None  # reference .npz, prepared benchmark folder, or NW-UCLA all_sqe folder
    train_split: str = "train"
    test_split: str = "test"
    layout: str = "ntu25"
    num_classes: int = 60
    num_persons: int = 2
    stream: str = "joint"  # joint | bone | joint_motion | bone_motion
    transform: str = "ntu"  # ntu: crop+resize+rotation (REFERENCE §3.1); ucla: REFERENCE §3.3
    window: int = 64
    p_interval_train: list[float] = field(default_factory=lambda: [0.5, 1.0])
    p_interval_test: list[float] = field(default_factory=lambda: [0.95])
    rotation: float = 0.3  # radians, train only (REFERENCE §3.1 random_rot theta; 2-D keypoints: in the image plane)
    flip: float = 0.0  # train only: probability of a left-right mirror (layout mirror pairs); not in the reference
    crop_min: float = 1.0  # ucla transform, train only: keep a random U(crop_min, 1) span of the frames (1 = off, the reference)
    centre: bool = False  # ntu transform: centre on J2 of the first frame (data not centred when prepared)
    channels: list[str] = field(default_factory=list)  # names; [] = x, y, z (3) or x, y (2); 2-D keypoints: [x, y, score]
    normalise: str = "none"  # 2-D keypoints: image | box | none, as prepared (mmcl prepare custom --normalise)
    image_size: list[float] = field(default_factory=list)  # 2-D keypoints: [width, height] for files that do not say
    repeat: int = 1  # NW-UCLA repeats the training list 5 times per epoch (REFERENCE §3.3)
    batch_size: int = 64
    test_batch_size: int = 64
    num_workers: int = 2
    val_fraction: float = 0.0  # >0: carve a stratified validation split from train for model selection
    val_seed: int = 0


@dataclass
class ModelConfig:
    backbone: str = "ctrgcn"  # ctrgcn | ctrs-gcn | hdgcn
    in_channels: int = 3
    drop_out: float = 0.0
    base_channels: int = 64  # CTR-GCN width of l1-l4 (REFERENCE §5.2); the demo uses a narrower model
    com: int | None = None  # hdgcn: hierarchy centre, 1-based joint (HD-GCN's CoM; ntu25 21/1/2, kinect20 3/1/2); None = default
    init_from: str | None = None  # fine-tune from a checkpoint (mmcl, official CTR-GCN or official MMCL)


@dataclass
class OptimConfig:
    """SGD recipe of REFERENCE §6 by default."""

    base_lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 4e-4
    warmup_epochs: int = 5
    schedule: str = "step"  # step (reference) | cosine
    lr_steps: list[int] = field(default_factory=lambda: [35, 55])
    lr_decay: float = 0.1
    min_lr: float = 0.0  # cosine floor


@dataclass
class TrainerConfig:
    epochs: int = 65
    seed: int = 1
    work_dir: str = "runs/run"
    accelerator: str = "auto"  # auto | cpu | gpu
    devices: Any = "auto"
    num_nodes: int = 1
    strategy: str = "auto"  # auto | ddp
    precision: str = "32-true"  # 32-true | bf16-mixed | 16-mixed
    compile: bool = False  # torch.compile the backbone
    channels_last: bool = False
    accumulate_grad_batches: int = 1
    eval_every: int = 1
    keep_eval_scores: bool = False  # also write each evaluation's scores to eval_scores/epoch_NNN.npz (per-epoch protocols)
    final_checkpoint: str = "best"  # best: selected on the eval split (reference); last: the final epoch
    ema_decay: float = 0.0  # >0: evaluate/report an exponential moving average of the weights (per step)
    log_every_n_steps: int = 20
    # also save last.ckpt inside an epoch once this many minutes passed since the last save (0: only at
    # epoch ends and on Ctrl-C/SIGTERM), so a killed run loses at most that much of an epoch
    checkpoint_minutes: float = 10.0
    progress: bool = True
    num_threads: int = 0  # >0: torch.set_num_threads
    limit_train_batches: Any = None  # int or float, for quick runs
    limit_val_batches: Any = None


@dataclass
class CoLearningConfig:
    """Multi-modality co-learning (FAM + FRM); off by default (plain backbone training)."""

    fam: bool = False
    frm: bool = False
    rgb_mode: str = "frozen"  # frozen: cached CNN features; trainable: CNN inside the step
    rgb_encoder: str = "inception_v3"  # inception_v3 | resnet34
    rgb_weights: str | None = None
    rgb_random_init: bool = False
    rgb_dir: str | None = None  # composites <name>.jpg (trainable mode)
    rgb_store: str | None = None  # feature store of CNN features (frozen mode)
    text_store: str | None = None  # feature store of text features (FRM)
    image_size: list[int] = field(default_factory=lambda: [299, 747])  # H×W: 800×320 composites, shorter side 299 (REFERENCE §7.2)
    lambda_contrastive: float = 0.1  # paper Table 6
    lambda_refine: float = 0.2  # paper Table 6
    tau: float = 0.4
    variant: str = "reference"  # reference | paper (contrastive loss form)
    gather_negatives: bool = False
    frm_channels: int = 2
    allow_missing: bool = False


@dataclass
class Config:
    name: str = "run"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    colearning: CoLearningConfig = field(default_factory=CoLearningConfig)

    def validate(self) -> "Config":
        """Check values that would otherwise fail deep inside training."""
        if self.data.stream not in STREAMS:
            raise ConfigError(f"unknown stream {self.data.stream!r}; choose from {', '.join(STREAMS)}")
        if self.data.transform not in ("ntu", "ucla"):
            raise ConfigError(f"data.transform must be 'ntu' or 'ucla', got {self.data.transform!r}")
        if not 0.0 < self.data.crop_min <= 1.0:
            raise ConfigError(f"data.crop_min is a share of the frames in (0, 1], got {self.data.crop_min}")
        if self.data.crop_min < 1.0 and self.data.transform != "ucla":
            raise ConfigError("data.crop_min applies to the ucla transform; the ntu transform crops with data.p_interval_train")
        if self.data.centre and self.data.transform != "ntu":
            raise ConfigError("data.centre applies to the ntu transform; the ucla transform centres by itself")
        if self.optim.schedule not in ("step", "cosine"):
            raise ConfigError(f"optim.schedule must be 'step' or 'cosine', got {self.optim.schedule!r}")
        if not 0.0 <= self.data.val_fraction < 1.0:
            raise ConfigError("data.val_fraction must be in [0, 1)")
        if self.trainer.final_checkpoint not in ("best", "last"):
            raise ConfigError("trainer.final_checkpoint must be 'best' or 'last'")
        if not 0.0 <= self.trainer.ema_decay < 1.0:
            raise ConfigError(f"trainer.ema_decay must be in [0, 1) (0 = off), got {self.trainer.ema_decay}")
        if not self.trainer.checkpoint_minutes >= 0.0:
            raise ConfigError(f"trainer.checkpoint_minutes must be >= 0 (0 = epoch ends only), got {self.trainer.checkpoint_minutes}")
        if self.model.com is not None and (self.model.backbone != "hdgcn" or isinstance(self.model.com, bool) or not isinstance(self.model.com, int)):
            raise ConfigError(f"model.com is the hdgcn hierarchy's centre joint (an integer); got {self.model.com!r} for {self.model.backbone}")
        if self.colearning.rgb_mode not in ("frozen", "trainable"):
            raise ConfigError("colearning.rgb_mode must be 'frozen' or 'trainable'")
        if self.colearning.variant not in ("reference", "paper"):
            raise ConfigError("colearning.variant must be 'reference' or 'paper'")
        return self


def _coerce(value: Any, current: Any, key: str) -> Any:
    """Parse a command-line string into the type of the current value."""
    if not isinstance(value, str):
        return value
    parsed = yaml.safe_load(value) if value != "" else None
    if isinstance(current, bool):
        if not isinstance(parsed, bool):
            raise ConfigError(f"{key} expects true/false, got {value!r}")
        return parsed
    if isinstance(current, int) and not isinstance(current, bool):
        if isinstance(parsed, (int, float)) and float(parsed).is_integer():
            return int(parsed)
        raise ConfigError(f"{key} expects an integer, got {value!r}")
    if isinstance(current, float):
        if isinstance(parsed, (int, float)) and not isinstance(parsed, bool):
            return float(parsed)
        raise ConfigError(f"{key} expects a number, got {value!r}")
    if isinstance(current, list):
        if isinstance(parsed, list):
            return parsed
        if isinstance(parsed, (int, float)):
            return [parsed]
        raise ConfigError(f"{key} expects a list like [0.5, 1.0], got {value!r}")
    if current is None or isinstance(current, str):
        return parsed if not isinstance(parsed, str) or current is None else value
    return parsed


def _set(section: Any, path: list[str], value: Any, full_key: str) -> None:
    name = path[0]
    names = {f.name for f in dataclasses.fields(section)}
    if name not in names:
        raise ConfigError(f"unknown config key {full_key!r} (valid here: {', '.join(sorted(names))})")
    current = getattr(section, name)
    if len(path) > 1:
        if not dataclasses.is_dataclass(current):
            raise ConfigError(f"config key {full_key!r}: {name!r} has no sub-keys")
        _set(current, path[1:], value, full_key)
        return
    if dataclasses.is_dataclass(current):
        if not isinstance(value, dict):
            raise ConfigError(f"config key {full_key!r} is a section; give a mapping")
        for k, v in value.items():
            _set(current, [k], v, f"{full_key}.{k}")
        return
    setattr(section, name, _coerce(value, current, full_key))


def apply_overrides(cfg: Config, overrides: dict[str, Any] | list[str]) -> Config:
    """Apply ``{"a.b": value}`` or ``["a.b=value", ...]`` overrides in place."""
    items: list[tuple[str, Any]] = []
    if isinstance(overrides, dict):
        items = list(overrides.items())
    else:
        for item in overrides:
            if "=" not in item:
                raise ConfigError(f"override {item!r} must look like key=value (e.g. optim.base_lr=0.05)")
            key, value = item.split("=", 1)
            items.append((key.strip(), value))
    for key, value in items:
        _set(cfg, key.split("."), value, key)
    return cfg


def config_from_dict(data: dict[str, Any]) -> Config:
    cfg = Config()
    for key, value in data.items():
        _set(cfg, [key], value, key)
    return cfg


def config_to_dict(cfg: Config) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def flat_keys(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested config dict as ``{"section.key": value}``, the dotted keys overrides use."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(flat_keys(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _read_yaml(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """Read a config file; ``base: other.yaml`` (relative to the file) is read first and overridden.

    Lets a variant (e.g. a faster CPU schedule) state only what differs from its benchmark config.
    """
    path = path.resolve()
    if path in seen:
        raise ConfigError(f"{path}: circular 'base' chain")
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping")
    base = data.pop("base", None)
    if base is None:
        return data
    merged = _read_yaml(path.parent / str(base), seen + (path,))
    _deep_update(merged, data)
    return merged


def _deep_update(target: dict[str, Any], update: dict[str, Any]) -> None:
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _deep_update(target[key], value)
        else:
            target[key] = value


def load_config(path: str | Path | None, overrides: list[str] | dict[str, Any] | None = None) -> Config:
    """Read a YAML config (or start from defaults) and apply overrides."""
    cfg = Config()
    if path is not None:
        cfg = config_from_dict(_read_yaml(Path(path)))
    if overrides:
        apply_overrides(cfg, overrides)
    return cfg.validate()


def stream_work_dir(work_dir: str, stream: str) -> str:
    """Run directory of one stream of a benchmark config: ``<work_dir>_<stream>`` (``mmcl train
    --stream`` uses it unless a work dir is given), so the four streams never share a directory."""
    return f"{work_dir.rstrip('/')}_{stream}" if work_dir else stream
