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

import math
from collections import OrderedDict

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mmcl.models.graph import spatial_adjacency
from mmcl.skeleton.layouts import SkeletonLayout, get_layout

__all__ = [
    "CTRGCN",
    "SkeletonBackbone",
    "CTRGraphConv",
    "TopologyRefinement",
    "MultiScaleTemporalConv",
    "TemporalUnit",
    "CTRGCNBlock",
    "BLOCK_CHANNELS",
    "relation_channels",
]

# REFERENCE §5.2: (in, out, temporal stride, block residual) for l1..l10; l1's input is C_in.
BLOCK_CHANNELS: tuple[tuple[int, int, int, bool], ...] = (
    (-1, 64, 1, False),
    (64, 64, 1, True),
    (64, 64, 1, True),
    (64, 64, 1, True),
    (64, 128, 2, True),
    (128, 128, 1, True),
    (128, 128, 1, True),
    (128, 256, 2, True),
    (256, 256, 1, True),
    (256, 256, 1, True),
)
FEATURE_DIM = 256  # REFERENCE §5.5: width of l10
REFERENCE_BASE_CHANNELS = 64  # REFERENCE §5.2: width of l1-l4


def block_channels(base_channels: int = REFERENCE_BASE_CHANNELS) -> tuple[tuple[int, int, int, bool], ...]:
    """The l1..l10 table scaled to ``base_channels`` (64 = the reference; narrower for tiny models)."""
    if base_channels < 4 or base_channels % 4:
        raise ValueError(f"base_channels must be a positive multiple of 4 (MS-TCN has 4 branches), got {base_channels}")
    scale = base_channels / REFERENCE_BASE_CHANNELS
    return tuple(
        (c_in if c_in < 0 else int(c_in * scale), int(c_out * scale), s, res) for c_in, c_out, s, res in BLOCK_CHANNELS
    )
NUM_SUBSETS = 3  # REFERENCE §4.1: identity, inward, outward
TCN_KERNEL = 5  # REFERENCE §5.4
TCN_DILATIONS = (1, 2)  # REFERENCE §5.4
GCN_OUTPUT_BN_INIT = 1e-6  # REFERENCE §5.6: unit_gcn output BN weight
TCN_BN_INIT_STD = 0.02  # REFERENCE §5.6: MS-TCN BN weight ~ N(1, 0.02)


def relation_channels(in_channels: int) -> int:
    """CTR-GC relation width R (REFERENCE §5.3): 8 for 3/9 input channels, else C_in // 8.

    Inputs narrower than 8 channels (where the official rule gives 0 and crashes) also get 8.
    """
    if in_channels in (3, 9) or in_channels < 8:
        return 8
    return in_channels // 8


def conv_init(conv: nn.Conv2d) -> None:
    """Kaiming normal, fan_out, gain sqrt(2); bias 0 (REFERENCE §5.6)."""
    nn.init.kaiming_normal_(conv.weight, mode="fan_out")
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)


def bn_init(bn: nn.modules.batchnorm._BatchNorm, scale: float) -> None:
    """Constant BN weight, bias 0 (REFERENCE §5.6)."""
    nn.init.constant_(bn.weight, scale)
    nn.init.zeros_(bn.bias)


def down_path(in_channels: int, out_channels: int) -> nn.Module:
    """unit_gcn's residual: 1×1 conv + BN when the width changes, else identity (REFERENCE §5.3, §5.6)."""
    if in_channels == out_channels:
        return nn.Identity()
    down = nn.Sequential(OrderedDict(conv=nn.Conv2d(in_channels, out_channels, 1), bn=nn.BatchNorm2d(out_channels)))
    conv_init(down.conv)
    bn_init(down.bn, 1.0)
    return down


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


def fused_batch_norm(x: torch.Tensor, bns: list[nn.BatchNorm2d]) -> torch.Tensor:
    """Training-mode BN of ``x`` whose channels are those of ``bns`` in order, in one kernel call.

    BN is per channel, so this is exactly ``cat([bn_i(x_i)])``; each module's running statistics
    and ``num_batches_tracked`` are updated as its own forward would (momentum, or the cumulative
    average when momentum is None). One wide call instead of several narrow ones: the CPU BN
    kernels (backward in particular, and in bf16 most of all) are slow on few-channel tensors.
    """
    first = bns[0]
    momentum = first.momentum
    if any(b.momentum != momentum or b.eps != first.eps or not b.track_running_stats for b in bns):
        raise ValueError("fused_batch_norm needs BNs with the same momentum/eps and running statistics")
    if momentum is None and len({int(b.num_batches_tracked) for b in bns}) > 1:  # per-module averaging factors
        return torch.cat([b(part) for b, part in zip(bns, x.split([b.num_features for b in bns], 1))], 1)
    with torch.no_grad():
        for b in bns:
            b.num_batches_tracked.add_(1)
    factor = 1.0 / float(first.num_batches_tracked) if momentum is None else momentum
    running_mean = torch.cat([b.running_mean for b in bns])
    running_var = torch.cat([b.running_var for b in bns])
    out = F.batch_norm(
        x,
        running_mean,
        running_var,
        torch.cat([b.weight for b in bns]),
        torch.cat([b.bias for b in bns]),
        True,
        factor,
        first.eps,
    )
    with torch.no_grad():
        sizes = [b.num_features for b in bns]
        for b, m, v in zip(bns, running_mean.split(sizes), running_var.split(sizes)):
            b.running_mean.copy_(m)
            b.running_var.copy_(v)
    return out


