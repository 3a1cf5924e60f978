"""HD-GCN: hierarchy derivation, parity with the literal transcription of the official model, official keys."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import reference_hdgcn as R
import torch

from mmcl.checkpoints import open_checkpoint
from mmcl.checkpoints.official import (
    infer_backbone_shape,
    load_reference_state_dict,
    official_key,
    reference_state_dict,
)
from mmcl.config import Config, ConfigError
from mmcl.models import build_backbone, count_macs, count_parameters, hierarchy_adjacency, hierarchy_groups
from mmcl.models.hierarchy import guess_com


def _official(groups_1based, num_class=60, num_point=25, num_person=2, seed=0) -> R.Model:
    torch.manual_seed(seed)
    return R.Model(num_class=num_class, num_point=num_point, num_person=num_person, groups_1based=groups_1based)


def _perturb(model: torch.nn.Module, scale: float = 0.05, seed: int = 1) -> None:
    """Trained-looking weights: parameters moved off their init, non-trivial BN statistics."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * scale)
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)


# ----------------------------------------------------------------------------- hierarchy
@pytest.mark.parametrize("com", [1, 2, 21])
def test_ntu_hierarchy_is_the_official_one(com: int) -> None:
    ours = [sorted(j + 1 for j in g) for g in hierarchy_groups("ntu25", com)]
    assert ours == [sorted(g) for g in R.OFFICIAL_NTU_GROUPS[com]]
    official = R.official_hierarchy(25, R.OFFICIAL_NTU_GROUPS[com]).astype(np.float32)
    np.testing.assert_array_equal(hierarchy_adjacency("ntu25", com), official)


def test_kinect20_hierarchy_by_the_rule() -> None:
    """NW-UCLA: BFS levels from the CoM in the Kinect v1 tree (the official repo ships it only compiled)."""
    levels = {com: [[j + 1 for j in g] for g in hierarchy_groups("kinect20", com)] for com in (1, 2, 3)}
    assert levels[3] == [[3], [2, 4, 5, 9], [1, 6, 10], [7, 11, 13, 17], [8, 12, 14, 18], [15, 19], [16, 20]]
    assert levels[1] == [[1], [2, 13, 17], [3, 14, 18], [4, 5, 9, 15, 19], [6, 10, 16, 20], [7, 11], [8, 12]]
    assert levels[2] == [[2], [1, 3], [4, 5, 9, 13, 17], [6, 10, 14, 18], [7, 11, 15, 19], [8, 12, 16, 20]]
    a = hierarchy_adjacency("kinect20", 2)
    assert a.shape == (5, 3, 20, 20)
    # layer 0, forward: spine (2) sends half of itself to hip centre (1) and to shoulder centre (3) (columns
    # sum to one); reverse: each of them sends all of itself back to the spine
    assert a[0, 1, 0, 1] == a[0, 1, 2, 1] == 0.5 and a[0, 2, 1, 0] == a[0, 2, 1, 2] == 1.0
    np.testing.assert_array_equal(a, R.official_hierarchy(20, levels[2]).astype(np.float32))


def test_hierarchy_errors_name_the_problem() -> None:
    with pytest.raises(ValueError, match="CoM joint 26 is outside ntu25"):
        hierarchy_groups("ntu25", 26)
    with pytest.raises(ValueError, match="com .* is an hdgcn argument"):
        build_backbone("ctrgcn", num_classes=5, layout="ntu25", num_persons=1, com=21)
    with pytest.raises(ConfigError, match="model.com"):
        cfg = Config()
        cfg.model.com = 21
        cfg.validate()


# ----------------------------------------------------------------------------- cost
def test_reference_size_and_cost() -> None:
    """NTU-120, CoM 21: 1,675,400 trainable parameters, 1.82 GMAC (64 frames, 2 persons), as the official model."""
    ours = build_backbone("hdgcn", num_classes=120, layout="ntu25", num_persons=2)
    official = _official(R.OFFICIAL_NTU_GROUPS[21], num_class=120)
    assert count_parameters(ours) == count_parameters(official) == 1_675_400
    counter = torch.utils.flop_counter.FlopCounterMode(display=False)
    with counter, torch.no_grad():
        official.eval()(torch.randn(1, 3, 64, 25, 2))
    official_macs = counter.get_total_flops() // 2
    assert official_macs == pytest.approx(1.8224e9, rel=1e-3)
    # our "reference" formulation differs only by the 25 × 5 kNN distance matmuls being the same
    assert count_macs(ours, (1, 3, 64, 25, 2), formulation="reference") == pytest.approx(official_macs, rel=1e-3)


# ----------------------------------------------------------------------------- parity
CASES = [
    pytest.param("ntu25", 25, 2, 21, id="ntu-com21"),
    pytest.param("ntu25", 25, 2, 1, id="ntu-com1"),
    pytest.param("ntu25", 25, 2, 2, id="ntu-com2"),
    pytest.param("kinect20", 20, 1, 3, id="ucla-com3"),
    pytest.param("kinect20", 20, 1, 2, id="ucla-com2"),
]


def _pair(layout: str, joints: int, persons: int, com: int, classes: int = 10):
    groups = [[j + 1 for j in g] for g in hierarchy_groups(layout, com)]
    official = _official(groups, num_class=classes, num_point=joints, num_person=persons)
    _perturb(official)
    ours = build_backbone("hdgcn", num_classes=classes, layout=layout, num_persons=persons, com=com)
    load_reference_state_dict(ours, official.state_dict())
    return official.double(), ours.double()


