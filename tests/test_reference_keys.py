"""Official key names: CTR-GCN against the reference key list, MMCL checkpoint splitting."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from mmcl.checkpoints.official import load_reference_state_dict, reference_state_dict, split_mmcl_checkpoint
from mmcl.models import build_backbone
from mmcl.checkpoints.official import MMCL_EXTRA_PREFIXES


def _read_tsv(path: Path) -> list[tuple[str, list[int]]]:
    rows = []
    for line in path.read_text().splitlines():
        if line.strip():
            key, shape = line.split("\t")
            rows.append((key, json.loads(shape)))
    return rows


def test_ctrgcn_keys_and_shapes_match_reference_list(shared_reference):
    want = _read_tsv(shared_reference / "ctrgcn_ntu120_state_dict.tsv")
    model = build_backbone(num_classes=120, layout="ntu25", num_persons=2)
    got = [(k, list(v.shape)) for k, v in reference_state_dict(model).items()]
    assert len(got) == len(want) == 822
    assert got == want
    assert sum(v.numel() for v in reference_state_dict(model).values()) == 1_471_886  # REFERENCE §5.7


def test_mmcl_checkpoint_split_and_load(shared_reference):
    extra = _read_tsv(shared_reference / "mmcl_extra_state_dict.tsv")
    model = build_backbone(num_classes=120, layout="ntu25", num_persons=2)
    backbone = reference_state_dict(model)
    # MMCL order: PosMatrix, NegMatrix first, then the backbone, then the rest (REFERENCE §7.9).
    head = [(k, s) for k, s in extra if k in ("PosMatrix", "NegMatrix")]
    tail = [(k, s) for k, s in extra if k not in ("PosMatrix", "NegMatrix")]
    ckpt = {k: torch.zeros(s) for k, s in head}
    ckpt.update({f"module.{k}": v.clone() for k, v in backbone.items()})
    ckpt.update({k: torch.zeros(s) for k, s in tail})
    bb, ex = split_mmcl_checkpoint({"model": ckpt})
    assert list(bb) == list(backbone)
    assert sorted(ex) == sorted(k for k, _ in extra)
    assert all(k.startswith(MMCL_EXTRA_PREFIXES) for k in ex)
    target = build_backbone(num_classes=120, layout="ntu25", num_persons=2)
    with pytest.raises(ValueError, match="unexpected keys"):
        load_reference_state_dict(target, ckpt)
    load_reference_state_dict(target, ckpt, ignore_prefixes=MMCL_EXTRA_PREFIXES)
    load_reference_state_dict(target, bb)
    for k, v in reference_state_dict(target).items():
        assert torch.equal(v, backbone[k])


def test_bad_checkpoint_object_raises():
    model = build_backbone(num_classes=10, layout="kinect20", num_persons=1)
    with pytest.raises(ValueError, match="state_dict"):
        load_reference_state_dict(model, {"epoch": 3, "optimizer": 1})
