"""A literal transcription of the official CTR-GCN (REFERENCE §5), with the official module names.

It is the numerical oracle of the tests (its state_dict keys are the official checkpoint keys)
and the "reference way of computing" baseline of ``benchmarks/train_throughput.py``. It is
deliberately plain: no fusion, conv1/conv2 on every frame, one CTR-GC at a time.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from mmcl.models import spatial_adjacency
from mmcl.skeleton.layouts import get_layout



class LiteralCTRGC(nn.Module):
    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        rel = 8 if c_in in (3, 9) else c_in // 8
        self.conv1 = nn.Conv2d(c_in, rel, 1)
        self.conv2 = nn.Conv2d(c_in, rel, 1)
        self.conv3 = nn.Conv2d(c_in, c_out, 1)
        self.conv4 = nn.Conv2d(rel, c_out, 1)

    def forward(self, x, a, alpha):
        x1 = self.conv1(x).mean(-2)
        x2 = self.conv2(x).mean(-2)
        x3 = self.conv3(x)
        d = torch.tanh(x1.unsqueeze(-1) - x2.unsqueeze(-2))
        q = self.conv4(d) * alpha + a[None, None]
        return torch.einsum("ncuv,nctv->nctu", q, x3)


class LiteralUnitGCN(nn.Module):
    def __init__(self, c_in: int, c_out: int, a: np.ndarray) -> None:
        super().__init__()
        self.PA = nn.Parameter(torch.from_numpy(a.copy()))
        self.alpha = nn.Parameter(torch.zeros(1))
        self.convs = nn.ModuleList(LiteralCTRGC(c_in, c_out) for _ in range(3))
        self.down = nn.Sequential(nn.Conv2d(c_in, c_out, 1), nn.BatchNorm2d(c_out)) if c_in != c_out else None
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x):
        y = 0
        for i in range(3):
            y = y + self.convs[i](x, self.PA[i], self.alpha)
        y = self.bn(y)
        y = y + (self.down(x) if self.down is not None else x)
        return torch.relu(y)


class LiteralTemporalConv(nn.Module):
    def __init__(self, c: int, stride: int, dilation: int) -> None:
        super().__init__()
        pad = (5 + 4 * (dilation - 1) - 1) // 2
        self.conv = nn.Conv2d(c, c, (5, 1), padding=(pad, 0), stride=(stride, 1), dilation=(dilation, 1))
        self.bn = nn.BatchNorm2d(c)

    def forward(self, x):
        return self.bn(self.conv(x))


class LiteralMSTCN(nn.Module):
    def __init__(self, c: int, stride: int) -> None:
        super().__init__()
        b = c // 4
        self.branches = nn.ModuleList(
            [
                nn.Sequential(nn.Conv2d(c, b, 1), nn.BatchNorm2d(b), nn.ReLU(), LiteralTemporalConv(b, stride, d))
                for d in (1, 2)
            ]
            + [
                nn.Sequential(
                    nn.Conv2d(c, b, 1),
                    nn.BatchNorm2d(b),
                    nn.ReLU(),
                    nn.MaxPool2d((3, 1), stride=(stride, 1), padding=(1, 0)),
                    nn.BatchNorm2d(b),
                ),
                nn.Sequential(nn.Conv2d(c, b, 1, stride=(stride, 1)), nn.BatchNorm2d(b)),
            ]
        )

    def forward(self, x):
        return torch.cat([br(x) for br in self.branches], 1)


class LiteralUnitTCN(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 1, stride=(stride, 1))
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x):
        return self.bn(self.conv(x))


class LiteralBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, a: np.ndarray, stride: int = 1, residual: bool = True) -> None:
        super().__init__()
        self.gcn1 = LiteralUnitGCN(c_in, c_out, a)
        self.tcn1 = LiteralMSTCN(c_out, stride)
        self.mode = "zero" if not residual else ("id" if c_in == c_out and stride == 1 else "tcn")
        if self.mode == "tcn":
            self.residual = LiteralUnitTCN(c_in, c_out, stride)

    def forward(self, x):
        y = self.tcn1(self.gcn1(x))
        if self.mode == "id":
            y = y + x
        elif self.mode == "tcn":
            y = y + self.residual(x)
        return torch.relu(y)


class OfficialCTRGCN(nn.Module):
    """Literal CTR-GCN with official module names (REFERENCE §5)."""

    def __init__(self, num_class: int = 120, num_point: int = 25, num_person: int = 2, in_channels: int = 3,
                 a: np.ndarray | None = None) -> None:
        super().__init__()
        a = spatial_adjacency(get_layout("ntu25" if num_point == 25 else "kinect20")) if a is None else a
        self.data_bn = nn.BatchNorm1d(num_person * num_point * in_channels)
        cfg = [(in_channels, 64, 1, False), (64, 64, 1, True), (64, 64, 1, True), (64, 64, 1, True),
               (64, 128, 2, True), (128, 128, 1, True), (128, 128, 1, True), (128, 256, 2, True),
               (256, 256, 1, True), (256, 256, 1, True)]
        for i, (ci, co, s, r) in enumerate(cfg, 1):
            setattr(self, f"l{i}", LiteralBlock(ci, co, a, s, r))
        self.fc = nn.Linear(256, num_class)

    def forward(self, x):
        n, c, t, v, m = x.shape
        x = x.permute(0, 4, 3, 1, 2).contiguous().view(n, m * v * c, t)
        x = self.data_bn(x)
        x = x.view(n, m, v, c, t).permute(0, 1, 3, 4, 2).contiguous().view(n * m, c, t, v)
        for i in range(1, 11):
            x = getattr(self, f"l{i}")(x)
        x = x.view(n, m, x.shape[1], -1).mean(3).mean(1)
        return self.fc(x)
