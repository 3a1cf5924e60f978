"""Feature Alignment Module (FAM): RGB branch whose output is contrasted with the skeleton global feature.

Paper Eq. 3: ``F_c = M_align(Theta(Norm(Gamma(I))))``. Reference (REFERENCE §7.1-7.2): Theta = torchvision
Inception-v3 (ImageNet weights, fine-tuned end to end, train mode, auxiliary output discarded), its 1000-d
logits are the RGB feature, M_align = Linear(1000->256) -> ReLU -> Linear(256->256).

General rule here: ``M_align`` maps the CNN width to the SKELETON feature width (``skeleton_dim``, the
backbone's ``feature_dim``; 256 for CTR-GCN), because the contrastive loss compares the two row by row. The
skeleton global feature is the backbone's ``forward_features`` (mean over frames, joints and any number of
persons; the reference hard-codes 2 persons, REFERENCE §12.14).

Two RGB modes:

- ``"trainable"``: the CNN runs inside every training step on the composite image and is fine-tuned
  (reference behaviour; memory/compute heavy).
- ``"frozen"``: CNN features are pre-computed once into a feature store (``mmcl.modalities.store``); the
  branch is only the alignment MLP. Cheaper, but the CNN is not adapted (a documented deviation).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from mmcl.modalities.cnn import build_image_encoder

__all__ = ["FAM_HIDDEN", "RGB_MODES", "REFERENCE_RGB_DIM", "FeatureAlignment", "RGBBranch", "freeze_auxiliary_head"]

FAM_HIDDEN: int = 256  # REFERENCE §7.1 step 3 (MLP_FAM Linear(1000->256) -> ReLU -> Linear(256->256))
REFERENCE_RGB_DIM: int = 1000  # REFERENCE §7.2 (Inception-v3 ImageNet logits)
REFERENCE_ENCODER: str = "inception_v3"  # REFERENCE §7.2
RGB_MODES: tuple[str, ...] = ("trainable", "frozen")


class FeatureAlignment(nn.Module):
    """M_align: Linear(rgb_dim -> hidden) -> ReLU -> Linear(hidden -> skeleton_dim), PyTorch default init.

    Reference: 1000 -> 256 -> 256 (keys ``FAM_Aligh.mlp.{0,2}.*``, REFERENCE §7.9).
    """

    def __init__(self, rgb_dim: int, skeleton_dim: int, hidden: int = FAM_HIDDEN) -> None:
        super().__init__()
        if min(rgb_dim, skeleton_dim, hidden) < 1:
            raise ValueError("rgb_dim, skeleton_dim and hidden must be >= 1")
        self.rgb_dim = int(rgb_dim)
        self.skeleton_dim = int(skeleton_dim)
        self.mlp = nn.Sequential(nn.Linear(rgb_dim, hidden), nn.ReLU(), nn.Linear(hidden, skeleton_dim))

    def forward(self, rgb_features: torch.Tensor) -> torch.Tensor:
        return self.mlp(rgb_features)


def _encoder_output_to_features(out: Any) -> torch.Tensor:
    """Main output of an image encoder; auxiliary heads (Inception ``aux_logits``) are discarded."""
    if isinstance(out, torch.Tensor):
        return out
    main = getattr(out, "logits", None)
    if main is None and isinstance(out, (tuple, list)) and out:
        main = out[0]
    if not isinstance(main, torch.Tensor):
        raise TypeError(f"cannot take features from an image encoder output of type {type(out).__name__}")
    return main


def freeze_auxiliary_head(encoder: nn.Module) -> int:
    """Set ``requires_grad=False`` on Inception ``AuxLogits`` parameters; returns how many.

    Their output is discarded, so they never get a loss gradient (as in the reference, REFERENCE §7.2);
    freezing them lets DDP run without ``find_unused_parameters`` and keeps weight decay off them.
    The keys stay in the state_dict (official checkpoints carry them).
    """
    count = 0
    for name, param in encoder.named_parameters():
        if "AuxLogits." in name:
            param.requires_grad_(False)
            count += 1
    return count


def _encoder_width(encoder: nn.Module) -> int | None:
    for attr in ("feature_dim", "out_dim", "num_features"):
        value = getattr(encoder, attr, None)
        if isinstance(value, int):
            return value
    fc = getattr(encoder, "fc", None)
    if isinstance(fc, nn.Linear):
        return fc.out_features
    return None


class RGBBranch(nn.Module):
    """RGB side of the FAM: (optional trainable CNN) + alignment MLP -> N×skeleton_dim.

    ``mode="trainable"``: ``forward(images N×3×H×W)``; the encoder is ``encoder`` if given, else
    ``mmcl.modalities.cnn.build_image_encoder(encoder_name, weights, allow_random=allow_random)``.
    ``mode="frozen"``: ``forward(features N×rgb_dim)`` (pre-computed, e.g. from a feature store); ``rgb_dim``
    is then required.
    """

    def __init__(
        self,
        mode: str,
        *,
        skeleton_dim: int,
        rgb_dim: int | None = None,
        hidden: int = FAM_HIDDEN,
        encoder: nn.Module | None = None,
        encoder_name: str = REFERENCE_ENCODER,
        weights: str | None = None,
        allow_random: bool = False,
    ) -> None:
        super().__init__()
        if mode not in RGB_MODES:
            raise ValueError(f"unknown RGB branch mode {mode!r}; expected one of {RGB_MODES}")
        self.mode = mode
        self.encoder: nn.Module | None = None
        if mode == "trainable":
            if encoder is None:
                built = build_image_encoder(encoder_name, weights, allow_random=allow_random)
                encoder = built[0] if isinstance(built, tuple) else built  # (encoder, transform)
            freeze_auxiliary_head(encoder)
            self.encoder = encoder
            if rgb_dim is None:
                rgb_dim = _encoder_width(encoder)
            if rgb_dim is None:
                raise ValueError("cannot infer the image encoder's output width; pass rgb_dim")
        elif rgb_dim is None:
            raise ValueError("frozen RGB mode needs rgb_dim (the width of the stored CNN features)")
        elif encoder is not None:
            raise ValueError("frozen RGB mode takes pre-computed features; do not pass an encoder")
        self.rgb_dim = int(rgb_dim)
        self.align = FeatureAlignment(self.rgb_dim, skeleton_dim, hidden)

    @property
    def input_key(self) -> str:
        """Batch key this branch reads (``MultiModalDataset`` items)."""
        return "rgb" if self.mode == "trainable" else "rgb_feature"

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        if self.encoder is not None:
            inputs = _encoder_output_to_features(self.encoder(inputs))
        if inputs.ndim != 2 or inputs.shape[1] != self.rgb_dim:
            raise ValueError(f"RGB features must be N×{self.rgb_dim}, got {tuple(inputs.shape)}")
        return self.align(inputs.float())
