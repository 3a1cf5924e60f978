"""Contrastive loss (FAM) against direct loop computations of REFERENCE §7.3 and paper Eq. 4-6."""

from __future__ import annotations

import math

import pytest
import torch

from mmcl.colearning.losses import contrastive_loss


def _cos(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.dot(a, b) / (a.norm() * b.norm()))


def _loop_reference(zs: torch.Tensor, zr: torch.Tensor, tau: float) -> float:
    def l(p: torch.Tensor, q: torch.Tensor, i: int) -> float:
        n = p.shape[0]
        den = sum(math.exp(_cos(p[i], p[k]) / tau) for k in range(n) if k != i)
        den += sum(math.exp(_cos(p[i], q[k]) / tau) for k in range(n))
        return -math.log(math.exp(_cos(p[i], q[i]) / tau) / den)

    n = zs.shape[0]
    return sum(0.5 * (l(zs, zr, i) + l(zr, zs, i)) for i in range(n)) / n


def _loop_paper(g: torch.Tensor, c: torch.Tensor, tau: float) -> float:
    def l(a: torch.Tensor, b: torch.Tensor, i: int) -> float:
        n = a.shape[0]
        pos = math.exp(_cos(a[i], b[i]) / tau)
        neg = sum(math.exp(_cos(a[i], b[k]) / tau) + math.exp(_cos(a[k], b[i]) / tau)
                  for k in range(n) if k != i)
        return -math.log(pos / (pos + neg))

    n = g.shape[0]
    return sum(l(g, c, i) + l(c, g, i) for i in range(n)) / (2 * n)


@pytest.mark.parametrize("tau", [0.4, 0.07, 1.0])
def test_reference_variant_matches_loop(tau: float) -> None:
    gen = torch.Generator().manual_seed(0)
    zs, zr = torch.randn(5, 7, generator=gen, dtype=torch.float64), torch.randn(5, 7, generator=gen, dtype=torch.float64)
    got = contrastive_loss(zs, zr, tau=tau, variant="reference")
    assert got.shape == ()
    assert got.item() == pytest.approx(_loop_reference(zs, zr, tau), rel=1e-10)


@pytest.mark.parametrize("tau", [0.4, 0.1])
def test_paper_variant_matches_loop(tau: float) -> None:
    gen = torch.Generator().manual_seed(1)
    g, c = torch.randn(6, 4, generator=gen, dtype=torch.float64), torch.randn(6, 4, generator=gen, dtype=torch.float64)
    got = contrastive_loss(g, c, tau=tau, variant="paper")
    assert got.item() == pytest.approx(_loop_paper(g, c, tau), rel=1e-10)


def test_variants_differ_and_are_scale_invariant() -> None:
    gen = torch.Generator().manual_seed(2)
    zs, zr = torch.randn(4, 3, generator=gen), torch.randn(4, 3, generator=gen)
    ref = contrastive_loss(zs, zr)
    assert not torch.isclose(ref, contrastive_loss(zs, zr, variant="paper"))
    # rows are L2-normalised, so scaling rows does not change the loss
    scaled = contrastive_loss(zs * torch.tensor([[3.0], [0.5], [7.0], [1.0]]), zr * 11.0)
    assert torch.allclose(ref, scaled, atol=1e-6)


def test_numerically_stable_for_tiny_tau_and_degenerate_rows() -> None:
    zs = torch.randn(8, 16)
    zr = zs.clone()
    zr[0] = 0.0  # zero row: eps-normalised, no NaN
    for variant in ("reference", "paper"):
        loss = contrastive_loss(zs, zr, tau=1e-3, variant=variant)
        assert torch.isfinite(loss)


def test_gradients_flow_to_both_inputs() -> None:
    zs = torch.randn(4, 5, requires_grad=True)
    zr = torch.randn(4, 5, requires_grad=True)
    contrastive_loss(zs, zr).backward()
    assert zs.grad is not None and zr.grad is not None
    assert zs.grad.abs().sum() > 0 and zr.grad.abs().sum() > 0


def test_edge_cases() -> None:
    assert contrastive_loss(torch.randn(1, 3), torch.randn(1, 3)).item() == pytest.approx(0.0, abs=1e-6)
    empty = torch.zeros(0, 3, requires_grad=True)
    out = contrastive_loss(empty, torch.zeros(0, 3))
    assert out.item() == 0.0 and out.requires_grad
    with pytest.raises(ValueError, match="variant"):
        contrastive_loss(torch.randn(2, 3), torch.randn(2, 3), variant="nope")
    with pytest.raises(ValueError, match="same shape"):
        contrastive_loss(torch.randn(2, 3), torch.randn(3, 3))
