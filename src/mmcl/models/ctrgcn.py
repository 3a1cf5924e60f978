"""CTR-GCN backbone (REFERENCE §5), same math as the official model, fused for CPU speed.

Parameters are kept per adjacency subset and per MS-TCN branch, with the official shapes, so
the mapping to official state_dict keys (``mmcl.checkpoints.official``) is a pure renaming. The
forward pass differs from a literal transcription only in how it is computed:

* the three subsets' conv1/conv2/conv3/conv4 run as one (grouped) convolution each, with the
  per-subset weights concatenated on the fly; alpha scales conv4's weights, not its output;
* conv1/conv2 run on the time-mean of the input: a 1×1 conv (bias included) commutes with the
  mean over frames, so ``mean_T(conv(x)) == conv(mean_T(x))`` at a fraction of the cost;
* the sum over subsets is folded into one einsum contraction over (subset, joint);
* the stride-1 pointwise convolutions of the MS-TCN branches run as one convolution.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mmcl.models.blocks import (
    BLOCK_CHANNELS,
    FEATURE_DIM,
    REFERENCE_BASE_CHANNELS,
    GraphTemporalBlock,
    MultiScaleTemporalConv,
    SkeletonBackbone,
    TemporalUnit,
    block_channels,
    bn_init,
    conv_init,
    down_path,
    fused_batch_norm,
    make_residual,
)
from mmcl.models.graph import spatial_adjacency
from mmcl.skeleton.layouts import SkeletonLayout, get_layout

__all__ = [
    "CTRGCN",
    "CTRGraphConv",
    "TopologyRefinement",
    "CTRGCNBlock",
    "relation_channels",
    # shared blocks, importable from here as before
    "SkeletonBackbone",
    "MultiScaleTemporalConv",
    "TemporalUnit",
    "BLOCK_CHANNELS",
    "FEATURE_DIM",
    "REFERENCE_BASE_CHANNELS",
    "GraphTemporalBlock",
    "block_channels",
    "bn_init",
    "conv_init",
    "down_path",
    "fused_batch_norm",
    "make_residual",
]

NUM_SUBSETS = 3  # REFERENCE §4.1: identity, inward, outward
GCN_OUTPUT_BN_INIT = 1e-6  # REFERENCE §5.6: unit_gcn output BN weight


def relation_channels(in_channels: int) -> int:
    """CTR-GC relation width R (REFERENCE §5.3): 8 for 3/9 input channels, else C_in // 8.

    Inputs narrower than 8 channels (where the official rule gives 0 and crashes) also get 8.
    """
    if in_channels in (3, 9) or in_channels < 8:
        return 8
    return in_channels // 8


class TopologyRefinement(nn.Module):
    """Parameters of one CTR-GC (REFERENCE §5.3); computed jointly by :class:`CTRGraphConv`.

    ``query``/``key``/``value``/``expand`` are the official conv1/conv2/conv3/conv4.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        rel = relation_channels(in_channels)
        self.query = nn.Conv2d(in_channels, rel, 1)
        self.key = nn.Conv2d(in_channels, rel, 1)
        self.value = nn.Conv2d(in_channels, out_channels, 1)
        self.expand = nn.Conv2d(rel, out_channels, 1)
        for conv in (self.query, self.key, self.value, self.expand):
            conv_init(conv)


