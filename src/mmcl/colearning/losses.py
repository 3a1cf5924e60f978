"""Skeleton-RGB contrastive loss of the Feature Alignment Module (FAM).

Two variants are provided because the paper and the official code disagree (REFERENCE §11):

``variant="reference"`` (default, REFERENCE §7.3, what the official code computes)
    Rows are L2-normalised (eps 1e-12), s = cosine similarity / tau. For anchor row i of P against Q::

        l_i(P, Q) = -log  exp(s(p_i, q_i)) / ( sum_{k != i} exp(s(p_i, p_k)) + sum_{k} exp(s(p_i, q_k)) )

    i.e. intra-modal negatives (k != i) plus ALL cross-modal pairs of the anchor, the positive included,
    in the denominator. L_C = mean_i 0.5 * (l_i(Z_s, Z_r) + l_i(Z_r, Z_s)).

``variant="paper"`` (Eq. 4-6 with the missing minus sign restored)
    ``l_i = -log exp(s(g_i, c_i)) / (exp(s(g_i, c_i)) + Neg_i)`` with
    ``Neg_i = sum_{k != i} [exp(s(g_i, c_k)) + exp(s(g_k, c_i))]``: cross-modal negatives only, in both
    directions, no intra-modal terms, positive counted once. Because cosine similarity is symmetric,
    ``Neg(F_g^i, F_c^i) == Neg(F_c^i, F_g^i)``, so both terms of Eq. 4 are equal and the loss is
    ``mean_i l_i`` (computed once).

Both use ``logsumexp`` for numerical stability.

``gather=True`` (multi-process): each rank keeps its own rows as anchors, and all ranks' rows (gathered
WITH gradients, ``torch.distributed.nn.functional.all_gather``) serve as candidates, so negatives cross
processes. The returned value is the mean over the LOCAL anchors. DDP averages gradients over ranks, and the
gather's backward sums the candidate gradients of every rank, so with equal per-rank batch sizes the
averaged gradients equal those of the single-process loss on the concatenated batch (tested). Ranks may hold
different numbers of rows (also zero: every rank must still call the function, because it is a
collective). The official code never crosses GPUs (REFERENCE §12.17: negatives are per DataParallel
replica), so ``gather=False`` with the per-GPU batch reproduces it.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.distributed as dist
import torch.nn.functional as F

__all__ = ["DEFAULT_TAU", "NORMALIZE_EPS", "VARIANTS", "contrastive_loss", "gather_with_grad"]

DEFAULT_TAU: float = 0.4  # REFERENCE §7.3 / §7.5 (tau = 0.4)
NORMALIZE_EPS: float = 1e-12  # REFERENCE §7.3 (F.normalize epsilon)
VARIANTS: tuple[str, ...] = ("reference", "paper")

Variant = Literal["reference", "paper"]


def _distributed_active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def gather_with_grad(x: torch.Tensor) -> tuple[torch.Tensor, int]:
    """All-gather the rows of ``x`` from every rank, keeping the autograd graph.

    Supports a different number of rows per rank (rows are zero-padded to the largest count for the
    collective and the padding is removed afterwards). Returns ``(all_rows, offset)`` where ``offset`` is
    the index of this rank's first row in ``all_rows``. Without an initialised process group of size > 1
    it returns ``(x, 0)``.
    """
    if not _distributed_active():
        return x, 0
    from torch.distributed.nn.functional import all_gather

    world = dist.get_world_size()
    rank = dist.get_rank()
    n_local = torch.tensor([x.shape[0]], dtype=torch.long, device=x.device)
    sizes = [torch.zeros_like(n_local) for _ in range(world)]
    dist.all_gather(sizes, n_local)
    counts = [int(s.item()) for s in sizes]
    n_max = max(counts)
    padded = x if x.shape[0] == n_max else F.pad(x, (0, 0, 0, n_max - x.shape[0]))
    parts = all_gather(padded)
    rows = torch.cat([p[:c] for p, c in zip(parts, counts)], dim=0)
    return rows, sum(counts[:rank])


def _reference_terms(anchor: torch.Tensor, same_all: torch.Tensor, other_all: torch.Tensor,
                     offset: int, tau: float) -> torch.Tensor:
    """Per-anchor l_i(P, Q) of REFERENCE §7.3 (anchors = local rows of P, candidates = all rows)."""
    n = anchor.shape[0]
    idx = torch.arange(n, device=anchor.device) + offset
    intra = anchor @ same_all.t() / tau  # s(p_i, p_k)
    intra = intra.masked_fill(F.one_hot(idx, same_all.shape[0]).bool(), float("-inf"))  # k != i
    cross = anchor @ other_all.t() / tau  # s(p_i, q_k), positive included
    positive = cross.gather(1, idx[:, None]).squeeze(1)
    return torch.logsumexp(torch.cat([intra, cross], dim=1), dim=1) - positive


def _paper_terms(g_local: torch.Tensor, c_local: torch.Tensor, g_all: torch.Tensor,
                 c_all: torch.Tensor, offset: int, tau: float) -> torch.Tensor:
    """Per-anchor loss of paper Eq. 5-6 (with the minus sign): cross-modal negatives, both directions."""
    n = g_local.shape[0]
    idx = torch.arange(n, device=g_local.device) + offset
    gc = g_local @ c_all.t() / tau  # s(g_i, c_k): positive at k = i, negatives k != i
    cg = c_local @ g_all.t() / tau  # s(c_i, g_k) = s(g_k, c_i)
    cg = cg.masked_fill(F.one_hot(idx, g_all.shape[0]).bool(), float("-inf"))  # positive counted once
    positive = gc.gather(1, idx[:, None]).squeeze(1)
    return torch.logsumexp(torch.cat([gc, cg], dim=1), dim=1) - positive


def contrastive_loss(
    skeleton_features: torch.Tensor,
    rgb_features: torch.Tensor,
    *,
    tau: float = DEFAULT_TAU,
    variant: Variant | str = "reference",
    gather: bool = False,
) -> torch.Tensor:
    """Contrastive loss between N×d skeleton features and N×d (aligned) RGB features; scalar mean.

    Row i of both inputs is the same sample (the positive pair). See the module docstring for the exact
    formulas of ``variant`` and the semantics of ``gather``. An empty local batch returns a zero that is
    still connected to the inputs (so DDP sees a graph); a single sample gives 0 (no negatives).
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown contrastive variant {variant!r}; expected one of {VARIANTS}")
    if skeleton_features.ndim != 2 or skeleton_features.shape != rgb_features.shape:
        raise ValueError(
            "contrastive_loss expects two N×d tensors of the same shape, got "
            f"{tuple(skeleton_features.shape)} and {tuple(rgb_features.shape)}"
        )
    if tau <= 0:
        raise ValueError(f"tau must be > 0, got {tau}")
    zs = F.normalize(skeleton_features, dim=1, eps=NORMALIZE_EPS)
    zr = F.normalize(rgb_features, dim=1, eps=NORMALIZE_EPS)
    offset = 0
    zs_all, zr_all = zs, zr
    if gather and _distributed_active():
        # One collective for both modalities keeps the ranks in lock-step.
        both, offset = gather_with_grad(torch.cat([zs, zr], dim=1))
        d = zs.shape[1]
        zs_all, zr_all = both[:, :d], both[:, d:]
    if zs.shape[0] == 0:
        return (zs_all.sum() + zr_all.sum()) * 0.0
    if variant == "reference":
        per_anchor = 0.5 * (_reference_terms(zs, zs_all, zr_all, offset, tau)
                            + _reference_terms(zr, zr_all, zs_all, offset, tau))
    else:
        per_anchor = _paper_terms(zs, zr, zs_all, zr_all, offset, tau)
    return per_anchor.mean()
