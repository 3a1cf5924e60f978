"""CTR-GCN: parameter counts, initialisation, cost, and numerical identity with a literal model.

``OfficialCTRGCN`` below is a deliberately plain transcription of REFERENCE §5 using the
official module names, so its state_dict keys are the official checkpoint keys.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from mmcl.checkpoints.official import load_reference_state_dict, reference_state_dict
from mmcl.models import build_backbone, count_macs, count_parameters, layer_table, spatial_adjacency
from mmcl.skeleton.layouts import NTU25

from reference_ctrgcn import OfficialCTRGCN  # noqa: E402  (literal model, official names)


def randomise(model: nn.Module, seed: int = 0) -> None:
    """Random weights and BN buffers, so that a wrong mapping cannot go unnoticed.

    BN running statistics are then set from one random batch (per-channel, data-dependent),
    which keeps activations O(1) through the ten blocks in eval mode.
    """
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if t.dtype == torch.long:
                continue
            if name.endswith("alpha"):
                t.fill_(0.3)
            elif t.dim() == 1 and not name.startswith("fc"):
                is_weight = name.endswith("weight")  # BN affine / conv bias
                t.copy_(torch.randn(t.shape, generator=g) * 0.2 + (1.0 if is_weight else 0.0))
            else:
                fan_in = t[0].numel() if t.dim() > 1 else 1
                t.copy_(torch.randn(t.shape, generator=g) / math.sqrt(max(fan_in, 1)))
        bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        for m in bns:
            m.momentum = None  # cumulative average: one batch sets the statistics
        model.train()
        v = next(p for n, p in model.named_parameters() if n.endswith("PA")).shape[-1]
        m_persons = model.data_bn.num_features // (3 * v)
        model(torch.randn(4, 3, 16, v, m_persons, generator=g))
        for i, m in enumerate(bns):
            m.momentum = 0.1
            m.num_batches_tracked.fill_(100 + i)
    model.eval()


@pytest.fixture(scope="module")
def pair():
    torch.manual_seed(0)
    ref = OfficialCTRGCN(120).eval()
    randomise(ref)
    ours = build_backbone(num_classes=120, layout="ntu25", num_persons=2).eval()
    load_reference_state_dict(ours, ref.state_dict())
    return ref, ours


# ---------------------------------------------------------------- tests


def test_parameter_counts_match_reference():
    m = build_backbone(num_classes=120, layout="ntu25", num_persons=2)
    assert count_parameters(m) == 1_462_092  # REFERENCE §5.7
    per_block = [count_parameters(b) for b in m.blocks]
    assert per_block == [12_052] + [26_308] * 3 + [78_084] + [97_844] * 2 + [301_748] + [382_228] * 2
    assert count_parameters(m.data_bn) == 300 and count_parameters(m.fc) == 30_840
    assert count_parameters(build_backbone(num_classes=60, layout="ntu25", num_persons=2)) == 1_446_672
    assert count_parameters(build_backbone(num_classes=10, layout="kinect20", num_persons=1)) == 1_426_892
    assert count_parameters(OfficialCTRGCN(120)) == 1_462_092


def test_interface_shapes_and_any_persons_joints():
    m = build_backbone(num_classes=10, layout="kinect20", num_persons=1).eval()
    x = torch.randn(3, 3, 20, 20, 1)
    assert m(x).shape == (3, 10)
    f = m.forward_features(x)
    assert f.shape == (3, m.feature_dim) and m.feature_dim == 256
    torch.testing.assert_close(m.classify(f), m(x))
    m3 = build_backbone(num_classes=5, layout="ntu25", num_persons=3, in_channels=6).eval()
    assert m3(torch.randn(1, 6, 8, 25, 3)).shape == (1, 5)


def test_build_backbone_rejects_unknown_name_and_layout():
    with pytest.raises(ValueError, match="ctrgcn"):
        build_backbone("resnet", num_classes=10, layout="ntu25", num_persons=2)
    with pytest.raises(ValueError, match="ntu25"):
        build_backbone(num_classes=10, layout="ntu18", num_persons=2)


def test_initialisation_statistics():
    torch.manual_seed(1)
    m = build_backbone(num_classes=120, layout="ntu25", num_persons=2)
    a = torch.from_numpy(spatial_adjacency(NTU25))
    for b in m.blocks:
        g = b.graph_conv
        torch.testing.assert_close(g.adjacency.data, a)  # REFERENCE §5.6: PA = A
        assert g.alpha.item() == 0.0
        assert torch.all(g.bn.weight == 1e-6) and torch.all(g.bn.bias == 0)
        for t in g.topology:
            for conv in (t.query, t.key, t.value, t.expand):
                assert torch.all(conv.bias == 0)
        tcn_bn = [mod.weight for mod in b.temporal_conv.modules() if isinstance(mod, nn.BatchNorm2d)]
        assert all(torch.all(w != 1.0) for w in tcn_bn)  # drawn, not constant
        assert all(torch.all(mod.bias == 0) for mod in b.temporal_conv.modules() if isinstance(mod, nn.BatchNorm2d))
    # MS-TCN BN weights ~ N(1, 0.02) pooled over the whole model
    w = torch.cat([mod.weight.detach() for b in m.blocks for mod in b.temporal_conv.modules()
                   if isinstance(mod, nn.BatchNorm2d)])
    assert abs(w.mean().item() - 1.0) < 0.005 and abs(w.std().item() - 0.02) < 0.004
    # Kaiming fan_out: value conv of l10 has std sqrt(2 / 256)
    wv = torch.cat([t.value.weight.detach().flatten() for t in m.blocks[9].graph_conv.topology])
    assert abs(wv.std().item() / math.sqrt(2 / 256) - 1) < 0.05
    # temporal conv of l1 branch 0: fan_out = 16·5
    wt = m.blocks[0].temporal_conv.branches[0].temporal.conv.weight.detach()
    assert abs(wt.std().item() / math.sqrt(2 / 80) - 1) < 0.15
    # residual unit_tcn BN and down BN weight 1
    assert torch.all(m.blocks[4].residual.bn.weight == 1) and torch.all(m.blocks[4].graph_conv.down.bn.weight == 1)
    assert torch.all(m.data_bn.weight == 1) and torch.all(m.data_bn.bias == 0)
    # fc: N(0, sqrt(2/num_class)), default bias U(-1/16, 1/16)
    assert abs(m.fc.weight.std().item() / math.sqrt(2 / 120) - 1) < 0.03
    assert m.fc.bias.abs().max().item() <= 0.0625


def test_same_outputs_as_literal_model(pair):
    ref, ours = pair
    x = torch.randn(2, 3, 16, 25, 2)
    with torch.no_grad():
        want = ref(x)
        got = ours(x)
    scale = want.abs().max().item()
    assert (got - want).abs().max().item() <= 1e-5 * max(scale, 1.0)


def test_same_outputs_and_gradients_in_training_mode():
    """float64, so that gradients that are mathematically zero (conv bias before BN) compare too."""
    from mmcl.checkpoints.official import official_key

    torch.manual_seed(3)
    ref = OfficialCTRGCN(7, num_point=20, num_person=1, a=spatial_adjacency("kinect20"))
    randomise(ref, seed=3)
    ours = build_backbone(num_classes=7, layout="kinect20", num_persons=1)
    load_reference_state_dict(ours, ref.state_dict())
    ref.double().train(), ours.double().train()
    x = torch.randn(3, 3, 8, 20, 1, dtype=torch.float64)
    y_ref, y_ours = ref(x), ours(x)
    torch.testing.assert_close(y_ours, y_ref, rtol=1e-10, atol=1e-10)
    y_ref.square().sum().backward()
    y_ours.square().sum().backward()
    g_ref = {k: p.grad for k, p in ref.named_parameters()}
    scale = max(g.abs().max().item() for g in g_ref.values())
    for k, p in ours.named_parameters():
        torch.testing.assert_close(p.grad, g_ref[official_key(k)], rtol=1e-7, atol=1e-9 * scale)
    # running statistics updated identically
    ref_sd = ref.state_dict()
    for k, v in reference_state_dict(ours).items():
        torch.testing.assert_close(v, ref_sd[k], rtol=1e-10, atol=1e-10)


def test_load_with_module_prefix_and_round_trip(pair):
    ref, _ = pair
    ours = build_backbone(num_classes=120, layout="ntu25", num_persons=2).eval()
    load_reference_state_dict(ours, {"state_dict": {f"module.{k}": v for k, v in ref.state_dict().items()}})
    back = reference_state_dict(ours)
    want = ref.state_dict()
    assert list(back) == list(want)
    for k in want:
        assert torch.equal(back[k], want[k]), k


def test_load_errors_name_the_keys(pair):
    ref, _ = pair
    ours = build_backbone(num_classes=120, layout="ntu25", num_persons=2)
    sd = dict(ref.state_dict())
    del sd["l3.gcn1.PA"]
    sd["l3.gcn1.extra"] = torch.zeros(1)
    with pytest.raises(ValueError, match=r"missing keys \(1\): l3\.gcn1\.PA") as e:
        load_reference_state_dict(ours, sd)
    assert "unexpected keys (1): l3.gcn1.extra" in str(e.value)
    sd = dict(ref.state_dict())
    wrong = build_backbone(num_classes=60, layout="ntu25", num_persons=2)
    with pytest.raises(ValueError, match=r"fc\.weight: checkpoint \[120, 256\] vs model \[60, 256\]"):
        load_reference_state_dict(wrong, sd)
    # ignore_prefixes drops MMCL extras
    sd_extra = dict(sd, PosMatrix=torch.zeros(120), **{"mlp.0.weight": torch.zeros(64, 3)})
    with pytest.raises(ValueError, match="PosMatrix"):
        load_reference_state_dict(ours, sd_extra)
    load_reference_state_dict(ours, sd_extra, ignore_prefixes=("PosMatrix", "mlp."))


def test_forward_cost_macs():
    macs_literal = count_macs(OfficialCTRGCN(120), (1, 3, 64, 25, 2))
    assert abs(macs_literal / 1.94e9 - 1) < 0.02, macs_literal
    m = build_backbone(num_classes=120, layout="ntu25", num_persons=2)
    macs = count_macs(m, (1, 3, 64, 25, 2))
    assert macs < macs_literal  # conv1/conv2 on the time-mean
    rows = layer_table(m, (1, 3, 64, 25, 2))
    assert [r["name"] for r in rows][:2] == ["data_bn", "blocks.0"]
    assert sum(r["params"] for r in rows) == count_parameters(m)
    assert sum(r["macs"] for r in rows) == macs
    assert rows[-1]["output_shape"] == [1, 120]


def test_bf16_autocast_close_to_fp32():
    torch.manual_seed(0)
    m = build_backbone(num_classes=120, layout="ntu25", num_persons=2).eval()
    x = torch.randn(1, 3, 12, 25, 2)
    with torch.no_grad():
        want = m(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            got = m(x)
    assert got.shape == want.shape
    assert ((got.float() - want).norm() / want.norm()).item() < 0.05
    m.train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        m(x).float().sum().backward()
    assert m.blocks[0].graph_conv.topology[0].value.weight.grad is not None


@pytest.mark.slow
def test_torch_compile_traces_without_graph_breaks():
    """fullgraph=True fails on any graph break; the eager backend keeps the test fast."""
    torch._dynamo.reset()
    m = build_backbone(num_classes=4, layout="kinect20", num_persons=1).eval()
    x = torch.randn(2, 3, 8, 20, 1)
    compiled = torch.compile(m, backend="eager", fullgraph=True)
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), m(x))


@pytest.mark.parametrize("momentum", [0.1, None])
def test_fused_batch_norm_matches_separate_modules(momentum):
    """The training path's batched BN equals per-module BN: outputs, gradients, running stats."""
    from mmcl.models.ctrgcn import fused_batch_norm

    torch.manual_seed(0)
    sizes = [3, 5, 4]
    ours = [nn.BatchNorm2d(c, momentum=momentum).double() for c in sizes]
    ref = [nn.BatchNorm2d(c, momentum=momentum).double() for c in sizes]
    for a, b in zip(ours, ref):
        with torch.no_grad():
            for t in (a.weight, a.bias, a.running_mean):
                t.normal_()
            a.running_var.uniform_(0.5, 2.0)
            a.num_batches_tracked.fill_(7)
        b.load_state_dict(a.state_dict())
    x = torch.randn(4, sum(sizes), 6, 5, dtype=torch.float64, requires_grad=True)
    x2 = x.detach().clone().requires_grad_()
    for _ in range(2):
        got = fused_batch_norm(x, ours)
        want = torch.cat([bn(p) for bn, p in zip(ref, x2.split(sizes, 1))], 1)
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    got.square().sum().backward()
    want.square().sum().backward()
    torch.testing.assert_close(x.grad, x2.grad, rtol=1e-10, atol=1e-12)
    for a, b in zip(ours, ref):
        for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
            torch.testing.assert_close(va, vb, rtol=1e-12, atol=1e-12, msg=k)
        torch.testing.assert_close(a.weight.grad, b.weight.grad, rtol=1e-10, atol=1e-12)