class TemporalConv(nn.Module):
    """Temporal convolution (k×1, dilated) + BN inside an MS-TCN branch (REFERENCE §5.4)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int, dilation: int) -> None:
        super().__init__()
        pad = (kernel_size + (kernel_size - 1) * (dilation - 1) - 1) // 2  # REFERENCE §5.4
        self.conv = nn.Conv2d(
            in_channels, out_channels, (kernel_size, 1), padding=(pad, 0), stride=(stride, 1), dilation=(dilation, 1)
        )
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))


class DilatedBranch(nn.Module):
    """MS-TCN branch: 1×1 conv, BN, ReLU, dilated temporal conv, BN."""

    def __init__(self, in_channels: int, width: int, kernel_size: int, stride: int, dilation: int) -> None:
        super().__init__()
        self.pointwise = nn.Conv2d(in_channels, width, 1)
        self.pointwise_bn = nn.BatchNorm2d(width)
        self.temporal = TemporalConv(width, width, kernel_size, stride, dilation)

    def tail(self, h: torch.Tensor) -> torch.Tensor:
        return self.temporal(F.relu(self.pointwise_bn(h)))


class PoolBranch(nn.Module):
    """MS-TCN branch: 1×1 conv, BN, ReLU, max-pool 3×1, BN."""

    def __init__(self, in_channels: int, width: int, stride: int) -> None:
        super().__init__()
        self.pointwise = nn.Conv2d(in_channels, width, 1)
        self.pointwise_bn = nn.BatchNorm2d(width)
        self.pool_bn = nn.BatchNorm2d(width)
        self.stride = stride

    def tail(self, h: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.pointwise_bn(h))
        h = F.max_pool2d(h, kernel_size=(3, 1), stride=(self.stride, 1), padding=(1, 0))
        return self.pool_bn(h)


class PointwiseBranch(nn.Module):
    """MS-TCN branch: strided 1×1 conv, BN."""

    def __init__(self, in_channels: int, width: int, stride: int) -> None:
        super().__init__()
        self.pointwise = nn.Conv2d(in_channels, width, 1, stride=(stride, 1))
        self.pointwise_bn = nn.BatchNorm2d(width)

    def tail(self, h: torch.Tensor) -> torch.Tensor:
        return self.pointwise_bn(h)


class MultiScaleTemporalConv(nn.Module):
    """MS-TCN, 4 branches of width C/4 concatenated (REFERENCE §5.4); no internal residual."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        kernel_size: int = TCN_KERNEL,
        dilations: tuple[int, ...] = TCN_DILATIONS,
    ) -> None:
        super().__init__()
        num_branches = len(dilations) + 2
        if out_channels % num_branches:
            raise ValueError(f"MS-TCN needs out_channels divisible by {num_branches}, got {out_channels}")
        width = out_channels // num_branches
        self.stride = stride
        self.width = width
        branches: list[nn.Module] = [DilatedBranch(in_channels, width, kernel_size, stride, d) for d in dilations]
        branches.append(PoolBranch(in_channels, width, stride))
        branches.append(PointwiseBranch(in_channels, width, stride))
        self.branches = nn.ModuleList(branches)
        for m in self.modules():  # REFERENCE §5.6
            if isinstance(m, nn.Conv2d):
                conv_init(m)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.normal_(m.weight, 1.0, TCN_BN_INIT_STD)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and all(b.track_running_stats for b in self.modules() if isinstance(b, nn.BatchNorm2d)):
            return self._forward_train(x)
        branches = list(self.branches)
        # The strided 1×1 conv of the last branch only joins the fused conv when stride is 1.
        fused = branches if self.stride == 1 else branches[:-1]
        w = torch.cat([b.pointwise.weight for b in fused], 0)
        bias = torch.cat([b.pointwise.bias for b in fused], 0)
        parts = F.conv2d(x, w, bias).split(self.width, dim=1)
        outs = [b.tail(p) for b, p in zip(fused, parts)]
        if self.stride != 1:
            last = branches[-1]
            outs.append(last.tail(last.pointwise(x)))
        return torch.cat(outs, dim=1)

    def _forward_train(self, x: torch.Tensor) -> torch.Tensor:
        """Same function with the BNs batched: one BN+ReLU after the 1×1 convs, one BN at the end."""
        branches = list(self.branches)
        *dilated, pool, last = branches
        width = self.width
        fused = branches if self.stride == 1 else branches[:-1]
        w = torch.cat([b.pointwise.weight for b in fused], 0)
        bias = torch.cat([b.pointwise.bias for b in fused], 0)
        h = F.conv2d(x, w, bias)
        n_act = len(dilated) + 1  # branches with BN + ReLU after their 1×1 conv
        pre = h[:, : n_act * width] if self.stride == 1 else h
        a = F.relu(fused_batch_norm(pre, [b.pointwise_bn for b in (*dilated, pool)]))
        outs = [b.temporal.conv(a[:, i * width : (i + 1) * width]) for i, b in enumerate(dilated)]
        outs.append(F.max_pool2d(a[:, len(dilated) * width :], kernel_size=(3, 1), stride=(self.stride, 1), padding=(1, 0)))
        outs.append(h[:, n_act * width :] if self.stride == 1 else last.pointwise(x))
        post = [b.temporal.bn for b in dilated] + [pool.pool_bn, last.pointwise_bn]
        return fused_batch_norm(torch.cat(outs, dim=1), post)


