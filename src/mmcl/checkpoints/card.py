"""The model card: everything a trained skeleton model needs to be rebuilt and fed correctly.

Written into every training checkpoint (``mmcl_card``) and every exported model (``model.json``,
ONNX ``metadata_props``), read back by :func:`mmcl.checkpoints.open_checkpoint`. It holds the
backbone and its builder arguments, the input contract (:class:`~mmcl.datasets.pipeline.InputSpec`:
layout, persons, channels, **stream**, test transform), classes and their names, the dataset, the
mmcl version and a short training summary. Files without a card (official CTR-GCN / MMCL weights,
older mmcl checkpoints) get one inferred from what they hold; ``source`` says how it was obtained.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

from torch import nn

import mmcl
from mmcl.config import Config, config_from_dict, config_to_dict
from mmcl.datasets import DATASET_SHAPES, class_names, normalize_dataset
from mmcl.datasets.pipeline import InputSpec, layout_title
from mmcl.models import BACKBONES, build_backbone
from mmcl.models.blocks import REFERENCE_BASE_CHANNELS
from mmcl.models.hierarchy import default_com

__all__ = ["CARD_VERSION", "CARD_SOURCES", "ModelCard", "CardMismatchError", "default_class_names", "config_hash"]

CARD_VERSION = 1
# how a card was obtained: written by mmcl with the weights; rebuilt from an older checkpoint's config;
# official weights + --dataset; official weights, shape read off the state dict
CARD_SOURCES = ("card", "config", "dataset", "inferred")


class CardMismatchError(ValueError):
    """A model does not fit what it is asked to do (data, flags, config); the message says both sides."""


def default_class_names(dataset: str | None, num_classes: int) -> list[str] | None:
    """The class names mmcl ships for a reference ``dataset`` when they fit ``num_classes``; else None."""
    ds = normalize_dataset(dataset)
    if ds in DATASET_SHAPES and DATASET_SHAPES[ds]["num_classes"] == num_classes:
        return class_names(ds)
    return None  # other datasets: the names come from the prepared folder (training puts them in the card)


def config_hash(config: dict[str, Any]) -> str:
    """Short stable hash of a resolved run configuration (identifies the recipe a model came from)."""
    text = json.dumps(config, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


@dataclass
class ModelCard:
    """What a trained backbone is and what it expects. ``builder_args()`` + ``input`` rebuild and feed it."""

    backbone: str
    num_classes: int
    input: InputSpec
    base_channels: int = REFERENCE_BASE_CHANNELS
    drop_out: float = 0.0
    com: int | None = None  # hdgcn: the hierarchy's centre joint (1-based); None elsewhere
    class_names: list[str] | None = None
    dataset: str | None = None
    benchmark: str | None = None
    training: dict[str, Any] = field(default_factory=dict)  # config hash, epochs, epoch, metrics at save time
    mmcl_version: str = mmcl.__version__
    source: str = "card"

    def __post_init__(self) -> None:
        if self.class_names is not None and len(self.class_names) != self.num_classes:
            raise ValueError(f"{len(self.class_names)} class names for a {self.num_classes}-class model")
        if self.source not in CARD_SOURCES:
            raise ValueError(f"unknown card source {self.source!r}")
        if self.backbone == "hdgcn" and self.com is None:
            self.com = default_com(self.input.layout)
        elif self.backbone != "hdgcn":
            self.com = None

    # ------------------------------------------------------------------ model
    def builder_args(self) -> dict[str, Any]:
        """Keyword arguments of :func:`mmcl.models.build_backbone` (besides the name)."""
        args: dict[str, Any] = {
            "num_classes": self.num_classes,
            "layout": self.input.layout,
            "num_persons": self.input.num_persons,
            "in_channels": self.input.in_channels,
            "drop_out": self.drop_out,
        }
        if self.base_channels != REFERENCE_BASE_CHANNELS:
            args["base_channels"] = self.base_channels
        if self.com is not None:
            args["com"] = self.com
        return args

    def build(self) -> nn.Module:
        """A freshly initialised backbone of this card's shape."""
        return build_backbone(self.backbone, **self.builder_args())

    def label_name(self, label: int) -> str | None:
        return self.class_names[label] if self.class_names else None

    # ------------------------------------------------------------------ words
    def describe(self) -> str:
        """One line, e.g. "a 10-class Kinect-20 bone-stream ctrgcn model (1 person)"."""
        i = self.input
        people = f"{i.num_persons} person{'s' if i.num_persons != 1 else ''}"
        return f"a {self.num_classes}-class {layout_title(i.layout)} {i.stream.replace('_', '-')}-stream {self.backbone} model ({people})"

    def check_data(self, *, layout: str, num_classes: int, num_persons: int, where: str) -> None:
        """Refuse data this model cannot be evaluated on, in one line naming both sides."""
        i = self.input
        if (layout, num_classes, num_persons) == (i.layout, self.num_classes, i.num_persons):
            return
        people = f"{num_persons} person{'s' if num_persons != 1 else ''}"
        raise CardMismatchError(
            f"this checkpoint is {self.describe()}; the data ({where}) is {layout_title(layout)} with "
            f"{num_classes} classes and {people}"
        )

    # ------------------------------------------------------------------ (de)serialisation
    def to_dict(self) -> dict[str, Any]:
        return {
            "card_version": CARD_VERSION,
            "backbone": self.backbone,
            "num_classes": self.num_classes,
            "base_channels": self.base_channels,
            "drop_out": self.drop_out,
            "com": self.com,
            "input": self.input.to_dict(),
            "class_names": list(self.class_names) if self.class_names else None,
            "dataset": self.dataset,
            "benchmark": self.benchmark,
            "training": dict(self.training),
            "mmcl_version": self.mmcl_version,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ModelCard":
        """Inverse of :meth:`to_dict`; raises ValueError naming what is missing or wrong."""
        if not isinstance(data, dict):
            raise ValueError(f"model card must be a mapping, got {type(data).__name__}")
        version = int(data.get("card_version", 0))
        if version > CARD_VERSION:
            raise ValueError(f"model card version {version} is newer than this mmcl reads ({CARD_VERSION}); upgrade mmcl")
        missing = [k for k in ("backbone", "num_classes", "input") if k not in data]
        if missing:
            raise ValueError(f"model card lacks {', '.join(missing)}")
        if data["backbone"] not in BACKBONES:
            raise ValueError(f"unknown backbone {data['backbone']!r}; this mmcl builds {', '.join(BACKBONES)}")
        for key, most in (("num_classes", 100_000), ("base_channels", 4096)):  # bounds: beyond any real model
            value = data.get(key, 1)
            if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= most:
                raise ValueError(f"{key} must be an integer in 1..{most}, got {value!r}")
        drop_out = data.get("drop_out", 0.0)
        if isinstance(drop_out, bool) or not isinstance(drop_out, int | float) or not 0.0 <= drop_out < 1.0:
            raise ValueError(f"drop_out must be a fraction in [0, 1), got {drop_out!r}")
        com = data.get("com")
        if com is not None and (isinstance(com, bool) or not isinstance(com, int) or not 1 <= com <= 1000):
            raise ValueError(f"com must be a 1-based joint number, got {com!r}")
        return cls(
            backbone=str(data["backbone"]),
            num_classes=int(data["num_classes"]),
            input=InputSpec.from_dict(dict(data["input"])),
            base_channels=int(data.get("base_channels", REFERENCE_BASE_CHANNELS)),
            drop_out=float(data.get("drop_out", 0.0)),
            com=com,
            class_names=list(data["class_names"]) if data.get("class_names") else None,
            dataset=data.get("dataset"),
            benchmark=data.get("benchmark"),
            training=dict(data.get("training") or {}),
            mmcl_version=str(data.get("mmcl_version", "unknown")),
            source="card",
        )

    @classmethod
    def from_config(cls, cfg: Config | dict[str, Any], *, training: dict[str, Any] | None = None, source: str = "card") -> "ModelCard":
        """The card of a model trained with ``cfg`` (a :class:`Config` or its dict form)."""
        cfg_obj = cfg if isinstance(cfg, Config) else config_from_dict(cfg)
        d, m = cfg_obj.data, cfg_obj.model
        spec = InputSpec.from_config(cfg_obj)
        summary = {"config_hash": config_hash(config_to_dict(cfg_obj)), "name": cfg_obj.name, "epochs": cfg_obj.trainer.epochs}
        summary.update(training or {})
        return cls(
            backbone=m.backbone,
            num_classes=d.num_classes,
            input=spec,
            base_channels=m.base_channels,
            drop_out=m.drop_out,
            com=m.com,
            class_names=default_class_names(d.dataset, d.num_classes),
            dataset=normalize_dataset(d.dataset),
            benchmark=_benchmark_of(d.path),
            training=summary,
            source=source,
        )

    def apply_to_config(self, cfg: Config) -> Config:
        """Set the model and input keys of ``cfg`` from this card (data path, loaders, precision stay)."""
        cfg.model.backbone = self.backbone
        cfg.model.in_channels = self.input.in_channels
        cfg.model.base_channels = self.base_channels
        cfg.model.drop_out = self.drop_out
        cfg.model.com = self.com
        d = cfg.data
        d.layout, d.num_classes, d.num_persons = self.input.layout, self.num_classes, self.input.num_persons
        d.stream, d.transform, d.window = self.input.stream, self.input.transform, self.input.window
        d.p_interval_test = list(self.input.p_interval)
        d.centre = self.input.centre
        d.channels, d.normalise, d.image_size = list(self.input.channels), self.input.normalise, list(self.input.image_size)
        if self.dataset:
            d.dataset = self.dataset
        return cfg


def _benchmark_of(path: str | None) -> str | None:
    """Benchmark folder name of a data path (``.../ntu120/xsub`` -> ``xsub``), None when unknown."""
    if not path:
        return None
    return PurePath(str(path).rstrip("/")).name or None
