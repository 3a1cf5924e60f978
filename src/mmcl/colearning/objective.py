"""MMCL auxiliary objective (paper Eq. 10): ``L = CE(S, y) + lambda_1 L_C + lambda_2 L_R``.

The engine computes ``CE(S, y)`` and adds ``total_aux`` from :meth:`CoLearningHeads.losses`. Switches for
the ablations (paper Tables 3-5): ``fam=None`` = w/o FAM (no L_C), ``frm=None`` = w/o FRM (no L_R); with
both off use :func:`build_colearning_heads`, which returns ``None`` so the engine trains a plain backbone
(no extra parameters, no extra RNG use).

Samples without a modality (``batch["has_rgb"]`` / ``batch["has_text"]`` False, see
``mmcl.datasets.multimodal``) are excluded from that term; the term is the mean over the remaining
samples. If no sample of the batch has it, the term is an exact 0 that is still connected to the head's
parameters and to the inputs, so DDP finds a gradient (zero) for every parameter.
Inference never uses these heads (REFERENCE §7.1: the test forward is the backbone only).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import torch
from torch import nn

from .fam import FAM_HIDDEN, REFERENCE_ENCODER, RGBBranch
from .frm import FRM_HIDDEN, REFERENCE_NUM_CHANNELS, REFERENCE_TEXT_WIDTH, FeatureRefinement, refinement_loss
from .losses import DEFAULT_TAU, VARIANTS, contrastive_loss

__all__ = [
    "LAMBDA_CONTRASTIVE",
    "LAMBDA_REFINE",
    "CoLearningHeads",
    "FAMConfig",
    "FRMConfig",
    "build_colearning_heads",
]

LAMBDA_CONTRASTIVE: float = 0.1  # paper Eq. 10 / Table 6, REFERENCE §7.5 (lambda_1)
LAMBDA_REFINE: float = 0.2  # paper Eq. 10 / Table 6, REFERENCE §7.5 (lambda_2)


@dataclass(frozen=True)
class FAMConfig:
    """FAM switch-on settings. ``rgb_dim`` is required for ``mode="frozen"`` (stored feature width)."""

    mode: str = "trainable"
    encoder: str = REFERENCE_ENCODER
    weights: str | None = None
    allow_random: bool = False
    rgb_dim: int | None = None
    hidden: int = FAM_HIDDEN


@dataclass(frozen=True)
class FRMConfig:
    """FRM switch-on settings: text feature width/kind, number of channels n, phi hidden width."""

    text_dim: int = REFERENCE_TEXT_WIDTH
    kind: str = "answer_ids"
    num_channels: int = REFERENCE_NUM_CHANNELS
    hidden: int = FRM_HIDDEN

    @classmethod
    def for_store(cls, store: Any, *, num_channels: int = REFERENCE_NUM_CHANNELS) -> "FRMConfig":
        """Settings matching a text feature store (``store.kind``, ``store.dim``).

        ``answer_ids`` keeps the reference width 3 ([DEC], yes/no, [SEP]; longer answers are truncated,
        shorter ones zero-padded); other kinds use the stored feature width.
        """
        kind = str(store.kind)
        text_dim = REFERENCE_TEXT_WIDTH if kind == "answer_ids" else int(store.dim)
        return cls(text_dim=text_dim, kind=kind, num_channels=num_channels)


def _zero_connected(*tensors: torch.Tensor | None, params: Any = ()) -> torch.Tensor:
    """An exact 0 with a graph to ``tensors`` and ``params`` (keeps DDP's gradient bookkeeping complete)."""
    parts = [t.sum() * 0.0 for t in tensors if t is not None and t.requires_grad]
    parts += [p.sum() * 0.0 for p in params if p.requires_grad]
    if not parts:
        ref = next((t for t in tensors if t is not None), None)
        return torch.zeros((), device=None if ref is None else ref.device)
    return torch.stack(parts).sum()


def _valid_mask(batch: Mapping[str, Any], flag: str, n: int, device: torch.device) -> torch.Tensor:
    value = batch.get(flag)
    if value is None:
        return torch.ones(n, dtype=torch.bool, device=device)
    return torch.as_tensor(value, device=device).bool().reshape(-1)


class CoLearningHeads(nn.Module):
    """FAM and/or FRM heads on top of a backbone; produces the unweighted auxiliary terms and their sum.

    ``feature_dim``: backbone ``feature_dim`` (skeleton global feature width); ``num_classes``: K.
    Sub-modules: ``rgb`` (:class:`RGBBranch`, when ``fam``), ``frm`` (:class:`FeatureRefinement`, when ``frm``).
    ``encoder`` optionally injects an already built image encoder for ``fam.mode == "trainable"``.
    """

    def __init__(
        self,
        feature_dim: int,
        num_classes: int,
        *,
        fam: FAMConfig | None,
        frm: FRMConfig | None,
        lambda_contrastive: float = LAMBDA_CONTRASTIVE,
        lambda_refine: float = LAMBDA_REFINE,
        tau: float = DEFAULT_TAU,
        variant: str = "reference",
        gather_negatives: bool = False,
        encoder: nn.Module | None = None,
    ) -> None:
        super().__init__()
        if fam is None and frm is None:
            raise ValueError("CoLearningHeads needs FAM and/or FRM; use build_colearning_heads() to get None")
        if variant not in VARIANTS:
            raise ValueError(f"unknown contrastive variant {variant!r}; expected one of {VARIANTS}")
        if tau <= 0:
            raise ValueError(f"tau must be > 0, got {tau}")
        self.feature_dim = int(feature_dim)
        self.num_classes = int(num_classes)
        self.lambda_contrastive = float(lambda_contrastive)
        self.lambda_refine = float(lambda_refine)
        self.tau = float(tau)
        self.variant = variant
        self.gather_negatives = bool(gather_negatives)
        self.fam_config = fam
        self.frm_config = frm
        self.rgb: RGBBranch | None = None
        self.frm: FeatureRefinement | None = None
        if fam is not None:
            self.rgb = RGBBranch(
                fam.mode,
                skeleton_dim=feature_dim,
                rgb_dim=fam.rgb_dim,
                hidden=fam.hidden,
                encoder=encoder,
                encoder_name=fam.encoder,
                weights=fam.weights,
                allow_random=fam.allow_random,
            )
        if frm is not None:
            self.frm = FeatureRefinement(
                frm.text_dim, num_classes, frm.num_channels, hidden=frm.hidden, kind=frm.kind
            )

    @property
    def required_keys(self) -> tuple[str, ...]:
        """Batch keys the heads read (beyond ``label``); what the data module must provide."""
        keys: list[str] = []
        if self.rgb is not None:
            keys += [self.rgb.input_key, "has_rgb"]
        if self.frm is not None:
            keys += ["text", "text_mask", "has_text"]
        return tuple(keys)

    def contrastive(self, batch: Mapping[str, Any], features: torch.Tensor) -> torch.Tensor:
        """Unweighted L_C over the samples that have RGB (``has_rgb``)."""
        assert self.rgb is not None
        valid = _valid_mask(batch, "has_rgb", features.shape[0], features.device)
        z_s = features[valid]
        if bool(valid.any()):
            if self.rgb.input_key not in batch:
                raise KeyError(f"FAM is on but the batch has no {self.rgb.input_key!r} (use MultiModalDataset)")
            z_r = self.rgb(batch[self.rgb.input_key][valid])
        else:
            # No RGB here: do not run the CNN (BatchNorm cannot take 0 rows); still join a gather collective.
            z_r = features.new_zeros((0, features.shape[1]))
        loss = contrastive_loss(z_s, z_r, tau=self.tau, variant=self.variant, gather=self.gather_negatives)
        if z_s.shape[0] == 0:
            loss = loss + _zero_connected(features, params=self.rgb.parameters())
        return loss

    def refinement(self, batch: Mapping[str, Any], logits: torch.Tensor) -> torch.Tensor:
        """Unweighted L_R over the samples that have a text feature (``has_text``)."""
        assert self.frm is not None
        valid = _valid_mask(batch, "has_text", logits.shape[0], logits.device)
        if not bool(valid.any()):
            return _zero_connected(logits, params=self.frm.parameters())
        if "text" not in batch:
            raise KeyError("FRM is on but the batch has no 'text' (use MultiModalDataset with a text store)")
        mask = batch.get("text_mask")
        refined = self.frm(logits[valid], batch["text"][valid], None if mask is None else mask[valid])
        labels = torch.as_tensor(batch["label"], device=logits.device).long()[valid]
        return refinement_loss(refined, labels)

    def losses(self, batch: Mapping[str, Any], features: torch.Tensor, logits: torch.Tensor) -> dict[str, torch.Tensor]:
        """Unweighted ``"contrastive"`` / ``"refine"`` (those switched on) and the weighted ``"total_aux"``.

        ``features``: backbone ``forward_features(x)`` (N×D); ``logits``: ``classify(features)`` (N×K).
        """
        out: dict[str, torch.Tensor] = {}
        weighted: list[torch.Tensor] = []
        if self.rgb is not None:
            out["contrastive"] = self.contrastive(batch, features)
            weighted.append(self.lambda_contrastive * out["contrastive"])
        if self.frm is not None:
            out["refine"] = self.refinement(batch, logits)
            weighted.append(self.lambda_refine * out["refine"])
        out["total_aux"] = torch.stack(weighted).sum()
        return out

    def extra_repr(self) -> str:
        return (
            f"lambda_contrastive={self.lambda_contrastive}, lambda_refine={self.lambda_refine}, tau={self.tau}, "
            f"variant={self.variant!r}, gather_negatives={self.gather_negatives}"
        )


def build_colearning_heads(
    feature_dim: int, num_classes: int, *, fam: FAMConfig | None, frm: FRMConfig | None, **options: Any
) -> CoLearningHeads | None:
    """``CoLearningHeads`` or ``None`` when both FAM and FRM are off (plain backbone training).

    ``options`` are :class:`CoLearningHeads`' keyword arguments (lambdas, tau, variant, ...).
    """
    if fam is None and frm is None:
        return None
    return CoLearningHeads(feature_dim, num_classes, fam=fam, frm=frm, **options)