"""HD-GCN backbone (Lee et al., ICCV 2023; official code github.com/Jho-Yonsei/HD-GCN, model/HDGCN.py).

Same math as the official model, computed for the CPU; parameters keep the official shapes, so
official checkpoints map by renaming (:mod:`mmcl.checkpoints.official`). Per block:

* HD-Graph convolution (official ``HD_Gconv``): for each of the L hierarchy layers
  (:mod:`mmcl.models.hierarchy`), a 1×1 squeeze to C/4 channels, three subset branches
  (graph aggregation ``x·A[l,k]ᵀ`` then 1×1 conv + BN) and one EdgeConv branch (kNN over the
  time-mean of the joints, k=5); the four C/4-wide outputs are concatenated. The layers are then
  summed (l1) or weighted by the attention-guided hierarchy aggregation (AHA: per-channel sigmoid
  weights from an EdgeConv, k=3, over per-layer joint means), followed by BN, residual, ReLU.
* MS-TCN (CTR-GCN's, with HD-GCN's separate temporal-conv bias), block residual, ReLU.

How it is computed, not what: the L squeeze convolutions run as one convolution, the L·3 subset
convolutions as one matmul batched over layers and applied *before* the aggregation (a 1×1 conv
commutes with a linear map over joints), the aggregation as one batched matmul, the subset
convolutions' bias goes to the BN's running mean only (training BN removes a per-channel constant
exactly), the L EdgeConvs run as one grouped convolution, BNs of a kind in one call, eval-mode BNs
are folded into the convolutions before them, and the EdgeConv output, constant over time, is
broadcast instead of repeated. Tests compare with a literal transcription in float64.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mmcl.models.blocks import (
    REFERENCE_BASE_CHANNELS,
    GraphTemporalBlock,
    MultiScaleTemporalConv,
    SkeletonBackbone,
    block_channels,
    bn_init,
    conv_init,
    down_path,
    fused_batch_norm,
    make_residual,
)
from mmcl.models.hierarchy import ATTENTION_KNN, EDGE_KNN, hierarchy_adjacency, hierarchy_groups
from mmcl.skeleton.layouts import SkeletonLayout, get_layout

__all__ = ["HDGCN", "HDGraphConv", "HierarchyAttention", "EdgeConv", "HDGCNBlock"]

GCN_OUTPUT_BN_INIT = 1e-6  # HD_Gconv: bn_init(self.bn, 1e-6)
EDGE_NEGATIVE_SLOPE = 0.2  # EdgeConv's LeakyReLU


def batch_norm(x: torch.Tensor, bns: list[nn.BatchNorm2d], shift: torch.Tensor | None = None) -> torch.Tensor:
    """``cat([bn_i(x_i + shift_i)])`` over channel blocks in one call, training or eval.

    ``shift`` is a per-channel constant (a conv bias) the caller did not add: in training BN removes
    it from the output exactly, so only the running means need it (added with the BN's own factor);
    it stays in the graph with its exact gradient, zero, so optimisers treat it as the official
    model's (weight decay, momentum).
    """
    if bns[0].training:
        out = fused_batch_norm(x, bns, beta_offset=None if shift is None else shift * 0)
        if shift is not None:
            with torch.no_grad():
                for b, part in zip(bns, shift.detach().split([b.num_features for b in bns])):
                    factor = b.momentum if b.momentum is not None else 1.0 / float(b.num_batches_tracked)
                    b.running_mean.add_(part.to(b.running_mean.dtype), alpha=factor)
        return out
    mean = torch.cat([b.running_mean for b in bns])
    return F.batch_norm(
        x,
        mean if shift is None else mean - shift,
        torch.cat([b.running_var for b in bns]),
        torch.cat([b.weight for b in bns]),
        torch.cat([b.bias for b in bns]),
        False,
        0.0,
        bns[0].eps,
    )


def folded(weight: torch.Tensor, bias: torch.Tensor, bns: list[nn.BatchNorm2d]) -> tuple[torch.Tensor, torch.Tensor]:
    """Eval-mode BN folded into the preceding 1×1 convolution: (scale·W, scale·(b - mean) + beta)."""
    scale = torch.cat([b.weight for b in bns]) * torch.rsqrt(torch.cat([b.running_var for b in bns]) + bns[0].eps)
    shape = (-1,) + (1,) * (weight.dim() - 1)
    beta = torch.cat([b.bias for b in bns])
    return weight * scale.view(shape), (bias - torch.cat([b.running_mean for b in bns])) * scale + beta


class ConvBN(nn.Module):
    """A 1×1 convolution and its BN (parameters only; the fused forward lives in the owner)."""

    def __init__(self, in_channels: int, out_channels: int, bias: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 1, bias=bias)
        self.bn = nn.BatchNorm2d(out_channels)


def nearest_neighbours(x: torch.Tensor, k: int) -> torch.Tensor:
    """Indices (B × P × k) of the k nearest points (self included) of B × C × P points, as the official
    ``knn`` computes the distances (-|x_i|² + 2 x_i·x_j - |x_j|²), so ties resolve alike."""
    inner = -2 * torch.matmul(x.transpose(2, 1), x)
    xx = torch.sum(x**2, dim=1, keepdim=True)
    return (-xx - inner - xx.transpose(2, 1)).topk(k=k, dim=-1)[1]


def edge_features(x: torch.Tensor, k: int) -> torch.Tensor:
    """B × 2C × P × k: ``[x_neighbour - x, x]`` for each point's k nearest neighbours (DGCNN's EdgeConv input)."""
    b, c, p = x.shape
    idx = nearest_neighbours(x, k)  # B × P × k
    pts = x.transpose(1, 2)  # B × P × C
    neighbours = torch.gather(pts, 1, idx.reshape(b, p * k, 1).expand(-1, -1, c)).view(b, p, k, c)
    centre = pts.unsqueeze(2).expand(-1, -1, k, -1)
    return torch.cat((neighbours - centre, centre), dim=3).permute(0, 3, 1, 2)


class EdgeConv(nn.Module):
    """Parameters of one EdgeConv: bias-free 1×1 conv over ``[x_j - x_i, x_i]``, BN, LeakyReLU(0.2), max over k."""

    def __init__(self, channels: int, k: int) -> None:
        super().__init__()
        self.k = k
        self.conv = nn.Conv2d(2 * channels, channels, 1, bias=False)
        self.bn = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """B × C × P points -> B × C × P."""
        y = self.bn(self.conv(edge_features(x, self.k)))
        return F.leaky_relu(y, EDGE_NEGATIVE_SLOPE).amax(-1)


class HierarchyAttention(nn.Module):
    """AHA: per-channel weights of the L layers, from an EdgeConv over the layers' joint means."""

    def __init__(self, channels: int, groups: list[list[int]], num_joints: int) -> None:
        super().__init__()
        inter = channels // 4
        self.squeeze = ConvBN(channels, inter)
        self.edge = EdgeConv(inter, ATTENTION_KNN)
        self.aggregate = nn.Conv1d(inter, channels, 1)
        # layer l samples the mean of its two levels' joints
        layers = len(groups) - 1
        member = np.zeros((layers, num_joints), dtype=np.float32)
        for i in range(layers):
            member[i, groups[i] + groups[i + 1]] = 1.0
        self.register_buffer("member", torch.from_numpy(member), persistent=False)
        self.register_buffer("count", torch.from_numpy(member.sum(1)), persistent=False)

    def weights(self, peak: torch.Tensor) -> torch.Tensor:
        """N × C × L × V (max over time of each layer's features) -> N × C × L sigmoid weights."""
        s = F.relu(self.squeeze.bn(self.squeeze.conv(peak)))
        sampled = torch.einsum("nclv,lv->ncl", s, self.member.to(s.dtype)) / self.count.to(s.dtype)
        return torch.sigmoid(self.aggregate(self.edge(sampled)))


