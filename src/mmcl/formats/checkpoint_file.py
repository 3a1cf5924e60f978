"""PyTorch checkpoint and TorchScript files: read safely, with errors that name the file and the problem.

``torch.load(weights_only=True)`` only: a pickle that would run code is refused, and PyTorch's advice
to retry with ``weights_only=False`` (wrong for a user: it would run whatever the file holds) is
replaced by what is actually wrong. :func:`mmcl.checkpoints.open_checkpoint` builds on this to
recognise model checkpoints; image-encoder weights are read here directly.
"""

from __future__ import annotations

import warnings
import zipfile
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from mmcl.formats.errors import first_line

__all__ = ["CheckpointError", "read_checkpoint", "load_torchscript", "unwrap_checkpoint"]


class CheckpointError(ValueError):
    """A checkpoint file is missing, unreadable or does not fit; the message names the file."""


def _unpickler_reason(exc: BaseException) -> str:
    """The unpickler's own reason out of PyTorch's long weights_only message (whose advice to set
    ``weights_only=False`` is wrong for a user: it would run whatever the file holds)."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    for i, line in enumerate(lines):
        if "WeightsUnpickler error" in line:
            rest = line.split("WeightsUnpickler error:", 1)[-1].strip()
            return rest or (lines[i + 1] if i + 1 < len(lines) else "unreadable")
    return "unreadable"


def read_checkpoint(path: str | Path, map_location: Any = "cpu") -> dict[str, Any]:
    """``torch.load(weights_only=True)`` of a user file, with errors that name the file and the problem."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint not found: {path}")
    if not path.is_file():
        raise CheckpointError(f"{path}: not a file")
    size = path.stat().st_size
    if size == 0:
        raise CheckpointError(f"{path}: empty file (0 bytes), not a checkpoint")
    with path.open("rb") as fh:
        head = fh.read(64).lstrip()
    if head[:1] in (b"{", b"["):
        raise CheckpointError(f"{path}: a JSON/text file, not a PyTorch checkpoint (an exported model is its folder or model.safetensors)")
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure is a bad file for the user
        if "unsupported global" in str(exc).lower():
            problem = "it holds Python objects besides tensors; refused, since loading them could run code"
        elif "Weights only load failed" in str(exc):
            problem = f"truncated or not a PyTorch checkpoint ({_unpickler_reason(exc)})"
        elif isinstance(exc, (zipfile.BadZipFile, EOFError, RuntimeError)) or "pickle" in str(exc).lower():
            problem = f"truncated or not a PyTorch checkpoint ({type(exc).__name__}: {first_line(exc, limit=None)})"
        else:
            problem = f"cannot read it ({type(exc).__name__}: {first_line(exc, limit=None)})"
        raise CheckpointError(f"{path}: {problem}") from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: expected a dict of tensors, got {type(obj).__name__}")
    return obj


def load_torchscript(path: str | Path, device: str | torch.device = "cpu") -> torch.jit.ScriptModule:
    """A TorchScript file in eval mode (exported skeleton graphs, image encoders), errors naming the file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"TorchScript file not found: {path}")
    try:
        with warnings.catch_warnings():  # torch >= 2.9 marks jit.load deprecated; these files are TorchScript
            warnings.filterwarnings("ignore", message=r".*torch\.jit\.load.* is deprecated", category=FutureWarning)
            module = torch.jit.load(str(path), map_location=device)
    except Exception as exc:  # noqa: BLE001 - any failure is a bad file for the user
        raise CheckpointError(f"{path}: unreadable TorchScript model ({first_line(exc, limit=None)})") from None
    return module.eval()


def unwrap_checkpoint(obj: Mapping) -> Mapping[str, torch.Tensor]:
    """Take a state_dict out of ``{"state_dict": ...}`` / ``{"model": ...}`` wrappers and strip
    a ``module.`` prefix (DataParallel) from every key that has it."""
    while isinstance(obj, Mapping) and not _looks_like_state_dict(obj):
        for wrapper in ("state_dict", "model", "model_state_dict", "module"):
            if isinstance(obj.get(wrapper), Mapping):
                obj = obj[wrapper]
                break
        else:
            raise ValueError(
                "checkpoint is neither a state_dict (tensors by name) nor a wrapper with a "
                f"'state_dict' or 'model' entry; top-level keys: {sorted(map(str, obj))[:10]}"
            )
    return OrderedDict((k[len("module.") :] if k.startswith("module.") else k, v) for k, v in obj.items())


def _looks_like_state_dict(obj: Mapping) -> bool:
    return len(obj) > 0 and all(isinstance(v, torch.Tensor) for v in obj.values())
