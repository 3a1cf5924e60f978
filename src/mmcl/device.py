"""Which torch device a command runs on: one parser for every ``--device`` and ``trainer.accelerator``."""

from __future__ import annotations

import torch

__all__ = ["resolve_device"]


def resolve_device(spec: str | torch.device | None = "auto") -> torch.device:
    """``auto``/``None``: CUDA when available, else the CPU; ``cpu``, ``cuda``, ``cuda:N`` as given.

    Asking for CUDA on a machine without it is a one-line error rather than a crash deep in a run.
    """
    if spec is None or str(spec) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    text = str(spec)
    if text != "cpu" and not text.startswith("cuda"):
        raise ValueError(f"device must be cpu, cuda, cuda:N or auto, got {text!r}")
    if text.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {text}: CUDA is not available on this machine (use cpu)")
    return torch.device(text)
