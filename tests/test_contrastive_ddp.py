"""Cross-process negatives: 2 CPU processes (gloo) vs the single-process loss on the concatenated batch."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import torch.nn.functional as F

from mmcl.colearning.losses import _reference_terms, contrastive_loss

pytestmark = pytest.mark.slow  # multi-process / long: outside the fast loop (-m "not slow")

WORLD = 2
N_PER_RANK, D_IN, D = 3, 5, 4


def _data() -> tuple[torch.Tensor, torch.Tensor, torch.nn.Linear, torch.nn.Linear]:
    gen = torch.Generator().manual_seed(123)
    xs = torch.randn(WORLD * N_PER_RANK, D_IN, generator=gen, dtype=torch.float64)
    xr = torch.randn(WORLD * N_PER_RANK, D_IN, generator=gen, dtype=torch.float64)
    torch.manual_seed(7)
    fs = torch.nn.Linear(D_IN, D).double()
    fr = torch.nn.Linear(D_IN, D).double()
    return xs, xr, fs, fr


def _worker(rank: int, init_file: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    try:
        xs, xr, fs, fr = _data()
        results: dict[str, object] = {}
        for variant in ("reference", "paper"):
            fs.zero_grad(), fr.zero_grad()
            sl = slice(rank * N_PER_RANK, (rank + 1) * N_PER_RANK)
            loss = contrastive_loss(fs(xs[sl]), fr(xr[sl]), variant=variant, gather=True)
            loss.backward()
            # what DDP does: average parameter gradients (and we average the logged loss)
            grads = [p.grad.clone() for p in (*fs.parameters(), *fr.parameters())]
            for g in grads:
                dist.all_reduce(g)
                g /= WORLD
            mean_loss = loss.detach().clone()
            dist.all_reduce(mean_loss)
            results[variant] = (mean_loss / WORLD, grads)
        # uneven rows per rank (rank 1 holds none): each rank's loss = mean of its anchors' global terms
        zs = F.normalize(xs, dim=1)
        zr = F.normalize(xr, dim=1)
        rows = slice(0, 3) if rank == 0 else slice(3, 4)
        results["uneven"] = contrastive_loss(zs[rows], zr[rows], gather=True).item()
        rows = slice(0, 4) if rank == 0 else slice(4, 4)
        results["empty"] = contrastive_loss(zs[rows], zr[rows], gather=True).item()
        torch.save(results, Path(out_dir) / f"rank{rank}.pt")
        dist.barrier()  # no rank tears gloo down while the other is still finishing a collective
    finally:
        dist.destroy_process_group()


def test_gathered_loss_and_gradients_match_single_process(tmp_path: Path) -> None:
    if not dist.is_available():
        pytest.skip("torch.distributed unavailable")
    mp.spawn(_worker, args=(str(tmp_path / "init"), str(tmp_path)), nprocs=WORLD, join=True)
    xs, xr, fs, fr = _data()
    for variant in ("reference", "paper"):
        fs.zero_grad(), fr.zero_grad()
        loss = contrastive_loss(fs(xs), fr(xr), variant=variant)
        loss.backward()
        expected = [p.grad for p in (*fs.parameters(), *fr.parameters())]
        for rank in range(WORLD):
            got_loss, got_grads = torch.load(tmp_path / f"rank{rank}.pt")[variant]
            assert got_loss.item() == pytest.approx(loss.item(), rel=1e-12)
            for g, e in zip(got_grads, expected):
                assert torch.allclose(g, e, rtol=1e-10, atol=1e-12)
    # uneven split 3 + 1 of a 4-row global batch, then 4 + 0 (an empty rank must not deadlock)
    zs, zr = F.normalize(xs[:4], dim=1), F.normalize(xr[:4], dim=1)
    terms = 0.5 * (_reference_terms(zs, zs, zr, 0, 0.4) + _reference_terms(zr, zr, zs, 0, 0.4))
    r0, r1 = torch.load(tmp_path / "rank0.pt"), torch.load(tmp_path / "rank1.pt")
    assert r0["uneven"] == pytest.approx(terms[:3].mean().item(), rel=1e-10)
    assert r1["uneven"] == pytest.approx(terms[3].item(), rel=1e-10)
    assert r0["empty"] == pytest.approx(terms.mean().item(), rel=1e-10)
    assert r1["empty"] == 0.0