class CTRGraphConv(nn.Module):
    """unit_gcn: sum of three CTR-GCs, BN, residual ``down`` path, ReLU (REFERENCE §5.3)."""

    def __init__(self, in_channels: int, out_channels: int, adjacency: np.ndarray) -> None:
        super().__init__()
        num_subsets = adjacency.shape[0]
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.rel_channels = relation_channels(in_channels)
        self.num_subsets = num_subsets
        # Direct parameters first: official state_dict order is PA, alpha, convs, down, bn.
        self.adjacency = nn.Parameter(torch.from_numpy(np.array(adjacency, dtype=np.float32)))
        self.alpha = nn.Parameter(torch.zeros(1))  # shared by the subsets, REFERENCE §5.3
        self.topology = nn.ModuleList(TopologyRefinement(in_channels, out_channels) for _ in range(num_subsets))
        self.down = down_path(in_channels, out_channels)
        self.bn = nn.BatchNorm2d(out_channels)
        bn_init(self.bn, GCN_OUTPUT_BN_INIT)
        # True: conv1/conv2 on every frame, then the time-mean, as the reference computes them
        # (same result, more MACs); used to count the reference formulation's cost.
        self.reference_order = False

    def _relations(self, x: torch.Tensor, transposed: bool) -> torch.Tensor:
        """tanh(conv1(x̄)_u - conv2(x̄)_w) of all subsets: n × kR × V × V ((u, w), or (w, u) if transposed)."""
        k, r = self.num_subsets, self.rel_channels
        topo = list(self.topology)
        # conv1 and conv2 of all subsets on the time-mean (1×1 conv commutes with mean_T).
        qk_w = torch.cat([m.query.weight for m in topo] + [m.key.weight for m in topo], 0).flatten(1)
        qk_b = torch.cat([m.query.bias for m in topo] + [m.key.bias for m in topo], 0)
        if self.reference_order:
            qk = (torch.einsum("oc,nctv->notv", qk_w, x) + qk_b.view(1, -1, 1, 1)).mean(2)
        else:
            qk = torch.matmul(qk_w, x.mean(2)) + qk_b.unsqueeze(-1)  # n × 2kR × V
        q, kk = qk.split(k * r, dim=1)
        if transposed:
            return torch.tanh(q.unsqueeze(-2) - kk.unsqueeze(-1))
        return torch.tanh(q.unsqueeze(-1) - kk.unsqueeze(-2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self._forward_train(x) if self.training and not self.reference_order else self._forward_eval(x)
        y = self.bn(y) + self.down(x)
        return F.relu(y)

    def _forward_eval(self, x: torch.Tensor) -> torch.Tensor:
        """Fewest MACs: grouped conv4, one einsum over (subset, joint)."""
        n, _, t, v = x.shape
        k, c = self.num_subsets, self.out_channels
        topo = list(self.topology)
        rel = self._relations(x, transposed=False)  # n × kR × V(u) × V(w)
        # conv4 of all subsets as one grouped conv; alpha·conv4(D) folded into the (small) weights.
        ex_w = torch.cat([m.expand.weight for m in topo], 0) * self.alpha
        ex_b = torch.cat([m.expand.bias for m in topo], 0) * self.alpha
        refined = F.conv2d(rel, ex_w, ex_b, groups=k).view(n, k, c, v, v) + self.adjacency.unsqueeze(1)
        # conv3 of all subsets as one conv.
        val_w = torch.cat([m.value.weight for m in topo], 0)
        val_b = torch.cat([m.value.bias for m in topo], 0)
        val = F.conv2d(x, val_w, val_b).view(n, k, c, t, v)
        # out[n,c,t,u] = sum_k sum_w Q_k[n,c,u,w] · v_k[n,c,t,w]
        return torch.einsum("nkcuw,nkctw->nctu", refined, val)

    def _forward_train(self, x: torch.Tensor) -> torch.Tensor:
        """Copy-free layout for training: the contraction over (subset, joint) is one bmm on views.

        conv3 runs on the (T, V)-transposed input with output channels ordered (channel, subset), so
        its output is n × C × (k·V) × T as stored; conv4 runs as a dense 1×1 conv with a
        block-diagonal weight (zeros across subsets) on the transposed relations, so Q is
        n × C × (k·V) × V as stored. Same function as :meth:`_forward_eval`: no permute copies of
        the large n × kC × T × V / n × kC × V × V tensors in either pass, at the price of
        multiplying conv4's (small) inputs by zeros.
        """
        n, _, t, v = x.shape
        k, r, c = self.num_subsets, self.rel_channels, self.out_channels
        topo = list(self.topology)
        rel_t = self._relations(x, transposed=True)  # n × kR × V(w) × V(u)
        ex_w = torch.stack([m.expand.weight.flatten(1) for m in topo], 1) * self.alpha  # C × k × R
        ex_b = torch.stack([m.expand.bias for m in topo], 1) * self.alpha  # C × k
        eye = torch.eye(k, dtype=ex_w.dtype, device=ex_w.device)
        ex_bd = (ex_w.unsqueeze(2) * eye.view(1, k, k, 1)).reshape(c * k, k * r, 1, 1)  # (c,k) × (k',r)
        q_t = F.conv2d(rel_t, ex_bd, ex_b.reshape(-1)).view(n, c, k, v, v)
        # + PA (transposed, contiguous, in the conv's dtype under autocast); in place: conv's
        # backward does not need its output.
        q_t = q_t.add_(self.adjacency.transpose(1, 2).contiguous().to(q_t.dtype))
        val_w = torch.stack([m.value.weight for m in topo], 1).reshape(c * k, -1, 1, 1)  # (c,k) × C_in
        val_b = torch.stack([m.value.bias for m in topo], 1).reshape(-1)
        val_t = F.conv2d(x.transpose(2, 3), val_w, val_b)  # n × (c,k) × V(w) × T
        # out[(n,c), t, u] = sum_(k,w) val[(n,c), (k,w), t] · Q[(n,c), (k,w), u]
        out = torch.bmm(val_t.view(n * c, k * v, t).transpose(1, 2), q_t.view(n * c, k * v, v))
        return out.view(n, c, t, v)


class CTRGCNBlock(GraphTemporalBlock):
    """TCN_GCN_unit: ``ReLU(MS-TCN(unit_gcn(x)) + residual(x))`` (REFERENCE §5.2)."""

    def __init__(
        self, in_channels: int, out_channels: int, adjacency: np.ndarray, stride: int = 1, residual: bool = True
    ) -> None:
        super().__init__()
        self.graph_conv = CTRGraphConv(in_channels, out_channels, adjacency)
        self.temporal_conv = MultiScaleTemporalConv(out_channels, out_channels, stride=stride)
        self.residual, self.use_residual = make_residual(in_channels, out_channels, stride, residual)


class CTRGCN(SkeletonBackbone):
    """CTR-GCN (REFERENCE §5): data BN, 10 CTR-GC/MS-TCN blocks, mean pooling, linear head."""

    def __init__(
        self,
        num_classes: int,
        layout: SkeletonLayout | str = "ntu25",
        num_persons: int = 2,
        in_channels: int = 3,
        drop_out: float = 0.0,
        base_channels: int = REFERENCE_BASE_CHANNELS,
    ) -> None:
        super().__init__()
        layout = get_layout(layout)
        table = block_channels(base_channels)
        self._init_input("ctrgcn", num_classes, layout, num_persons, in_channels, drop_out)
        if base_channels != REFERENCE_BASE_CHANNELS:
            self.builder_args["base_channels"] = base_channels
        self.feature_dim = table[-1][1]
        adjacency = spatial_adjacency(layout)
        self.blocks = nn.ModuleList(
            CTRGCNBlock(in_channels if c_in < 0 else c_in, c_out, adjacency, stride=s, residual=res)
            for c_in, c_out, s, res in table
        )
        self._init_head(num_classes, drop_out)
