"""The one reader of user checkpoint files: every command that loads a model comes through here.

:func:`open_checkpoint` reads a file (or an exported folder) once and returns an
:class:`OpenedCheckpoint`: its kind, its :class:`~mmcl.checkpoints.card.ModelCard`, the backbone
weights under mmcl's key names, and the extras (co-learning heads of an mmcl run, the FRM/FAM/
Inception weights of an official MMCL file). Kinds:

- ``mmcl-train``: Lightning ``.ckpt`` written by ``mmcl train`` (card in ``mmcl_card``; older files
  have only ``mmcl_config``, from which the card is rebuilt);
- ``mmcl-export``: ``model.safetensors`` + ``model.json`` (folder or file) written by ``mmcl export``;
- ``official-ctrgcn`` / ``official-hdgcn`` / ``official-mmcl``: official weights (reference key names, optional
  ``module.`` prefix / ``{"state_dict"|"model": ...}`` wrapper); the card is inferred from the
  weights plus ``dataset=`` / ``stream=`` / a config.

Everything is read with ``torch.load(weights_only=True)`` or safetensors: no arbitrary pickle runs.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

from mmcl.checkpoints.card import CardMismatchError, ModelCard, default_class_names
from mmcl.checkpoints.official import (
    infer_backbone_shape,
    official_key,
    split_mmcl_checkpoint,
    state_dict_problems,
    to_our_keys,
    unwrap_checkpoint,
)
from mmcl.config import Config
from mmcl.datasets import DATASET_SHAPES, normalize_dataset
from mmcl.datasets.pipeline import InputSpec
from mmcl.formats.checkpoint_file import CheckpointError, load_torchscript, read_checkpoint
from mmcl.formats.errors import first_line
from mmcl.models.blocks import REFERENCE_BASE_CHANNELS

__all__ = ["CheckpointError", "OpenedCheckpoint", "read_checkpoint", "load_torchscript", "open_checkpoint", "exported_files", "check_finite_weights", "CARD_KEY", "ONNX_CARD_KEY"]

CARD_KEY = "mmcl_card"  # training checkpoints: the card as a dict
ONNX_CARD_KEY = "mmcl_card"  # exported ONNX: metadata_props entry holding the card as JSON
EXPORT_JSON, EXPORT_WEIGHTS = "model.json", "model.safetensors"
_FLAG_NAMES = {"layout": "--layout", "num_classes": "--num-classes", "num_persons": "--persons", "stream": "--stream"}


def exported_files(path: Path) -> tuple[Path, Path] | None:
    """(model.safetensors, model.json) of an exported model given as its folder or either file."""
    if path.is_dir():
        st, js = path / EXPORT_WEIGHTS, path / EXPORT_JSON
    elif path.suffix == ".safetensors":
        st, js = path, path.with_suffix(".json")
    elif path.name == EXPORT_JSON:
        st, js = path.with_name(EXPORT_WEIGHTS), path
    else:
        return None
    return (st, js) if st.is_file() and js.is_file() else None


@dataclass
class OpenedCheckpoint:
    """One checkpoint file, read once: kind, card, backbone weights (mmcl key names) and extras."""

    path: Path
    kind: str
    card: ModelCard
    state_dict: dict[str, torch.Tensor]
    heads_state: dict[str, torch.Tensor] = field(default_factory=dict)  # mmcl run: heads.* without the prefix
    official_state: dict[str, torch.Tensor] = field(default_factory=dict)  # official file: every key (backbone + MMCL extras)
    files: dict[str, Path] = field(default_factory=dict)  # exported model: onnx / torchscript files
    notes: list[str] = field(default_factory=list)  # things the user should know (printed by the CLI)

    def load_into(self, model: nn.Module) -> None:
        """Strictly load the backbone weights into ``model``; a misfit names the card and the problems."""
        target = getattr(model, "_orig_mod", model)
        problems = state_dict_problems({k: tuple(v.shape) for k, v in target.state_dict().items()}, self.state_dict)
        if problems:
            raise CardMismatchError(f"{self.path}: {self.card.describe()} does not fit the model being built ({problems})")
        target.load_state_dict(self.state_dict)

    def build_model(self, device: str | torch.device = "cpu") -> nn.Module:
        """The card's backbone with these weights, in eval mode."""
        model = self.card.build()
        self.load_into(model)
        return model.to(device).eval()

    def _export_file(self, kind: str) -> Path:
        if self.kind != "mmcl-export":
            raise CheckpointError(f"{self.path}: the {kind} runtime needs an exported model folder (mmcl export), not a {self.kind} checkpoint")
        if kind not in self.files:
            raise CheckpointError(f"{self.path}: the export holds no {kind} file (re-export with --{kind})")
        return self.files[kind]

    def onnx_session(self) -> Any:
        """An onnxruntime session of the exported ONNX graph (input: joints after the test transform)."""
        path = self._export_file("onnx")
        try:
            import onnxruntime as ort
        except ImportError:
            raise CheckpointError("the onnx runtime needs onnxruntime: pip install 'mmcl[export]'") from None
        try:
            return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types
            raise CheckpointError(f"{path}: unreadable ONNX model ({first_line(exc, limit=None)})") from None

    def torchscript_module(self, device: str | torch.device = "cpu") -> nn.Module:
        """The exported TorchScript graph (input: joints after the test transform), in eval mode."""
        return load_torchscript(self._export_file("torchscript"), device)