class HDGraphConv(nn.Module):
    """HD_Gconv: L hierarchy layers × (3 subset branches + EdgeConv), summed or AHA-weighted, BN, residual, ReLU."""

    def __init__(
        self, in_channels: int, out_channels: int, adjacency: np.ndarray, groups: list[list[int]], attention: bool
    ) -> None:
        super().__init__()
        layers, subsets, v = adjacency.shape[0], adjacency.shape[1], adjacency.shape[-1]
        if out_channels % (subsets + 1):
            raise ValueError(f"HD-GCN needs widths divisible by {subsets + 1}, got {out_channels}")
        inter = out_channels // (subsets + 1)
        self.num_layers, self.num_subsets, self.inter = layers, subsets, inter
        self.adjacency = nn.Parameter(torch.from_numpy(np.array(adjacency, dtype=np.float32)))
        self.squeeze = nn.ModuleList(ConvBN(in_channels, inter) for _ in range(layers))
        self.subsets = nn.ModuleList(nn.ModuleList(ConvBN(inter, inter) for _ in range(subsets)) for _ in range(layers))
        self.edges = nn.ModuleList(EdgeConv(inter, EDGE_KNN) for _ in range(layers))
        self.attention = HierarchyAttention(out_channels, groups, v) if attention else None
        self.down = down_path(in_channels, out_channels)
        self.bn = nn.BatchNorm2d(out_channels)
        for m in self.modules():  # HD_Gconv's init (AHA's Conv1d keeps PyTorch's default)
            if isinstance(m, nn.Conv2d):
                conv_init(m)
            elif isinstance(m, nn.BatchNorm2d):
                bn_init(m, 1.0)
        bn_init(self.bn, GCN_OUTPUT_BN_INIT)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, t, v = x.shape
        nl, k, c = self.num_layers, self.num_subsets, self.inter
        train_bn = self.bn.training
        # squeeze of every layer: one conv, one BN (folded into the conv in eval)
        sq_bns = [m.bn for m in self.squeeze]
        w = torch.cat([m.conv.weight for m in self.squeeze])
        b = torch.cat([m.conv.bias for m in self.squeeze])
        if train_bn:
            h = F.relu(batch_norm(F.conv2d(x, w, b), sq_bns))  # n × (l, c) × T × V
        else:
            h = F.relu(F.conv2d(x, *folded(w, b, sq_bns)))
        # subset branches: the 1×1 convs first, as one matmul batched over layers; then the
        # aggregation by A[l, k] as one matmul batched over (layer, subset); bias and BN after
        subsets = [s for layer in self.subsets for s in layer]
        sub_bns = [s.bn for s in subsets]
        ws = torch.cat([s.conv.weight for s in subsets]).view(nl * k * c, c)
        bs = torch.cat([s.conv.bias for s in subsets])
        if not train_bn:
            ws, bs = folded(ws, bs, sub_bns)
        g = torch.matmul(ws.view(nl, k * c, c), h.view(n, nl, c, t * v))  # n × l × (k, o) × (T, V)
        adj = self.adjacency.reshape(nl * k, v, v).transpose(1, 2).to(g.dtype)
        z = torch.matmul(g.view(n, nl * k, c * t, v), adj).view(n, nl * k * c, t, v)  # z[.., w] = sum_u g[.., u] A[w, u]
        z = batch_norm(z, sub_bns, shift=bs) if train_bn else z + bs.to(z.dtype).view(1, -1, 1, 1)
        z = z.view(n, nl, k * c, t, v)
        # EdgeConv branches on the time-mean: kNN per (sample, layer), one grouped conv
        pts = h.view(n, nl, c, t, v).mean(3).reshape(n * nl, c, v)
        feats = edge_features(pts, EDGE_KNN).reshape(n, nl * 2 * c, v, EDGE_KNN)
        we = torch.cat([e.conv.weight for e in self.edges])
        e = batch_norm(F.conv2d(feats, we, groups=nl), [e.bn for e in self.edges])
        e = F.leaky_relu(e, EDGE_NEGATIVE_SLOPE).amax(-1).view(n, nl, c, v)  # constant over time
        if self.attention is None:
            out = torch.cat([z.sum(1), e.sum(1).unsqueeze(2).expand(-1, -1, t, -1)], dim=1)
        else:
            peak = torch.cat([z.max(3).values, e], dim=2).transpose(1, 2)  # n × C × L × V
            a = self.attention.weights(peak).to(z.dtype).transpose(1, 2)  # n × L × C
            zs = (z * a[:, :, : k * c, None, None]).sum(1)
            es = (e * a[:, :, k * c :, None]).sum(1)
            out = torch.cat([zs, es.unsqueeze(2).expand(-1, -1, t, -1)], dim=1)
        return F.relu(self.bn(out) + self.down(x))