class TemporalUnit(nn.Module):
    """unit_tcn: k×1 temporal conv + BN; the strided block residual of l5/l8 (REFERENCE §5.2)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1, stride: int = 1) -> None:
        super().__init__()
        pad = (kernel_size - 1) // 2
        self.conv = nn.Conv2d(in_channels, out_channels, (kernel_size, 1), padding=(pad, 0), stride=(stride, 1))
        self.bn = nn.BatchNorm2d(out_channels)
        conv_init(self.conv)
        bn_init(self.bn, 1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))


def make_residual(in_channels: int, out_channels: int, stride: int, residual: bool) -> tuple[nn.Module, bool]:
    """Block residual of REFERENCE §5.2: none, identity, or a strided 1×1 :class:`TemporalUnit`."""
    if not residual:
        return nn.Identity(), False
    if in_channels == out_channels and stride == 1:
        return nn.Identity(), True
    return TemporalUnit(in_channels, out_channels, kernel_size=1, stride=stride), True


class GraphTemporalBlock(nn.Module):
    """``ReLU(temporal_conv(graph_conv(x)) + residual(x))``: the block shape both backbones share.

    Subclasses set ``graph_conv``, ``temporal_conv``, ``residual`` and ``use_residual``.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.temporal_conv(self.graph_conv(x))
        if self.use_residual:
            y = y + self.residual(x)
        return F.relu(y)


class CTRGCNBlock(GraphTemporalBlock):
    """TCN_GCN_unit: ``ReLU(MS-TCN(unit_gcn(x)) + residual(x))`` (REFERENCE §5.2)."""

    def __init__(
        self, in_channels: int, out_channels: int, adjacency: np.ndarray, stride: int = 1, residual: bool = True
    ) -> None:
        super().__init__()
        self.graph_conv = CTRGraphConv(in_channels, out_channels, adjacency)
        self.temporal_conv = MultiScaleTemporalConv(out_channels, out_channels, stride=stride)
        self.residual, self.use_residual = make_residual(in_channels, out_channels, stride, residual)


class SkeletonBackbone(nn.Module):
    """Shared data-BN input stage and pooled head (REFERENCE §5.1, §5.5).

    Subclasses set ``data_bn``, ``blocks``, ``dropout``, ``fc`` and ``builder_args``.
    """

    feature_dim: int = FEATURE_DIM

    def _init_input(self, name: str, num_classes: int, layout: SkeletonLayout, num_persons: int, in_channels: int, drop_out: float) -> None:
        """Builder arguments (for export) and the data BN over persons × joints × channels (REFERENCE §5.1)."""
        self.builder_args = {
            "name": name,
            "num_classes": num_classes,
            "layout": layout.name,
            "num_persons": num_persons,
            "in_channels": in_channels,
            "drop_out": drop_out,
        }
        self.num_classes = num_classes
        self.data_bn = nn.BatchNorm1d(num_persons * layout.num_joints * in_channels)
        bn_init(self.data_bn, 1.0)

    def _init_head(self, num_classes: int, drop_out: float) -> None:
        self.dropout = nn.Dropout(drop_out)
        self.fc = nn.Linear(self.feature_dim, num_classes)
        nn.init.normal_(self.fc.weight, 0.0, math.sqrt(2.0 / num_classes))  # REFERENCE §5.6

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """N×C×T×V×M -> N×256: mean of the last block over frames and joints, then persons."""
        n, c, t, v, m = x.shape
        # Channel index m·V·C + v·C + c, normalised over (N, T) (REFERENCE §5.1).
        x = x.permute(0, 4, 3, 1, 2).reshape(n, m * v * c, t)
        x = self.data_bn(x)
        x = x.view(n, m, v, c, t).permute(0, 1, 3, 4, 2).reshape(n * m, c, t, v)
        for block in self.blocks:
            x = block(x)
        return x.reshape(n, m, x.shape[1], -1).mean(3).mean(1)

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        """Dropout then the linear classifier: pooled features -> logits."""
        return self.fc(self.dropout(features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classify(self.forward_features(x))


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