def _exported(path: Path, st: Path, js: Path) -> OpenedCheckpoint:
    try:
        info = json.loads(js.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise CheckpointError(f"{js}: unreadable export description ({first_line(exc, limit=None)})") from None
    if not isinstance(info, dict) or not isinstance(info.get("files", {}), dict):
        raise CheckpointError(f"{js}: not an mmcl export description (a JSON object with card and files)")
    try:
        state = load_file(str(st))
    except (OSError, SafetensorError) as exc:
        raise CheckpointError(f"{st}: unreadable safetensors file ({first_line(exc, limit=None)})") from None
    try:
        if "card" in info:
            card = ModelCard.from_dict(info["card"])
        else:  # exports of mmcl < card: builder arguments + meta
            card = _legacy_export_card(info)
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
        raise CheckpointError(f"{js}: invalid model card ({first_line(exc, limit=None)})") from None
    folder = js.parent
    files = {kind: folder / name for kind, name in (info.get("files") or {}).items() if kind in ("onnx", "torchscript") and (folder / name).is_file()}
    return OpenedCheckpoint(path, "mmcl-export", card, dict(state), files=files)


def _legacy_export_card(info: dict[str, Any]) -> ModelCard:
    builder, meta = dict(info["builder"]), dict(info.get("meta") or {})
    layout = builder["layout"]
    spec = InputSpec.defaults_for(layout, int(builder["num_persons"]), int(builder.get("in_channels", 3)))
    if meta.get("transform"):
        spec = InputSpec(spec.layout, spec.num_persons, spec.in_channels, "joint", meta["transform"],
                         int(meta.get("window") or spec.window), tuple(meta.get("p_interval") or spec.p_interval))
    ds = normalize_dataset(meta.get("dataset"))
    n = int(builder["num_classes"])
    return ModelCard(builder["name"], n, spec, int(meta.get("base_channels") or REFERENCE_BASE_CHANNELS),
                     com=builder.get("com"), class_names=default_class_names(ds, n), dataset=ds, source="config")


def _training_checkpoint(path: Path, obj: dict[str, Any]) -> OpenedCheckpoint:
    sd = obj["state_dict"]
    backbone = OrderedDict((k[len("backbone."):], v) for k, v in sd.items() if k.startswith("backbone."))
    heads = OrderedDict((k[len("heads."):], v) for k, v in sd.items() if k.startswith("heads."))
    notes: list[str] = []
    try:
        if isinstance(obj.get(CARD_KEY), dict):
            card = ModelCard.from_dict(obj[CARD_KEY])
        elif isinstance(obj.get("mmcl_config"), dict):
            card = ModelCard.from_config(obj["mmcl_config"], source="config")
        else:
            shape = infer_backbone_shape({official_key(k): v for k, v in backbone.items()})
            card = _inferred_card(shape, None, None)
            notes.append(f"{path}: no model card or config; shape read off the weights, joint stream and the layout's reference transform assumed")
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: invalid model card ({first_line(exc, limit=None)})") from None
    return OpenedCheckpoint(path, "mmcl-train", card, dict(backbone), heads_state=dict(heads), notes=notes)


def _inferred_card(shape: dict[str, Any], dataset: str | None, spec: InputSpec | None, source: str = "inferred") -> ModelCard:
    layout, persons, channels = str(shape["layout"]), int(shape["num_persons"]), int(shape["in_channels"])
    if spec is None:
        spec = InputSpec.defaults_for(layout, persons, channels)
    n = int(shape["num_classes"])
    return ModelCard(
        str(shape["name"]), n, spec, int(shape.get("base_channels", REFERENCE_BASE_CHANNELS)),
        com=shape.get("com"), class_names=default_class_names(dataset, n), dataset=dataset, source=source,
    )


def _official(path: Path, obj: dict[str, Any], hints: dict[str, Any], dataset: str | None, config: Config | None) -> OpenedCheckpoint:
    try:
        sd = unwrap_checkpoint(obj)
        backbone_sd, extras = split_mmcl_checkpoint(sd)
        shape = infer_backbone_shape(backbone_sd)
    except ValueError as exc:
        raise CheckpointError(f"{path}: {exc}; pass --dataset or --layout/--num-classes/--persons") from None
    wanted = {**(DATASET_SHAPES[dataset] if dataset else {}), **{k: v for k, v in hints.items() if k != "stream"}}
    for key, value in wanted.items():
        if shape[key] != value:
            given = _FLAG_NAMES[key] if key in hints else f"--dataset {dataset}"
            raise CardMismatchError(f"{path}: the checkpoint has {key} = {shape[key]}, but {given} asks for {value}")
    layout, persons, channels = str(shape["layout"]), int(shape["num_persons"]), int(shape["in_channels"])
    if config is not None:  # the user's config says how the data was made
        d = config.data
        spec = InputSpec(layout, persons, channels, hints.get("stream") or d.stream, d.transform, d.window, tuple(d.p_interval_test))
        dataset = dataset or normalize_dataset(d.dataset)
    else:
        spec = InputSpec.defaults_for(layout, persons, channels, hints.get("stream") or "joint")
    source = "dataset" if dataset else "inferred"
    if dataset is None:  # the reference datasets are the only candidates for official weights
        dataset = next((k for k, s in DATASET_SHAPES.items() if (s["num_classes"], s["layout"]) == (shape["num_classes"], layout)), None)
    card = _inferred_card(shape, dataset, spec, source)
    model = card.build()
    try:
        ours = to_our_keys(model, backbone_sd)
    except ValueError as exc:
        raise CheckpointError(f"{path}: {exc}") from None
    kind = "official-mmcl" if extras else ("official-hdgcn" if card.backbone == "hdgcn" else "official-ctrgcn")
    notes = [] if hints.get("stream") or config is not None else [
        f"{path}: official weights do not say their stream; assuming joint (pass --stream for a bone or motion model)"
    ]
    return OpenedCheckpoint(path, kind, card, dict(ours), official_state=dict(sd), notes=notes)


def _check_hints(opened: OpenedCheckpoint, hints: dict[str, Any], dataset: str | None) -> None:
    """Flags given for a file that carries its own card must agree with it."""
    card = opened.card
    have = {"layout": card.input.layout, "num_classes": card.num_classes, "num_persons": card.input.num_persons, "stream": card.input.stream}
    if dataset:
        for key, value in DATASET_SHAPES[dataset].items():
            if have[key] != value:
                raise CardMismatchError(f"{opened.path}: the checkpoint is {card.describe()}, but --dataset {dataset} means {key} = {value}")
    for key, value in hints.items():
        if have[key] != value:
            raise CardMismatchError(f"{opened.path}: the checkpoint is {card.describe()}, but {_FLAG_NAMES[key]} asks for {value}")


def check_finite_weights(state: dict[str, torch.Tensor], where: str | Path) -> None:
    """Refuse weights holding NaN/inf: they predict ``nan%`` for every input (a diverged training)."""
    bad = [k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise CheckpointError(
            f"{where}: {len(bad)} weight tensor(s) hold NaN or infinite values (first: {bad[0]}); "
            "the training that wrote it diverged"
        )


def open_checkpoint(
    path: str | Path,
    *,
    dataset: str | None = None,
    stream: str | None = None,
    layout: str | None = None,
    num_classes: int | None = None,
    num_persons: int | None = None,
    config: Config | None = None,
) -> OpenedCheckpoint:
    """Read any supported checkpoint once (module docstring) and describe it with a card.

    Files with a card must agree with the explicit arguments (else :class:`CardMismatchError`
    in one line); for official weights the arguments (and ``config``'s data section) fill in what
    the weights cannot say: dataset, stream, test transform.
    """
    path = Path(path)
    dataset = normalize_dataset(dataset)
    if dataset is not None and dataset not in DATASET_SHAPES:
        raise ValueError(f"unknown dataset {dataset!r}; choose from {sorted(DATASET_SHAPES)}")
    hints = {k: v for k, v in (("layout", layout), ("num_classes", num_classes), ("num_persons", num_persons), ("stream", stream)) if v is not None}
    if not path.exists():
        raise CheckpointError(f"checkpoint not found: {path}")
    exported = exported_files(path)
    if exported is not None:
        opened = _exported(path, *exported)
    elif path.is_dir():
        raise CheckpointError(f"{path}: a folder that holds no exported model ({EXPORT_JSON} + {EXPORT_WEIGHTS})")
    else:
        obj = read_checkpoint(path)
        if isinstance(obj.get("state_dict"), dict) and any(str(k).startswith("backbone.") for k in obj["state_dict"]):
            opened = _training_checkpoint(path, obj)
        else:
            opened = _official(path, obj, hints, dataset, config)
    if opened.kind.startswith("mmcl"):
        _check_hints(opened, hints, dataset)
        if config is not None:
            _note_config_differences(opened, config)
    check_finite_weights(opened.state_dict, opened.path)
    return opened


def _note_config_differences(opened: OpenedCheckpoint, config: Config) -> None:
    card, d = opened.card, config.data
    ours = (card.input.stream, card.input.transform, card.input.window)
    theirs = (d.stream, d.transform, d.window)
    if ours != theirs:
        opened.notes.append(
            f"using the checkpoint's input ({card.input.describe()}); the config's stream/transform/window "
            f"({d.stream}, {d.transform}, {d.window}) are ignored"
        )
