"""Lightning checkpoint I/O for training: atomic writes, reads through the one checkpoint reader."""

from __future__ import annotations

import io
from typing import Any

import torch
from lightning.fabric.plugins import TorchCheckpointIO

from mmcl.checkpoints.reader import read_checkpoint
from mmcl.io import atomic_write_bytes

__all__ = ["AtomicCheckpointIO", "atomic_checkpoint_io"]


class AtomicCheckpointIO(TorchCheckpointIO):
    """Saves to a temp file in the same folder, fsyncs, then renames; loads with ``weights_only``."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
        buf = io.BytesIO()
        torch.save(checkpoint, buf)
        atomic_write_bytes(path, buf.getvalue())

    def load_checkpoint(self, path: Any, map_location: Any = None, weights_only: bool | None = None) -> dict[str, Any]:
        return read_checkpoint(path, map_location=map_location or "cpu")


def atomic_checkpoint_io() -> AtomicCheckpointIO:
    return AtomicCheckpointIO()
