"""The pose-estimator layouts (COCO-17, OpenPose-18, MediaPipe-33) are complete layouts: a tree graph,
a bone stream, a centre joint and left/right mirror pairs, and every backbone and the input contract
work with them (2 or 3 channels)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from mmcl.checkpoints import ModelCard
from mmcl.config import Config
from mmcl.formats.skeleton_file import read_skeleton_file
from mmcl.models.graph import spatial_adjacency
from mmcl.predict import model_input
from mmcl.skeleton.layouts import LAYOUT_BY_JOINTS, LAYOUTS, get_layout
from mmcl.skeleton.streams import to_stream
from mmcl.skeleton.transforms import centre_on_first_frame

POSE = {"coco17": (17, "nose", 8), "openpose18": (18, "neck", 8), "mediapipe33": (33, "nose", 16)}


@pytest.mark.parametrize("name", sorted(POSE))
def test_a_pose_layout_is_one_tree_with_bones_a_centre_and_mirror_pairs(name: str) -> None:
    layout = get_layout(name)
    joints, centre, pairs = POSE[name]
    assert layout.num_joints == joints and LAYOUT_BY_JOINTS[joints] == name
    assert layout.joint_names[layout.center_joint] == centre and layout.root_joint == layout.center_joint
    parent = dict(layout.inward_edges)
    assert len(parent) == joints - 1 and layout.root_joint not in parent
    for j in range(joints):  # every joint reaches the root: one connected tree, no cycle
        seen = {j}
        while j != layout.root_joint:
            j = parent[j]
            assert j not in seen
            seen.add(j)
    assert len(layout.mirror_pairs) == pairs
    for left, right in layout.mirror_pairs:
        assert layout.joint_names[left].replace("left", "right") == layout.joint_names[right]
    a = spatial_adjacency(layout)
    assert a.shape == (3, joints, joints) and np.isfinite(a).all()
    x = np.random.default_rng(0).normal(size=(3, 10, joints, 2)).astype(np.float32)
    bone = to_stream(x, "bone", layout)
    assert bone.shape == x.shape and not bone[:, :, layout.root_joint].any()
    child, par = next(iter(layout.inward_edges))
    assert np.allclose(bone[:, :, child], x[:, :, child] - x[:, :, par])


def test_the_existing_layouts_gained_their_mirror_pairs() -> None:
    assert len(LAYOUTS["ntu25"].mirror_pairs) == 10 and len(LAYOUTS["kinect20"].mirror_pairs) == 8
    ntu = LAYOUTS["ntu25"]
    for left, right in ntu.mirror_pairs:
        assert ntu.joint_names[left].replace("left", "right") == ntu.joint_names[right]


@pytest.mark.parametrize("backbone", ["ctrgcn", "ctrs-gcn"])
@pytest.mark.parametrize("name,channels", [("coco17", 2), ("openpose18", 3), ("mediapipe33", 2)])
def test_every_backbone_trains_on_a_pose_layout(backbone: str, name: str, channels: int) -> None:
    cfg = Config()
    cfg.model.backbone, cfg.model.in_channels = backbone, channels
    cfg.model.base_channels = 64 if backbone == "ctrs-gcn" else 8  # ctrs-gcn exists at the reference width only
    cfg.data.layout, cfg.data.num_classes, cfg.data.num_persons, cfg.data.window = name, 5, 2, 12
    model = ModelCard.from_config(cfg.validate()).build()
    x = torch.randn(3, channels, 12, POSE[name][0], 2, requires_grad=False)
    logits = model(x)
    assert logits.shape == (3, 5)
    torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1, 2])).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters() if p.requires_grad)


def test_a_centred_contract_uses_the_layouts_centre_joint(tmp_path: Path) -> None:
    cfg = Config()
    cfg.data.layout, cfg.data.num_classes, cfg.data.num_persons, cfg.data.window, cfg.data.centre = "coco17", 4, 1, 8, True
    card = ModelCard.from_config(cfg.validate())
    x = np.zeros((3, 20, 17, 1), np.float32)
    x[:, 2:18] = np.random.default_rng(3).normal(1.0, 0.2, (3, 16, 17, 1))
    np.save(tmp_path / "pose.npy", x)
    got = model_input(read_skeleton_file(tmp_path / "pose.npy"), card)
    plain = replace(card.input, centre=False)
    expected = plain.prepare(centre_on_first_frame(x, joint=0))  # the nose of the first frame at the origin
    assert got.shape == (3, 8, 17, 1) and np.allclose(got, expected, atol=1e-6)
    assert not np.allclose(got, plain.prepare(centre_on_first_frame(x, joint=1)), atol=1e-3)
