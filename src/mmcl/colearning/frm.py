"""Feature Refinement Module (FRM): LLM text features re-weight the classification scores.

Paper Eq. 8: ``S_R = sum_i F_text^i M_i S``. Reference (REFERENCE §7.4): phi = Linear(d->64) -> ReLU ->
Linear(64->n), softmax over n = 2 channels, M_i diagonal (learnable class-weight vectors Pos/Neg, init 1), so
``S_R[c] = sum_i p_i * M_i[c] * S[c]``.

Here ``S_R`` is computed as ``S * (1 + sum_i p_i (M_i - 1))``. Because ``sum_i p_i = 1`` this is the same
function (and, since softmax is invariant to adding a constant vector, the same gradients) as the reference
form, but it is bit-exactly ``S`` at initialisation (M_i = 1), where the reference form is only equal up to
float rounding of ``p_0 + p_1``.

Text feature kinds (``TEXT_KINDS``) and how a sample's text feature becomes phi's fixed-width input:

- ``"answer_ids"``: token IDs of the generated answer used as raw floats (reference: 3 IDs
  [DEC]/answer/[SEP], width 3, REFERENCE §7.4/§7.8). Input N×w, or N×L×1 (store layout, one ID per row)
  / N×L×d with a mask: the valid IDs are flattened in order, padding set to 0, then zero-padded or
  truncated to ``feature_dim``. IDs are an ordinal code, not a meaningful vector; kept for compatibility.
- ``"answer_probs"``: e.g. [p_yes, p_no] (N×d).
- ``"decoder_hidden"``: LLM decoder hidden states, N×d (already pooled) or N×L×d per token.
- ``"sentence"``: sentence embeddings, N×d (or N×L×d, one per sentence).

For every kind except ``answer_ids``, a variable-length input N×L×d with mask N×L is pooled by a MASKED MEAN
over the valid positions (a zero-length row gives a zero vector) before phi: order-free, length-independent
and parameter-free, so it works for any LLM without changing the module.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "FRM_HIDDEN",
    "REFERENCE_TEXT_WIDTH",
    "REFERENCE_NUM_CHANNELS",
    "TEXT_KINDS",
    "FeatureRefinement",
    "pool_text_features",
    "refinement_loss",
]

FRM_HIDDEN: int = 64  # REFERENCE §7.4 (MLP_FRM Linear(3->64) -> ReLU -> Linear(64->2))
REFERENCE_TEXT_WIDTH: int = 3  # REFERENCE §7.4 (3 generated token IDs)
REFERENCE_NUM_CHANNELS: int = 2  # REFERENCE §7.4 (Pos / Neg)
TEXT_KINDS: tuple[str, ...] = ("answer_ids", "answer_probs", "decoder_hidden", "sentence")


def pool_text_features(
    text: torch.Tensor, mask: torch.Tensor | None = None, *, kind: str = "answer_ids", width: int | None = None
) -> torch.Tensor:
    """Turn N×d or N×L×d (+ boolean mask N×L) text features into the N×width input of phi.

    ``answer_ids``: flatten valid IDs (padding -> 0), then pad/truncate to ``width``. Other kinds: masked mean
    over L. See the module docstring for why.
    """
    if kind not in TEXT_KINDS:
        raise ValueError(f"unknown text feature kind {kind!r}; expected one of {TEXT_KINDS}")
    text = text.float()
    if text.ndim == 2:
        vec = text
    elif text.ndim == 3:
        if mask is None:
            mask = torch.ones(text.shape[:2], dtype=torch.bool, device=text.device)
        if mask.shape != text.shape[:2]:
            raise ValueError(f"text mask shape {tuple(mask.shape)} does not match text {tuple(text.shape)}")
        m = mask.to(text.dtype).unsqueeze(-1)
        if kind == "answer_ids":
            vec = (text * m).flatten(1)
        else:
            vec = (text * m).sum(1) / m.sum(1).clamp_min(1.0)
    else:
        raise ValueError(f"text features must be N×d or N×L×d, got shape {tuple(text.shape)}")
    if kind == "answer_ids" and width is not None and vec.shape[1] != width:
        vec = F.pad(vec, (0, width - vec.shape[1])) if vec.shape[1] < width else vec[:, :width]
    return vec


class FeatureRefinement(nn.Module):
    """FRM: ``S_R = sum_i p_i * M_i ⊙ S`` with ``p = softmax(phi(text))`` (paper Eq. 7-8, REFERENCE §7.4).

    ``feature_dim`` is phi's input width (reference: 3 token IDs), ``num_classes`` the score width K (the
    reference hard-codes 120, REFERENCE §12.14; here it follows the model), ``num_channels`` = n.
    """

    def __init__(
        self,
        feature_dim: int,
        num_classes: int,
        num_channels: int = REFERENCE_NUM_CHANNELS,
        *,
        hidden: int = FRM_HIDDEN,
        kind: str = "answer_ids",
    ) -> None:
        super().__init__()
        if kind not in TEXT_KINDS:
            raise ValueError(f"unknown text feature kind {kind!r}; expected one of {TEXT_KINDS}")
        if min(feature_dim, num_classes, num_channels, hidden) < 1:
            raise ValueError("feature_dim, num_classes, num_channels and hidden must be >= 1")
        self.feature_dim = int(feature_dim)
        self.num_classes = int(num_classes)
        self.num_channels = int(num_channels)
        self.kind = kind
        # PyTorch default Linear init, as the reference (REFERENCE §7.4).
        self.mlp = nn.Sequential(nn.Linear(feature_dim, hidden), nn.ReLU(), nn.Linear(hidden, num_channels))
        # Row i = diagonal of M_i (reference: row 0 = PosMatrix, row 1 = NegMatrix), init 1 -> S_R = S.
        self.class_weights = nn.Parameter(torch.ones(num_channels, num_classes))

    def channel_probs(self, text: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """p = softmax(phi(text)) over the n channels: N×n."""
        vec = pool_text_features(text, mask, kind=self.kind, width=self.feature_dim)
        if vec.shape[1] != self.feature_dim:
            raise ValueError(
                f"FRM expects text features of width {self.feature_dim} (kind {self.kind!r}), got {vec.shape[1]}"
            )
        return torch.softmax(self.mlp(vec), dim=1)

    def forward(
        self, scores: torch.Tensor, text_features: torch.Tensor, text_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Refined scores S_R (N×K) from scores S (N×K) and text features (N×d or N×L×d + mask)."""
        if scores.ndim != 2 or scores.shape[1] != self.num_classes:
            raise ValueError(f"FRM expects N×{self.num_classes} scores, got {tuple(scores.shape)}")
        p = self.channel_probs(text_features, text_mask).to(scores.dtype)
        gain = 1.0 + p @ (self.class_weights.to(scores.dtype) - 1.0)  # == sum_i p_i M_i since sum p = 1
        return scores * gain

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}, num_classes={self.num_classes}, num_channels={self.num_channels}"


def refinement_loss(refined: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """L_R = softmax cross-entropy with S_R as logits, mean over the batch (REFERENCE §7.4, code behaviour).

    Paper Eq. 9 writes ``-sum_i Y^i log S_R^i`` (a sum over the batch with S_R used directly as
    probabilities), which is undefined for the unnormalised, possibly negative S_R; the code's softmax CE with
    a batch mean is used (REFERENCE §11).
    """
    return F.cross_entropy(refined, labels)