class HDGCNBlock(GraphTemporalBlock):
    """TCN_GCN_unit of HD-GCN: ``ReLU(MS-TCN(HD_Gconv(x)) + residual(x))``."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        adjacency: np.ndarray,
        groups: list[list[int]],
        stride: int = 1,
        residual: bool = True,
        attention: bool = True,
    ) -> None:
        super().__init__()
        self.graph_conv = HDGraphConv(in_channels, out_channels, adjacency, groups, attention)
        self.temporal_conv = MultiScaleTemporalConv(out_channels, out_channels, stride=stride, separate_bias=True)
        self.residual, self.use_residual = make_residual(in_channels, out_channels, stride, residual)


class HDGCN(SkeletonBackbone):
    """HD-GCN: data BN, 10 HD-Graph/MS-TCN blocks (no AHA in l1), mean pooling, linear head.

    ``com`` is the 1-based centre-of-mass joint of the hierarchy (HD-GCN's ``CoM``; default: NTU 21,
    Kinect-20 3, else the layout's root). Channels, strides and residuals are CTR-GCN's table.
    """

    def __init__(
        self,
        num_classes: int,
        layout: SkeletonLayout | str = "ntu25",
        num_persons: int = 2,
        in_channels: int = 3,
        drop_out: float = 0.0,
        base_channels: int = REFERENCE_BASE_CHANNELS,
        com: int | None = None,
    ) -> None:
        super().__init__()
        layout = get_layout(layout)
        groups = hierarchy_groups(layout, com)
        self.com = groups[0][0] + 1
        table = block_channels(base_channels)
        self._init_input("hdgcn", num_classes, layout, num_persons, in_channels, drop_out)
        self.builder_args["com"] = self.com
        if base_channels != REFERENCE_BASE_CHANNELS:
            self.builder_args["base_channels"] = base_channels
        self.feature_dim = table[-1][1]
        adjacency = hierarchy_adjacency(layout, self.com)
        self.blocks = nn.ModuleList(
            HDGCNBlock(in_channels if c_in < 0 else c_in, c_out, adjacency, groups, stride=s, residual=res, attention=i > 0)
            for i, (c_in, c_out, s, res) in enumerate(table)
        )
        self._init_head(num_classes, drop_out)

