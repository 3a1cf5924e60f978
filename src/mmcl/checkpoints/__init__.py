"""Checkpoints: the model card, the one reader of user checkpoint files, and official key names.

- :mod:`~mmcl.checkpoints.card`: :class:`ModelCard`, what a trained model is and expects;
- :mod:`~mmcl.checkpoints.reader`: :func:`open_checkpoint` / :func:`read_checkpoint` (nothing else
  calls ``torch.load`` on a user file);
- :mod:`~mmcl.checkpoints.official`: official CTR-GCN / CTRS-GCN key names and shape inference;
- :mod:`~mmcl.checkpoints.official_mmcl`: official MMCL extras (FRM, FAM, Inception) into our heads.
"""

from mmcl.checkpoints.card import CardMismatchError, ModelCard
from mmcl.checkpoints.official import load_reference_state_dict, reference_state_dict, split_mmcl_checkpoint
from mmcl.checkpoints.reader import CheckpointError, OpenedCheckpoint, open_checkpoint, read_checkpoint

__all__ = [
    "CardMismatchError",
    "CheckpointError",
    "ModelCard",
    "OpenedCheckpoint",
    "load_reference_state_dict",
    "open_checkpoint",
    "read_checkpoint",
    "reference_state_dict",
    "split_mmcl_checkpoint",
]
