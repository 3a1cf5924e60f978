"""Skeleton-only export of a trained model: safetensors + JSON (with the model card), ONNX, TorchScript.

Only the skeleton backbone is exported (inference needs nothing else, REFERENCE §7.9). What the
files expect is stated in the model card (``model.json`` → ``card``; ONNX ``metadata_props`` →
``mmcl_card``):

- ``model.safetensors``: backbone weights; their input is the card's stream (``mmcl predict``
  prepares it with :meth:`~mmcl.datasets.pipeline.InputSpec.prepare`);
- ``model.onnx`` / ``model.torchscript.pt``: graphs whose input ``x`` (N×C×T×V×M, dynamic N) is the
  **joint coordinates after the test transform**; the graph converts them to the stream itself, so a
  deployment needs no stream code (``graph_input`` in ``model.json``).

The files are written into a temporary folder beside the target, which then replaces the target
as a whole (:func:`mmcl.io.staged_folder`): a kill or a full disk leaves the old export intact, and
the folder never pairs a new description with stale graphs. A folder holding other files is refused.
"""

from __future__ import annotations

import importlib
import json
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch import nn

from mmcl.checkpoints import ModelCard, open_checkpoint
from mmcl.checkpoints.reader import EXPORT_JSON, EXPORT_WEIGHTS, ONNX_CARD_KEY, check_finite_weights
from mmcl.io import check_output_folder, staged_folder
from mmcl.models import cost_summary
from mmcl.skeleton.layouts import get_layout
from mmcl.skeleton.streams import to_stream

__all__ = [
    "export_backbone",
    "export_checkpoint",
    "onnx_export_available",
    "StreamInput",
    "EXPORT_FORMAT_VERSION",
    "ONNX_OPSET",
    "ONNX_EXPORTERS",
    "ONNX_EXTRA_HINT",
    "GRAPH_INPUT",
]

EXPORT_FORMAT_VERSION = 2  # 2: the model card replaces builder + meta
ONNX_OPSET = 18
ONNX_EXTRA_HINT = "pip install 'mmcl[export]'"
GRAPH_INPUT = "joint coordinates after the test transform (N×C×T×V×M); the graph applies the stream"
FILE_NAMES = {"safetensors": EXPORT_WEIGHTS, "onnx": "model.onnx", "torchscript": "model.torchscript.pt"}


