"""Building blocks the skeleton backbones share (CTR-GCN, CTRS-GCN, HD-GCN; REFERENCE §5).

The l1..l10 channel table, the official initialisations, the data-BN input stage and pooled head
(:class:`SkeletonBackbone`), the block shape ``ReLU(temporal(graph(x)) + residual(x))``, CTR-GCN's
multi-scale temporal convolution (HD-GCN uses it too, with a separate bias) with its batched BNs
(:func:`fused_batch_norm`), and the strided temporal unit of the block residuals.
"""

from __future__ import annotations

import math
from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

from mmcl.skeleton.layouts import SkeletonLayout

__all__ = [
    "BLOCK_CHANNELS",
    "FEATURE_DIM",
    "REFERENCE_BASE_CHANNELS",
    "block_channels",
    "conv_init",
    "bn_init",
    "down_path",
    "fused_batch_norm",
    "TemporalConv",
    "MultiScaleTemporalConv",
    "TemporalUnit",
    "make_residual",
    "GraphTemporalBlock",
    "SkeletonBackbone",
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
TCN_KERNEL = 5  # REFERENCE §5.4
TCN_DILATIONS = (1, 2)  # REFERENCE §5.4
TCN_BN_INIT_STD = 0.02  # REFERENCE §5.6: MS-TCN BN weight ~ N(1, 0.02)


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


def fused_batch_norm(x: torch.Tensor, bns: list[nn.BatchNorm2d], beta_offset: torch.Tensor | None = None) -> torch.Tensor:
    """Training-mode BN of ``x`` whose channels are those of ``bns`` in order, in one kernel call.

    BN is per channel, so this is exactly ``cat([bn_i(x_i)])``; each module's running statistics
    and ``num_batches_tracked`` are updated as its own forward would (momentum, or the cumulative
    average when momentum is None). One wide call instead of several narrow ones: the CPU BN
    kernels (backward in particular, and in bf16 most of all) are slow on few-channel tensors.
    ``beta_offset`` is added to the BN biases (per channel).
    """
    first = bns[0]
    momentum = first.momentum
    if any(b.momentum != momentum or b.eps != first.eps or not b.track_running_stats for b in bns):
        raise ValueError("fused_batch_norm needs BNs with the same momentum/eps and running statistics")
    if momentum is None and len({int(b.num_batches_tracked) for b in bns}) > 1:  # per-module averaging factors
        out = torch.cat([b(part) for b, part in zip(bns, x.split([b.num_features for b in bns], 1))], 1)
        return out if beta_offset is None else out + beta_offset.view(1, -1, *([1] * (x.dim() - 2)))
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
        torch.cat([b.bias for b in bns]) if beta_offset is None else torch.cat([b.bias for b in bns]) + beta_offset,
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
    """Temporal convolution (k×1, dilated) + BN inside an MS-TCN branch (REFERENCE §5.4).

    ``separate_bias``: HD-GCN's variant keeps the bias as its own 1×C×1×1 parameter next to a
    bias-free conv (same function; its checkpoints store ``bias`` beside ``conv.weight``).
    """

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, stride: int, dilation: int, separate_bias: bool = False
    ) -> None:
        super().__init__()
        pad = (kernel_size + (kernel_size - 1) * (dilation - 1) - 1) // 2  # REFERENCE §5.4
        self.conv = nn.Conv2d(
            in_channels, out_channels, (kernel_size, 1), padding=(pad, 0), stride=(stride, 1), dilation=(dilation, 1),
            bias=not separate_bias,
        )
        self.bias = nn.Parameter(torch.zeros(1, out_channels, 1, 1)) if separate_bias else None
        self.bn = nn.BatchNorm2d(out_channels)

    def convolve(self, x: torch.Tensor) -> torch.Tensor:
        """The convolution with its bias, before the BN."""
        y = self.conv(x)
        return y if self.bias is None else y + self.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.convolve(x))


class DilatedBranch(nn.Module):
    """MS-TCN branch: 1×1 conv, BN, ReLU, dilated temporal conv, BN."""

    def __init__(
        self, in_channels: int, width: int, kernel_size: int, stride: int, dilation: int, separate_bias: bool = False
    ) -> None:
        super().__init__()
        self.pointwise = nn.Conv2d(in_channels, width, 1)
        self.pointwise_bn = nn.BatchNorm2d(width)
        self.temporal = TemporalConv(width, width, kernel_size, stride, dilation, separate_bias)

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
    """MS-TCN, 4 branches of width C/4 concatenated (REFERENCE §5.4); no internal residual.

    ``separate_bias``: HD-GCN's dilated branches (:class:`TemporalConv`)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        kernel_size: int = TCN_KERNEL,
        dilations: tuple[int, ...] = TCN_DILATIONS,
        separate_bias: bool = False,
    ) -> None:
        super().__init__()
        num_branches = len(dilations) + 2
        if out_channels % num_branches:
            raise ValueError(f"MS-TCN needs out_channels divisible by {num_branches}, got {out_channels}")
        width = out_channels // num_branches
        self.stride = stride
        self.width = width
        branches: list[nn.Module] = [
            DilatedBranch(in_channels, width, kernel_size, stride, d, separate_bias) for d in dilations
        ]
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
        outs = [b.temporal.convolve(a[:, i * width : (i + 1) * width]) for i, b in enumerate(dilated)]
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