@pytest.mark.parametrize("layout, joints, persons, com", CASES)
def test_same_function_as_the_official_model(layout: str, joints: int, persons: int, com: int) -> None:
    """Eval outputs, training outputs, every gradient and the BN running statistics after a step agree
    in float64 (so the fused computation is the same math, not an approximation)."""
    official, ours = _pair(layout, joints, persons, com)
    x = torch.randn(3, 3, 24, joints, persons, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        a, b = official.eval()(x), ours.eval()(x)
    torch.testing.assert_close(b, a, rtol=1e-9, atol=1e-9 * float(a.abs().max()))
    a, b = official.train()(x), ours.train()(x)
    torch.testing.assert_close(b, a, rtol=1e-9, atol=1e-9 * float(a.detach().abs().max()))
    (a**2).sum().backward()
    (b**2).sum().backward()
    ref_params = dict(official.named_parameters())
    scale = max(float(p.grad.abs().max()) for p in official.parameters())
    for name, p in ours.named_parameters():
        torch.testing.assert_close(p.grad, ref_params[official_key(name)].grad, rtol=1e-7, atol=1e-9 * scale, msg=name)
    after = reference_state_dict(ours)
    for key, value in official.state_dict().items():
        torch.testing.assert_close(after[key], value, rtol=1e-9, atol=1e-12, msg=key)


def test_float32_outputs_agree_at_init() -> None:
    official = _official(R.OFFICIAL_NTU_GROUPS[21], num_class=60)
    ours = build_backbone("hdgcn", num_classes=60, layout="ntu25", num_persons=2)
    load_reference_state_dict(ours, official.state_dict())
    x = torch.randn(4, 3, 64, 25, 2)
    with torch.no_grad():
        torch.testing.assert_close(ours.eval()(x), official.eval()(x), rtol=1e-4, atol=1e-4)


def test_bf16_autocast_tracks_float32() -> None:
    ours = build_backbone("hdgcn", num_classes=10, layout="kinect20", num_persons=1).eval()
    x = torch.randn(4, 3, 52, 20, 1)
    with torch.no_grad():
        full = ours(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            half = ours(x)
    assert half.dtype == torch.bfloat16
    assert float((half.float() - full).abs().max()) < 0.05 * float(full.abs().max()) + 0.05
    assert torch.equal(half.float().argmax(1), full.argmax(1)) or float((half.float() - full).abs().max()) < 0.1


# ----------------------------------------------------------------------------- official checkpoints
def test_official_keys_round_trip_including_the_conv_d_aliases() -> None:
    official = _official(R.OFFICIAL_NTU_GROUPS[21])
    _perturb(official)
    ours = build_backbone("hdgcn", num_classes=60, layout="ntu25", num_persons=2)
    load_reference_state_dict(ours, official.state_dict())
    exported = reference_state_dict(ours)
    assert set(exported) == set(official.state_dict())
    assert any(".gcn1.conv_d." in k for k in exported)  # official checkpoints carry them: so does our export
    fresh = _official(R.OFFICIAL_NTU_GROUPS[21], seed=3)
    fresh.load_state_dict(exported, strict=True)  # the official model loads what we export
    loaded = fresh.state_dict()
    for k, v in official.state_dict().items():
        assert torch.equal(loaded[k], v), k


def test_official_checkpoint_errors() -> None:
    official = _official(R.OFFICIAL_NTU_GROUPS[21])
    ours = build_backbone("hdgcn", num_classes=60, layout="ntu25", num_persons=2)
    sd = dict(official.state_dict())
    sd["l3.gcn1.conv_d.1.0.weight"] = sd["l3.gcn1.conv_d.1.0.weight"] + 1
    with pytest.raises(ValueError, match=r"l3\.gcn1\.conv_d\.1\.0\.weight differs from l3\.gcn1\.conv\.5\.1\.0\.weight"):
        load_reference_state_dict(ours, sd)
    sd = dict(official.state_dict())
    del sd["l4.gcn1.aha.aggregate.weight"]
    with pytest.raises(ValueError, match=r"missing keys \(1\): l4\.gcn1\.aha\.aggregate\.weight"):
        load_reference_state_dict(ours, sd)


@pytest.mark.parametrize("com", [1, 2, 21])
def test_official_file_opens_with_its_shape_and_com(tmp_path: Path, com: int) -> None:
    """A bare official HD-GCN state dict: shape and CoM read off the weights; predictions = the official model's."""
    official = _official(R.OFFICIAL_NTU_GROUPS[com], num_class=120)
    _perturb(official, scale=0.02)
    path = tmp_path / "hdgcn.pt"
    torch.save(official.state_dict(), path)
    shape = infer_backbone_shape(official.state_dict())
    assert (shape["name"], shape["num_classes"], shape["layout"], shape["com"]) == ("hdgcn", 120, "ntu25", com)
    opened = open_checkpoint(path)
    assert (opened.kind, opened.card.backbone, opened.card.com) == ("official-hdgcn", "hdgcn", com)
    model = opened.card.build()
    opened.load_into(model)
    x = torch.randn(2, 3, 32, 25, 2)
    with torch.no_grad():
        a, b = official.eval()(x), model.eval()(x)
    torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5 * float(a.abs().max()))


def test_guess_com_refuses_a_foreign_graph() -> None:
    with pytest.raises(ValueError, match="fits no kinect20 hierarchy"):
        guess_com("kinect20", np.zeros((4, 3, 20, 20), dtype=np.float32))


def test_narrow_model_for_tests_and_demos() -> None:
    model = build_backbone("hdgcn", num_classes=5, layout="coco17", num_persons=1, in_channels=3, base_channels=8)
    assert model.builder_args["com"] == 1 and model.feature_dim == 32
    out = model(torch.randn(2, 3, 16, 17, 1))
    assert out.shape == (2, 5)
