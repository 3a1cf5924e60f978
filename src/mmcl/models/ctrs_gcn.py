"""CTRS-GCN baseline (REFERENCE §5.8): CTR-GCN's skeleton without topology refinement.

Learnable adjacency starting from three identities (the skeleton graph is ignored), column
L2-normalised in the forward pass; one 1×1 conv per subset; a single 5×1 temporal conv per block.
The three subset convs run as one conv on the joint-aggregated input (weights concatenated on
the fly), the same math as the official per-subset loop.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from mmcl.models.blocks import (
    BLOCK_CHANNELS,
    GraphTemporalBlock,
    SkeletonBackbone,
    TemporalUnit,
    bn_init,
    down_path,
    make_residual,
)
from mmcl.models.graph import identity_adjacency
from mmcl.skeleton.layouts import SkeletonLayout, get_layout

__all__ = ["CTRSGCN", "StaticGraphConv", "CTRSGCNBlock"]

NUM_SUBSETS = 3  # REFERENCE §5.8: three stacked identities
ADJ_NORM_EPS = 1e-4  # REFERENCE §5.8: PA / (||PA||_col + 1e-4)
TEMPORAL_KERNEL = 5  # REFERENCE §5.8
GCN_OUTPUT_BN_INIT = 1e-6  # REFERENCE §5.8


class StaticGraphConv(nn.Module):
    """Baseline unit_gcn: ``BN(sum_k conv_k(x · norm(PA_k))) + down(x)``, ReLU (REFERENCE §5.8)."""

    def __init__(self, in_channels: int, out_channels: int, num_joints: int, num_subsets: int = NUM_SUBSETS) -> None:
        super().__init__()
        self.num_subsets = num_subsets
        self.adjacency = nn.Parameter(torch.from_numpy(identity_adjacency(num_joints, num_subsets)))
        self.subset_convs = nn.ModuleList(nn.Conv2d(in_channels, out_channels, 1) for _ in range(num_subsets))
        self.down = down_path(in_channels, out_channels)
        self.bn = nn.BatchNorm2d(out_channels)
        bn_init(self.bn, GCN_OUTPUT_BN_INIT)
        # conv_branch_init: N(0, sqrt(2 / (C_out · C_in · 1 · num_subsets))), bias 0.
        for conv in self.subset_convs:
            n = conv.weight.shape[0] * conv.weight.shape[1] * conv.weight.shape[2]
            nn.init.normal_(conv.weight, 0.0, math.sqrt(2.0 / (n * num_subsets)))
            nn.init.zeros_(conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, t, v = x.shape
        k = self.num_subsets
        adj = self.adjacency / (torch.linalg.vector_norm(self.adjacency, dim=1, keepdim=True) + ADJ_NORM_EPS)
        # agg[n, k, c, t, w] = sum_u x[n, c, t, u] · adj[k, u, w]; one conv over (k, c) channels.
        agg = torch.einsum("nctu,kuw->nkctw", x, adj).reshape(n, k * c, t, v)
        w = torch.cat([m.weight for m in self.subset_convs], 1)
        b = torch.stack([m.bias for m in self.subset_convs], 0).sum(0)
        y = F.conv2d(agg, w, b)
        return F.relu(self.bn(y) + self.down(x))


class CTRSGCNBlock(GraphTemporalBlock):
    """Baseline TCN_GCN_unit: ``ReLU(unit_tcn(unit_gcn(x)) + residual(x))``."""

    def __init__(self, in_channels: int, out_channels: int, num_joints: int, stride: int, residual: bool) -> None:
        super().__init__()
        self.graph_conv = StaticGraphConv(in_channels, out_channels, num_joints)
        self.temporal_conv = TemporalUnit(out_channels, out_channels, kernel_size=TEMPORAL_KERNEL, stride=stride)
        self.residual, self.use_residual = make_residual(in_channels, out_channels, stride, residual)


class CTRSGCN(SkeletonBackbone):
    """CTRS-GCN baseline (REFERENCE §5.8); same input stage, channels, strides and head as CTR-GCN.

    The official l1 hard-codes 3 input channels; here l1 takes ``in_channels`` (same model for 3).
    """

    def __init__(
        self,
        num_classes: int,
        layout: SkeletonLayout | str = "ntu25",
        num_persons: int = 2,
        in_channels: int = 3,
        drop_out: float = 0.0,
    ) -> None:
        super().__init__()
        layout = get_layout(layout)
        self._init_input("ctrs-gcn", num_classes, layout, num_persons, in_channels, drop_out)
        v = layout.num_joints
        self.blocks = nn.ModuleList(
            CTRSGCNBlock(in_channels if c_in < 0 else c_in, c_out, v, stride=s, residual=res)
            for c_in, c_out, s, res in BLOCK_CHANNELS
        )
        self._init_head(num_classes, drop_out)