def test_training_path_matches_eval_path_formulation():
    """CTR-GC/MS-TCN training-mode layout (bmm on views, block-diagonal conv4, batched BN) vs the
    eval-mode formulation run with batch statistics: same outputs and parameter gradients."""
    torch.manual_seed(5)
    m = build_backbone(num_classes=6, layout="kinect20", num_persons=1).double()
    with torch.no_grad():
        for name, p in m.named_parameters():
            p.fill_(0.3) if name.endswith("alpha") else p.add_(0.2 * torch.randn_like(p))
    x = torch.randn(3, 3, 10, 20, 1, dtype=torch.float64)
    m.train()
    y_train = m(x)
    y_train.square().sum().backward()
    g_train = {k: p.grad.clone() for k, p in m.named_parameters()}
    m.zero_grad()
    # eval formulation with batch statistics: reference_order switches to the eval path
    for mod in m.modules():
        if hasattr(mod, "reference_order"):
            mod.reference_order = True
    for mod in m.modules():
        if isinstance(mod, nn.BatchNorm2d):
            mod.track_running_stats, mod.running_mean, mod.running_var = False, None, None
    y_ref = m(x)
    torch.testing.assert_close(y_train, y_ref, rtol=1e-10, atol=1e-10)
    y_ref.square().sum().backward()
    for k, p in m.named_parameters():
        torch.testing.assert_close(p.grad, g_train[k], rtol=1e-8, atol=1e-10, msg=k)
