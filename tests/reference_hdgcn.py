"""A literal transcription of the official HD-GCN (github.com/Jho-Yonsei/HD-GCN, model/HDGCN.py and
graph/tools.py), with the official module names, so its state_dict keys are the official keys.

It is the numerical oracle of the HD-GCN tests and the "reference way of computing" baseline of
``benchmarks/train_throughput.py``. Deliberate differences, none of which changes a number:
einops' rearrange/repeat are written as permute/reshape/expand (einops is not a dependency), the
kNN index base uses ``x.device`` (the official ``x.get_device()`` is -1 on the CPU, which is why
the official code runs on CUDA only), and the hierarchy groups are passed in (the official AHA
always reads the NTU groups, even for a 20-joint graph). The official ``conv_d`` attribute, which
re-registers the last layer's subset convolutions under a second name, is kept: official
checkpoints carry those duplicate keys.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

# graph/tools.py get_groups(dataset='NTU', CoM), 1-based joint numbers, verbatim.
OFFICIAL_NTU_GROUPS = {
    2: [[2], [1, 21], [13, 17, 3, 5, 9], [14, 18, 4, 6, 10], [15, 19, 7, 11], [16, 20, 8, 12], [22, 23, 24, 25]],
    21: [[21], [2, 3, 5, 9], [4, 6, 10, 1], [7, 11, 13, 17], [8, 12, 14, 18], [22, 23, 24, 25, 15, 19], [16, 20]],
    1: [[1], [2, 13, 17], [14, 18, 21], [3, 5, 9, 15, 19], [4, 6, 10, 16, 20], [7, 11], [8, 12, 22, 23, 24, 25]],
}


# ----------------------------------------------------------------------------- graph/tools.py
def edge2mat(link, num_node):
    A = np.zeros((num_node, num_node))
    for i, j in link:
        A[j, i] = 1
    return A


def normalize_digraph(A):
    Dl = np.sum(A, 0)
    h, w = A.shape
    Dn = np.zeros((w, w))
    for i in range(w):
        if Dl[i] > 0:
            Dn[i, i] = Dl[i] ** (-1)
    AD = np.dot(A, Dn)
    return AD


def get_graph(num_node, edges):
    I = edge2mat(edges[0], num_node)  # noqa: E741
    Forward = normalize_digraph(edge2mat(edges[1], num_node))
    Reverse = normalize_digraph(edge2mat(edges[2], num_node))
    A = np.stack((I, Forward, Reverse))
    return A


def get_hierarchical_graph(num_node, edges):
    A = []
    for edge in edges:
        A.append(get_graph(num_node, edge))
    A = np.stack(A)
    return A


def get_edgeset(groups_1based):
    groups = [[i - 1 for i in g] for g in groups_1based]
    identity = []
    forward_hierarchy = []
    reverse_hierarchy = []
    for i in range(len(groups) - 1):
        self_link = groups[i] + groups[i + 1]
        self_link = [(i, i) for i in self_link]
        identity.append(self_link)
        forward_g = []
        for j in groups[i]:
            for k in groups[i + 1]:
                forward_g.append((j, k))
        forward_hierarchy.append(forward_g)
        reverse_g = []
        for j in groups[-1 - i]:
            for k in groups[-2 - i]:
                reverse_g.append((j, k))
        reverse_hierarchy.append(reverse_g)
    edges = []
    for i in range(len(groups) - 1):
        edges.append([identity[i], forward_hierarchy[i], reverse_hierarchy[-1 - i]])
    return edges


def official_hierarchy(num_node, groups_1based):
    """graph/ntu_rgb_d_hierarchy.Graph(CoM).A[0]: L × 3 × V × V."""
    return get_hierarchical_graph(num_node, get_edgeset(groups_1based))


# ----------------------------------------------------------------------------- model/HDGCN.py
def conv_init(conv):
    if conv.weight is not None:
        nn.init.kaiming_normal_(conv.weight, mode="fan_out")
    if conv.bias is not None:
        nn.init.constant_(conv.bias, 0)


def bn_init(bn, scale):
    nn.init.constant_(bn.weight, scale)
    nn.init.constant_(bn.bias, 0)


def weights_init(m):
    classname = m.__class__.__name__
    if classname.find("Conv") != -1:
        if hasattr(m, "weight"):
            nn.init.kaiming_normal_(m.weight, mode="fan_out")
        if hasattr(m, "bias") and m.bias is not None and isinstance(m.bias, torch.Tensor):
            nn.init.constant_(m.bias, 0)
    elif classname.find("BatchNorm") != -1:
        if hasattr(m, "weight") and m.weight is not None:
            m.weight.data.normal_(1.0, 0.02)
        if hasattr(m, "bias") and m.bias is not None:
            m.bias.data.fill_(0)


class TemporalConv(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, dilation=1):
        super().__init__()
        pad = (kernel_size + (kernel_size - 1) * (dilation - 1) - 1) // 2
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=(kernel_size, 1), padding=(pad, 0),
                              stride=(stride, 1), dilation=(dilation, 1), bias=False)
        self.bias = nn.Parameter(torch.zeros(1, out_channels, 1, 1), requires_grad=True)
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x):
        x = self.conv(x) + self.bias
        x = self.bn(x)
        return x


class MultiScale_TemporalConv(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size=5, stride=1, dilations=(1, 2)):
        super().__init__()
        self.num_branches = len(dilations) + 2
        branch_channels = out_channels // self.num_branches
        kernel_size = [kernel_size] * len(dilations)
        self.branches = nn.ModuleList([
            nn.Sequential(
                nn.Conv2d(in_channels, branch_channels, kernel_size=1, padding=0),
                nn.BatchNorm2d(branch_channels),
                nn.ReLU(inplace=True),
                TemporalConv(branch_channels, branch_channels, kernel_size=ks, stride=stride, dilation=dilation),
            )
            for ks, dilation in zip(kernel_size, dilations)
        ])
        self.branches.append(nn.Sequential(
            nn.Conv2d(in_channels, branch_channels, kernel_size=1, padding=0),
            nn.BatchNorm2d(branch_channels),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=(3, 1), stride=(stride, 1), padding=(1, 0)),
            nn.BatchNorm2d(branch_channels),
        ))
        self.branches.append(nn.Sequential(
            nn.Conv2d(in_channels, branch_channels, kernel_size=1, padding=0, stride=(stride, 1)),
            nn.BatchNorm2d(branch_channels),
        ))
        self.apply(weights_init)

    def forward(self, x):  # residual=False in TCN_GCN_unit
        return torch.cat([tempconv(x) for tempconv in self.branches], dim=1)


class residual_conv(nn.Module):  # noqa: N801
    def __init__(self, in_channels, out_channels, kernel_size=5, stride=1):
        super().__init__()
        pad = int((kernel_size - 1) / 2)
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=(kernel_size, 1), padding=(pad, 0), stride=(stride, 1))
        self.bn = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        conv_init(self.conv)
        bn_init(self.bn, 1)

    def forward(self, x):
        return self.bn(self.conv(x))


class EdgeConv(nn.Module):
    def __init__(self, in_channels, out_channels, k):
        super().__init__()
        self.k = k
        self.conv = nn.Sequential(
            nn.Conv2d(in_channels * 2, out_channels, kernel_size=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.LeakyReLU(inplace=True, negative_slope=0.2),
        )
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                conv_init(m)
            elif isinstance(m, nn.BatchNorm2d):
                bn_init(m, 1)

    def forward(self, x, dim=4):
        if dim == 3:
            N, C, L = x.size()
        else:
            N, C, T, V = x.size()
            x = x.mean(dim=-2, keepdim=False)
        x = self.get_graph_feature(x, self.k)
        x = self.conv(x)
        x = x.max(dim=-1, keepdim=False)[0]
        if dim != 3:
            x = x.unsqueeze(2).expand(-1, -1, T, -1)  # repeat 'n c v -> n c t v'
        return x

    def knn(self, x, k):
        inner = -2 * torch.matmul(x.transpose(2, 1), x)
        xx = torch.sum(x**2, dim=1, keepdim=True)
        pairwise_distance = -xx - inner - xx.transpose(2, 1)
        idx = pairwise_distance.topk(k=k, dim=-1)[1]
        return idx

    def get_graph_feature(self, x, k, idx=None):
        N, C, V = x.size()
        if idx is None:
            idx = self.knn(x, k=k)
        idx_base = torch.arange(0, N, device=x.device).view(-1, 1, 1) * V
        idx = idx + idx_base
        idx = idx.view(-1)
        x = x.permute(0, 2, 1)  # 'n c v -> n v c'
        feature = x.reshape(N * V, C)[idx, :]
        feature = feature.view(N, V, k, C)
        x = x.unsqueeze(2).expand(-1, -1, k, -1)  # 'n v c -> n v k c'
        feature = torch.cat((feature - x, x), dim=3)
        feature = feature.permute(0, 3, 1, 2)  # 'n v k c -> n c v k'
        return feature


class AHA(nn.Module):
    def __init__(self, in_channels, num_layers, groups_1based):
        super().__init__()
        self.num_layers = num_layers
        groups = [[i - 1 for i in g] for g in groups_1based]
        inter_channels = in_channels // 4
        self.layers = [groups[i] + groups[i + 1] for i in range(len(groups) - 1)]
        self.conv_down = nn.Sequential(
            nn.Conv2d(in_channels, inter_channels, kernel_size=1),
            nn.BatchNorm2d(inter_channels),
            nn.ReLU(inplace=True),
        )
        self.edge_conv = EdgeConv(inter_channels, inter_channels, k=3)
        self.aggregate = nn.Conv1d(inter_channels, in_channels, kernel_size=1)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x):
        N, C, L, T, V = x.size()
        x_t = x.max(dim=-2, keepdim=False)[0]
        x_t = self.conv_down(x_t)
        x_sampled = []
        for i in range(self.num_layers):
            s_t = x_t[:, :, i, self.layers[i]]
            s_t = s_t.mean(dim=-1, keepdim=True)
            x_sampled.append(s_t)
        x_sampled = torch.cat(x_sampled, dim=2)
        att = self.edge_conv(x_sampled, dim=3)
        att = self.aggregate(att).view(N, C, L, 1, 1)
        out = (x * self.sigmoid(att)).sum(dim=2, keepdim=False)
        return out


class HD_Gconv(nn.Module):  # noqa: N801
    def __init__(self, in_channels, out_channels, A, groups_1based, residual=True, att=False):
        super().__init__()
        self.num_layers = A.shape[0]
        self.num_subset = A.shape[1]
        self.att = att
        inter_channels = out_channels // (self.num_subset + 1)
        self.PA = nn.Parameter(torch.from_numpy(A.astype(np.float32)), requires_grad=True)
        self.conv_down = nn.ModuleList()
        self.conv = nn.ModuleList()
        for i in range(self.num_layers):
            self.conv_d = nn.ModuleList()
            self.conv_down.append(nn.Sequential(
                nn.Conv2d(in_channels, inter_channels, kernel_size=1),
                nn.BatchNorm2d(inter_channels),
                nn.ReLU(inplace=True),
            ))
            for j in range(self.num_subset):
                self.conv_d.append(nn.Sequential(
                    nn.Conv2d(inter_channels, inter_channels, kernel_size=1),
                    nn.BatchNorm2d(inter_channels),
                ))
            self.conv_d.append(EdgeConv(inter_channels, inter_channels, k=5))
            self.conv.append(self.conv_d)
        if self.att:
            self.aha = AHA(out_channels, num_layers=self.num_layers, groups_1based=groups_1based)
        if residual:
            if in_channels != out_channels:
                self.down = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1), nn.BatchNorm2d(out_channels))
            else:
                self.down = lambda x: x
        else:
            self.down = lambda x: 0
        self.bn = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                conv_init(m)
            elif isinstance(m, nn.BatchNorm2d):
                bn_init(m, 1)
        bn_init(self.bn, 1e-6)

    def forward(self, x):
        A = self.PA
        out = []
        for i in range(self.num_layers):
            y = []
            x_down = self.conv_down[i](x)
            for j in range(self.num_subset):
                z = torch.einsum("nctu,vu->nctv", x_down, A[i, j])
                z = self.conv[i][j](z)
                y.append(z)
            y_edge = self.conv[i][-1](x_down)
            y.append(y_edge)
            y = torch.cat(y, dim=1)
            out.append(y)
        out = torch.stack(out, dim=2)
        if self.att:
            out = self.aha(out)
        else:
            out = out.sum(dim=2, keepdim=False)
        out = self.bn(out)
        out += self.down(x)
        out = self.relu(out)
        return out


class TCN_GCN_unit(nn.Module):  # noqa: N801
    def __init__(self, in_channels, out_channels, A, groups_1based, stride=1, residual=True, att=True):
        super().__init__()
        self.gcn1 = HD_Gconv(in_channels, out_channels, A, groups_1based, att=att)
        self.tcn1 = MultiScale_TemporalConv(out_channels, out_channels, kernel_size=5, stride=stride, dilations=(1, 2))
        self.relu = nn.ReLU(inplace=True)
        if not residual:
            self.residual = lambda x: 0
        elif (in_channels == out_channels) and (stride == 1):
            self.residual = lambda x: x
        else:
            self.residual = residual_conv(in_channels, out_channels, kernel_size=1, stride=stride)

    def forward(self, x):
        return self.relu(self.tcn1(self.gcn1(x)) + self.residual(x))


class Model(nn.Module):
    """model.HDGCN.Model; ``groups_1based`` replaces ``graph``/``graph_args`` (the hierarchy it builds)."""

    def __init__(self, num_class=60, num_point=25, num_person=2, groups_1based=None, in_channels=3, drop_out=0):
        super().__init__()
        groups_1based = groups_1based or OFFICIAL_NTU_GROUPS[21]
        A = official_hierarchy(num_point, groups_1based)
        self.num_class = num_class
        self.num_point = num_point
        self.data_bn = nn.BatchNorm1d(num_person * in_channels * num_point)
        base_channels = 64
        g = groups_1based
        self.l1 = TCN_GCN_unit(in_channels, base_channels, A, g, residual=False, att=False)
        self.l2 = TCN_GCN_unit(base_channels, base_channels, A, g)
        self.l3 = TCN_GCN_unit(base_channels, base_channels, A, g)
        self.l4 = TCN_GCN_unit(base_channels, base_channels, A, g)
        self.l5 = TCN_GCN_unit(base_channels, base_channels * 2, A, g, stride=2)
        self.l6 = TCN_GCN_unit(base_channels * 2, base_channels * 2, A, g)
        self.l7 = TCN_GCN_unit(base_channels * 2, base_channels * 2, A, g)
        self.l8 = TCN_GCN_unit(base_channels * 2, base_channels * 4, A, g, stride=2)
        self.l9 = TCN_GCN_unit(base_channels * 4, base_channels * 4, A, g)
        self.l10 = TCN_GCN_unit(base_channels * 4, base_channels * 4, A, g)
        self.fc = nn.Linear(base_channels * 4, num_class)
        nn.init.normal_(self.fc.weight, 0, math.sqrt(2.0 / num_class))
        bn_init(self.data_bn, 1)
        self.drop_out = nn.Dropout(drop_out) if drop_out else (lambda x: x)

    def forward(self, x):
        N, C, T, V, M = x.size()
        x = x.permute(0, 4, 3, 1, 2).reshape(N, M * V * C, T)  # 'n c t v m -> n (m v c) t'
        x = self.data_bn(x)
        x = x.view(N, M, V, C, T).permute(0, 1, 3, 4, 2).reshape(N * M, C, T, V)  # -> '(n m) c t v'
        for layer in (self.l1, self.l2, self.l3, self.l4, self.l5, self.l6, self.l7, self.l8, self.l9, self.l10):
            x = layer(x)
        c_new = x.size(1)
        x = x.view(N, M, c_new, -1)
        x = x.mean(3).mean(1)
        x = self.drop_out(x)
        return self.fc(x)
