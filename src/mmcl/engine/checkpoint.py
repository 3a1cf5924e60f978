"""Checkpoint files: atomic writes, and one loader for every checkpoint a user may hold.

``load_backbone_from_checkpoint`` accepts
- mmcl training checkpoints (Lightning ``.ckpt``; the backbone lives under ``backbone.``),
- mmcl exported artefacts (``model.safetensors`` + ``model.json``),
- official CTR-GCN checkpoints and official MMCL checkpoints (reference key names; the MMCL
  extras — FRM, FAM, Inception — are ignored for skeleton-only use).
All are read with ``torch.load(weights_only=True)`` or safetensors: no arbitrary pickle.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

__all__ = ["atomic_checkpoint_io", "CheckpointError", "read_checkpoint", "load_backbone_from_checkpoint", "checkpoint_builder_args"]


class CheckpointError(ValueError):
    """A checkpoint file is missing, unreadable or does not fit the model."""


def atomic_checkpoint_io() -> Any:
    """Lightning CheckpointIO that saves to a temp file in the same folder, fsyncs, then renames.

    Built on demand so that reading checkpoints (predict, export, test) never imports Lightning.
    """
    from lightning.fabric.plugins import TorchCheckpointIO

    from mmcl.engine.metrics import atomic_write_bytes

    class AtomicCheckpointIO(TorchCheckpointIO):
        def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
            import io

            buf = io.BytesIO()
            torch.save(checkpoint, buf)
            atomic_write_bytes(path, buf.getvalue())

        def load_checkpoint(self, path: Any, map_location: Any = None, weights_only: bool | None = None) -> dict[str, Any]:
            return read_checkpoint(path, map_location=map_location or "cpu")

    return AtomicCheckpointIO()


def read_checkpoint(path: str | Path, map_location: Any = "cpu") -> dict[str, Any]:
    """``torch.load`` with ``weights_only=True`` and a clear error naming the file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure is a bad file for the user
        raise CheckpointError(f"{path}: cannot read checkpoint safely ({type(exc).__name__}: {str(exc).splitlines()[0]})") from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: expected a dict of tensors, got {type(obj).__name__}")
    return obj


def _exported_paths(path: Path) -> tuple[Path, Path] | None:
    if path.is_dir():
        st, js = path / "model.safetensors", path / "model.json"
    elif path.suffix == ".safetensors":
        st, js = path, path.with_suffix(".json")
    else:
        return None
    return (st, js) if st.is_file() and js.is_file() else None


def checkpoint_builder_args(path: str | Path) -> dict[str, Any] | None:
    """Builder arguments stored with an mmcl checkpoint (None for official checkpoints)."""
    path = Path(path)
    exported = _exported_paths(path)
    if exported:
        meta = json.loads(exported[1].read_text())
        meta = meta.get("builder", meta)  # model.json nests the builder arguments under "builder"
        return {k: meta[k] for k in ("name", "num_classes", "layout", "num_persons", "in_channels", "base_channels") if k in meta}
    ckpt = read_checkpoint(path)
    cfg = ckpt.get("mmcl_config")
    if not cfg:
        return None
    return {
        "name": cfg["model"]["backbone"],
        "num_classes": cfg["data"]["num_classes"],
        "layout": cfg["data"]["layout"],
        "num_persons": cfg["data"]["num_persons"],
        "in_channels": cfg["model"]["in_channels"],
        **({"base_channels": cfg["model"]["base_channels"]} if cfg["model"].get("base_channels", 64) != 64 else {}),
    }


def load_backbone_from_checkpoint(model: nn.Module, path: str | Path) -> str:
    """Load backbone weights from any supported checkpoint; returns the detected kind."""
    from mmcl.models import load_reference_state_dict

    path = Path(path)
    exported = _exported_paths(path)
    if exported:
        from safetensors.torch import load_file

        _load_strict(model, load_file(str(exported[0])), path)
        return "mmcl-export"
    ckpt = read_checkpoint(path)
    if "state_dict" in ckpt and any(k.startswith("backbone.") for k in ckpt["state_dict"]):
        sd = {k[len("backbone."):]: v for k, v in ckpt["state_dict"].items() if k.startswith("backbone.")}
        _load_strict(model, sd, path)
        return "mmcl-train"
    sd = ckpt
    for key in ("state_dict", "model", "weights"):
        if isinstance(sd.get(key), dict):
            sd = sd[key]
            break
    sd = {k[len("module."):] if k.startswith("module.") else k: v for k, v in sd.items()}
    from mmcl.models import split_mmcl_checkpoint

    backbone_sd, extras = split_mmcl_checkpoint(sd)
    try:
        load_reference_state_dict(model, backbone_sd)
    except ValueError as exc:
        raise CheckpointError(f"{path}: {exc}") from None
    return "official-mmcl" if extras else "official-ctrgcn"


def _load_strict(model: nn.Module, sd: dict[str, torch.Tensor], path: Path) -> None:
    from mmcl.models.reference import state_dict_problems

    problems = state_dict_problems({k: tuple(v.shape) for k, v in model.state_dict().items()}, sd)
    if problems:
        raise CheckpointError(f"{path}: checkpoint does not fit the model ({problems})")
    model.load_state_dict(sd)
