"""CTRS-GCN baseline (REFERENCE §5.8): counts, init, and identity with a literal transcription."""

from __future__ import annotations

import math

import torch
from torch import nn

from mmcl.checkpoints.official import load_reference_state_dict, reference_state_dict
from mmcl.models import build_backbone, count_parameters


class LiteralBaselineGCN(nn.Module):
    def __init__(self, c_in: int, c_out: int, v: int) -> None:
        super().__init__()
        self.PA = nn.Parameter(torch.stack([torch.eye(v)] * 3))
        self.conv_d = nn.ModuleList(nn.Conv2d(c_in, c_out, 1) for _ in range(3))
        self.down = nn.Sequential(nn.Conv2d(c_in, c_out, 1), nn.BatchNorm2d(c_out)) if c_in != c_out else None
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x):
        n, c, t, v = x.shape
        a = self.PA / (torch.norm(self.PA, 2, dim=1, keepdim=True) + 1e-4)
        y = 0
        for i in range(3):
            y = y + self.conv_d[i](torch.matmul(x.view(n, c * t, v), a[i]).view(n, c, t, v))
        y = self.bn(y) + (self.down(x) if self.down is not None else x)
        return torch.relu(y)


class LiteralUnitTCN(nn.Module):
    def __init__(self, c_in: int, c_out: int, k: int, stride: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, (k, 1), padding=((k - 1) // 2, 0), stride=(stride, 1))
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x):
        return self.bn(self.conv(x))


class LiteralBaselineBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, v: int, stride: int, residual: bool) -> None:
        super().__init__()
        self.gcn1 = LiteralBaselineGCN(c_in, c_out, v)
        self.tcn1 = LiteralUnitTCN(c_out, c_out, 5, stride)
        self.mode = "zero" if not residual else ("id" if c_in == c_out and stride == 1 else "tcn")
        if self.mode == "tcn":
            self.residual = LiteralUnitTCN(c_in, c_out, 1, stride)

    def forward(self, x):
        y = self.tcn1(self.gcn1(x))
        if self.mode == "id":
            y = y + x
        elif self.mode == "tcn":
            y = y + self.residual(x)
        return torch.relu(y)


class LiteralCTRSGCN(nn.Module):
    def __init__(self, num_class: int, num_point: int, num_person: int) -> None:
        super().__init__()
        self.data_bn = nn.BatchNorm1d(num_person * num_point * 3)
        cfg = [(3, 64, 1, False), (64, 64, 1, True), (64, 64, 1, True), (64, 64, 1, True), (64, 128, 2, True),
               (128, 128, 1, True), (128, 128, 1, True), (128, 256, 2, True), (256, 256, 1, True), (256, 256, 1, True)]
        for i, (ci, co, s, r) in enumerate(cfg, 1):
            setattr(self, f"l{i}", LiteralBaselineBlock(ci, co, num_point, s, r))
        self.fc = nn.Linear(256, num_class)

    def forward(self, x):
        n, c, t, v, m = x.shape
        x = self.data_bn(x.permute(0, 4, 3, 1, 2).reshape(n, m * v * c, t))
        x = x.view(n, m, v, c, t).permute(0, 1, 3, 4, 2).reshape(n * m, c, t, v)
        for i in range(1, 11):
            x = getattr(self, f"l{i}")(x)
        return self.fc(x.view(n, m, x.shape[1], -1).mean(3).mean(1))


def test_parameter_counts():
    assert count_parameters(build_backbone("ctrs-gcn", num_classes=120, layout="ntu25", num_persons=2)) == 2_108_322
    assert count_parameters(build_backbone("ctrs-gcn", num_classes=60, layout="ntu25", num_persons=2)) == 2_092_902
    assert count_parameters(LiteralCTRSGCN(120, 25, 2)) == 2_108_322


def test_initialisation():
    torch.manual_seed(0)
    m = build_backbone("ctrs-gcn", num_classes=60, layout="ntu25", num_persons=2)
    g = m.blocks[9].graph_conv
    assert torch.equal(g.adjacency.data, torch.stack([torch.eye(25)] * 3))
    assert torch.all(g.bn.weight == 1e-6)
    w = torch.cat([c.weight.detach().flatten() for c in g.subset_convs])
    assert abs(w.std().item() / math.sqrt(2 / (256 * 256 * 3)) - 1) < 0.05
    assert all(torch.all(c.bias == 0) for c in g.subset_convs)
    assert torch.all(m.blocks[0].temporal_conv.bn.weight == 1)


def test_same_outputs_gradients_and_keys_as_literal_model():
    torch.manual_seed(0)
    ref = LiteralCTRSGCN(9, 20, 1)
    with torch.no_grad():
        for name, p in ref.named_parameters():
            if name.endswith("PA"):
                p.add_(torch.rand(p.shape) * 0.5)  # break the identity so aggregation matters
            elif name.endswith("bias"):
                p.normal_(0, 0.1)
    ours = build_backbone("ctrs-gcn", num_classes=9, layout="kinect20", num_persons=1)
    load_reference_state_dict(ours, {f"module.{k}": v for k, v in ref.state_dict().items()})
    assert list(reference_state_dict(ours)) == list(ref.state_dict())
    ref.double(), ours.double()
    x = torch.randn(2, 3, 8, 20, 1, dtype=torch.float64)
    y_ref, y = ref(x), ours(x)
    torch.testing.assert_close(y, y_ref, rtol=1e-10, atol=1e-10)
    y_ref.square().sum().backward()
    y.square().sum().backward()
    torch.testing.assert_close(
        ours.blocks[3].graph_conv.adjacency.grad, ref.l4.gcn1.PA.grad, rtol=1e-7, atol=1e-12
    )
    ref.eval(), ours.eval()
    torch.testing.assert_close(ours(x), ref(x), rtol=1e-10, atol=1e-10)
    f = ours.forward_features(x)
    assert f.shape == (2, 256) and ours.feature_dim == 256