class StreamInput(nn.Module):
    """Backbone preceded by the stream conversion, so an exported graph takes joint coordinates.

    Uses :func:`mmcl.skeleton.streams.to_stream`, the function the data pipeline uses (its torch
    path is traceable: one gather for bones, a shifted difference for motion).
    """

    def __init__(self, backbone: nn.Module, stream: str, layout: str) -> None:
        super().__init__()
        self.backbone = backbone
        self.stream = stream
        self.layout = get_layout(layout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(to_stream(x, self.stream, self.layout))


def _importable(module: str) -> bool:
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def onnx_export_available() -> bool:
    """True when the ``onnx`` package (needed by both torch ONNX exporters) can be imported."""
    return _importable("onnx")


ONNX_EXPORTERS = ("auto", "dynamo", "torchscript")


def _export_onnx(model: nn.Module, example: torch.Tensor, path: Path, exporter: str = "auto") -> str:
    """ONNX with a dynamic batch axis: the dynamo exporter (torch's default; needs onnxscript), else
    the TorchScript-based one (``exporter`` forces either; the latter is ~15× faster on a small model)."""
    if exporter not in ONNX_EXPORTERS:
        raise ValueError(f"unknown ONNX exporter {exporter!r}; choose from {', '.join(ONNX_EXPORTERS)}")
    errors = []
    if exporter != "torchscript" and _importable("onnxscript"):
        try:
            batch = torch.export.Dim("batch", min=1, max=65536)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                program = torch.onnx.export(
                    model, (example,), dynamo=True, input_names=["x"], output_names=["logits"],
                    dynamic_shapes={"x": {0: batch}}, opset_version=ONNX_OPSET, verbose=False,
                )
            program.save(str(path))
            return "dynamo"
        except Exception as exc:  # noqa: BLE001 - fall back to the TorchScript exporter
            errors.append(f"dynamo: {type(exc).__name__}: {exc}")
    elif exporter == "dynamo":
        raise ValueError(f"the dynamo ONNX exporter needs onnxscript: {ONNX_EXTRA_HINT}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model, (example,), str(path), dynamo=False, input_names=["x"], output_names=["logits"],
                dynamic_axes={"x": {0: "batch"}, "logits": {0: "batch"}}, opset_version=ONNX_OPSET,
            )
        return "torchscript"
    except Exception as exc:  # noqa: BLE001
        errors.append(f"torchscript: {type(exc).__name__}: {exc}")
    raise RuntimeError("ONNX export failed with both exporters: " + " | ".join(errors))


def _add_onnx_metadata(path: Path, entries: dict[str, str]) -> None:
    import onnx

    proto = onnx.load(str(path))
    for key, value in entries.items():
        prop = proto.metadata_props.add()
        prop.key, prop.value = key, value
    onnx.save(proto, str(path))


def export_backbone(
    model: nn.Module,
    out_dir: str | os.PathLike,
    *,
    card: ModelCard,
    formats: Sequence[str] = ("safetensors", "onnx", "torchscript"),
    onnx_exporter: str = "auto",
) -> dict[str, Path]:
    """Write a backbone's inference artefacts (module docstring) into ``out_dir``; returns paths by kind."""

    unknown = sorted(set(formats) - set(FILE_NAMES))
    if unknown:
        raise ValueError(f"unknown export formats {unknown}; choose from {sorted(FILE_NAMES)}")
    out = Path(out_dir)
    if out.is_dir():
        foreign = sorted(p.name for p in out.iterdir() if p.name not in (*FILE_NAMES.values(), EXPORT_JSON))
        if foreign:
            raise FileExistsError(
                f"--out {out} holds files that are not an mmcl export ({', '.join(foreign[:5])}); "
                "an export replaces the whole folder, so give a new or empty folder"
            )
    check_finite_weights(model.state_dict(), "the model to export")
    was_training = model.training
    device = next(model.parameters()).device
    model = model.eval()
    card_dict = card.to_dict()
    graph = StreamInput(model, card.input.stream, card.input.layout).eval()
    example = torch.randn(*card.input.shape(2), device=device)  # batch 2: a batch of 1 would be specialised by the exporter
    written: list[str] = []
    info: dict[str, Any] = {
        "format_version": EXPORT_FORMAT_VERSION,
        "card": card_dict,
        "graph_input": GRAPH_INPUT,
        "example_shape": list(card.input.shape(1)),
        "torch_version": torch.__version__,
        "files": {},
    }
    try:
        with staged_folder(out) as stage:
            if "safetensors" in formats:
                state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
                save_file(state, str(stage / EXPORT_WEIGHTS), {"mmcl_card": json.dumps(card_dict)})
                written.append("safetensors")
            with torch.no_grad():
                if "onnx" in formats:
                    path = stage / FILE_NAMES["onnx"]
                    info["onnx_exporter"], info["onnx_opset"] = _export_onnx(graph, example, path, onnx_exporter), ONNX_OPSET
                    _add_onnx_metadata(path, {ONNX_CARD_KEY: json.dumps(card_dict), "graph_input": GRAPH_INPUT})
                    written.append("onnx")
                if "torchscript" in formats:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        traced = torch.jit.trace(graph, (example,), check_trace=False)
                    with warnings.catch_warnings():  # torch's notice that TorchScript is deprecated
                        warnings.simplefilter("ignore", FutureWarning)
                        torch.jit.save(traced, str(stage / FILE_NAMES["torchscript"]))
                    written.append("torchscript")
            info["files"] = {kind: FILE_NAMES[kind] for kind in written}
            (stage / EXPORT_JSON).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    finally:
        model.train(was_training)
    paths = {kind: out / FILE_NAMES[kind] for kind in written}
    paths["json"] = out / EXPORT_JSON
    return paths


def export_checkpoint(
    checkpoint: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    onnx: bool | None = None,
    torchscript: bool = True,
    onnx_exporter: str = "auto",
    **hints: Any,
) -> dict[str, Any]:
    """Skeleton-only artefact from any checkpoint, with its card (``hints``: dataset/stream/... for
    official files). ``onnx=None`` writes ONNX when the ``onnx`` package is installed and says
    otherwise in ``notes``; ``onnx=True`` without it is an error naming the extra to install.
    Returns paths, cost (parameters, GMACs in both formulations), card, checkpoint kind and notes.
    """
    check_output_folder(out)  # before reading and tracing the model
    notes: list[str] = []
    if onnx is None:
        onnx = onnx_export_available()
        if not onnx:
            notes.append(f"ONNX skipped: the onnx package is not installed ({ONNX_EXTRA_HINT})")
    elif onnx and not onnx_export_available():
        raise ValueError(f"--onnx needs the onnx package: {ONNX_EXTRA_HINT}")
    opened = open_checkpoint(checkpoint, **hints)
    model = opened.build_model()
    formats = ["safetensors"] + (["onnx"] if onnx else []) + (["torchscript"] if torchscript else [])
    paths = export_backbone(model, out, card=opened.card, formats=formats, onnx_exporter=onnx_exporter)
    return {
        "paths": {k: str(v) for k, v in paths.items()},
        "cost": cost_summary(model, opened.card.input.shape(1)),
        "example_shape": list(opened.card.input.shape(1)),
        "checkpoint_kind": opened.kind,
        "card": opened.card,
        "notes": opened.notes + notes,
    }
