"""Skeleton-only export of a backbone: safetensors + JSON, ONNX, TorchScript.

Only the skeleton backbone is exported (inference needs nothing else, REFERENCE §7.9). Every file
is written to a temporary file in the target folder and moved into place with ``os.replace``,
so an interrupted export never leaves a half-written artefact under the final name.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mmcl.io import atomic_path

__all__ = ["export_backbone", "load_exported_backbone", "EXPORT_FORMAT_VERSION", "ONNX_OPSET"]

EXPORT_FORMAT_VERSION = 1
ONNX_OPSET = 18
BUILDER_KEYS = ("name", "num_classes", "layout", "num_persons", "in_channels", "drop_out")


def _write_atomic(final: Path, writer: Callable[[Path], None]) -> Path:
    with atomic_path(final) as tmp:
        writer(tmp)
    return final


def _builder_args(model: nn.Module) -> dict[str, Any]:
    args = getattr(model, "builder_args", None)
    if not isinstance(args, dict) or not all(k in args for k in BUILDER_KEYS[:-1]):
        raise ValueError("model has no builder_args; build it with mmcl.models.build_backbone")
    return {k: args[k] for k in BUILDER_KEYS if k in args}


def _export_onnx(model: nn.Module, example: torch.Tensor, path: Path) -> str:
    """ONNX with a dynamic batch axis: the dynamo exporter (torch default), else the TorchScript one."""
    errors = []
    try:
        batch = torch.export.Dim("batch", min=1, max=65536)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                model,
                (example,),
                dynamo=True,
                input_names=["x"],
                output_names=["logits"],
                dynamic_shapes={"x": {0: batch}},
                opset_version=ONNX_OPSET,
                verbose=False,
            )
        program.save(str(path))
        return "dynamo"
    except Exception as exc:  # noqa: BLE001 - fall back to the TorchScript exporter
        errors.append(f"dynamo: {type(exc).__name__}: {exc}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model,
                (example,),
                str(path),
                dynamo=False,
                input_names=["x"],
                output_names=["logits"],
                dynamic_axes={"x": {0: "batch"}, "logits": {0: "batch"}},
                opset_version=ONNX_OPSET,
            )
        return "torchscript"
    except Exception as exc:  # noqa: BLE001
        errors.append(f"torchscript: {type(exc).__name__}: {exc}")
    raise RuntimeError("ONNX export failed with both exporters: " + " | ".join(errors))


def export_backbone(
    model: nn.Module,
    out_dir: str | os.PathLike,
    *,
    example_shape: Sequence[int],
    meta: dict | None = None,
    formats: Sequence[str] = ("safetensors", "onnx", "torchscript"),
) -> dict[str, Path]:
    """Write a backbone's inference artefacts into ``out_dir``.

    Returns paths by kind: ``safetensors`` and ``json`` (weights + builder arguments and
    ``meta``), ``onnx`` (dynamic batch axis, input ``x`` N×C×T×V×M, output ``logits``) and
    ``torchscript`` (traced). ``example_shape`` (e.g. ``(1, 3, 64, 25, 2)``) fixes C, T, V, M
    of the traced graphs.
    """
    from safetensors.torch import save_file

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    builder = _builder_args(model)
    was_training = model.training
    device = next(model.parameters()).device
    model = model.eval()
    example = torch.randn(*example_shape, device=device)
    paths: dict[str, Path] = {}
    info: dict[str, Any] = {
        "format_version": EXPORT_FORMAT_VERSION,
        "builder": builder,
        "example_shape": list(example_shape),
        "parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "torch_version": torch.__version__,
        "meta": dict(meta or {}),
        "files": {},
    }
    try:
        if "safetensors" in formats:
            state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
            md = {"mmcl_builder": json.dumps(builder)}
            paths["safetensors"] = _write_atomic(out / "model.safetensors", lambda p: save_file(state, str(p), md))
            info["files"]["safetensors"] = "model.safetensors"
        with torch.no_grad():
            if "onnx" in formats:
                exporter: list[str] = []
                paths["onnx"] = _write_atomic(
                    out / "model.onnx", lambda p: exporter.append(_export_onnx(model, example, p))
                )
                info["files"]["onnx"] = "model.onnx"
                info["onnx_exporter"] = exporter[0]
                info["onnx_opset"] = ONNX_OPSET
            if "torchscript" in formats:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    traced = torch.jit.trace(model, (example,), check_trace=False)
                paths["torchscript"] = _write_atomic(out / "model.torchscript.pt", lambda p: torch.jit.save(traced, str(p)))
                info["files"]["torchscript"] = "model.torchscript.pt"
        text = json.dumps(info, indent=2, sort_keys=False) + "\n"
        paths["json"] = _write_atomic(out / "model.json", lambda p: p.write_text(text))
    finally:
        model.train(was_training)
    return paths


def load_exported_backbone(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> nn.Module:
    """Rebuild an exported backbone (folder, ``model.json`` or ``model.safetensors``), in eval mode."""
    from safetensors.torch import load_file

    from mmcl.models.build import build_backbone

    p = Path(path)
    folder = p if p.is_dir() else p.parent
    info = json.loads((folder / "model.json").read_text())
    builder = dict(info["builder"])
    name = builder.pop("name")
    model = build_backbone(name, **builder)
    state = load_file(str(folder / info["files"].get("safetensors", "model.safetensors")), device=str(map_location))
    model.load_state_dict(state, strict=True)
    return model.to(map_location).eval()
