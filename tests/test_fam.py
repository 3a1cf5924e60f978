"""Feature Alignment Module: alignment MLP and the RGB branch in trainable / frozen mode."""

from __future__ import annotations

import warnings
from collections import namedtuple

import pytest
import torch
from torch import nn

from mmcl.colearning.fam import FeatureAlignment, RGBBranch, freeze_auxiliary_head

Outputs = namedtuple("Outputs", ["logits", "aux_logits"])


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny CPU models run much faster single-threaded on the shared CI cores; restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


class TinyInceptionLike(nn.Module):
    """Stand-in CNN returning (logits, aux_logits) like torchvision Inception3 in train mode."""

    def __init__(self, out: int = 10) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.fc = nn.Linear(4, out)
        self.AuxLogits = nn.Linear(4, out)

    def forward(self, x: torch.Tensor) -> Outputs:
        h = self.conv(x).mean((2, 3))
        return Outputs(self.fc(h), self.AuxLogits(h))


def test_alignment_reference_shapes() -> None:
    fam = FeatureAlignment(1000, 256)
    assert [tuple(p.shape) for p in fam.mlp.parameters()] == [(256, 1000), (256,), (256, 256), (256,)]
    assert fam(torch.randn(3, 1000)).shape == (3, 256)
    # general: output width = skeleton feature width
    assert FeatureAlignment(2048, 64, hidden=32)(torch.randn(2, 2048)).shape == (2, 64)


def test_frozen_branch_is_only_the_mlp() -> None:
    branch = RGBBranch("frozen", skeleton_dim=16, rgb_dim=12)
    assert branch.encoder is None and branch.input_key == "rgb_feature"
    assert branch(torch.randn(5, 12)).shape == (5, 16)
    with pytest.raises(ValueError, match="N×12"):
        branch(torch.randn(5, 11))
    with pytest.raises(ValueError, match="rgb_dim"):
        RGBBranch("frozen", skeleton_dim=16)
    with pytest.raises(ValueError, match="mode"):
        RGBBranch("fine-tune", skeleton_dim=16, rgb_dim=3)


def test_trainable_branch_finetunes_encoder_and_discards_aux() -> None:
    enc = TinyInceptionLike()
    branch = RGBBranch("trainable", skeleton_dim=8, encoder=enc)
    assert branch.rgb_dim == 10 and branch.input_key == "rgb"
    out = branch(torch.randn(2, 3, 9, 9))
    assert out.shape == (2, 8)
    out.sum().backward()
    assert enc.conv.weight.grad is not None and enc.conv.weight.grad.abs().sum() > 0
    assert not enc.AuxLogits.weight.requires_grad and enc.AuxLogits.weight.grad is None


@pytest.fixture(scope="module")
def inception_branch() -> RGBBranch:
    """The pipelines engineer's Inception-v3 encoder (random init, nothing downloaded) in a trainable branch."""
    pytest.importorskip("mmcl.modalities.cnn")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return RGBBranch("trainable", skeleton_dim=256, encoder_name="inception_v3", allow_random=True)


def test_trainable_with_pipeline_inception_encoder(inception_branch: RGBBranch) -> None:
    branch = inception_branch
    assert branch.rgb_dim == 1000
    aux = [p for n, p in branch.encoder.named_parameters() if "AuxLogits" in n]
    assert aux and all(not p.requires_grad for p in aux)
    branch.eval()  # small input: the auxiliary head (train mode only) needs 299 px
    out = branch(torch.randn(1, 3, 96, 96))
    assert out.shape == (1, 256)
    out.sum().backward()
    assert branch.encoder.net.Conv2d_1a_3x3.conv.weight.grad is not None
    assert freeze_auxiliary_head(nn.Linear(2, 2)) == 0


def test_official_inception_and_fam_keys_import(inception_branch: RGBBranch, shared_reference) -> None:
    """inception_v3.* / FAM_Aligh.mlp.* of the official key list load into the trainable branch."""
    from mmcl.colearning.objective import CoLearningHeads, FAMConfig
    from mmcl.checkpoints.official_mmcl import ENCODER_PREFIX, load_mmcl_checkpoint, mmcl_extra_state_dict
    from mmcl.checkpoints.official import reference_state_dict
    from mmcl.models import build_backbone

    heads = CoLearningHeads(256, 120, fam=FAMConfig(mode="trainable"), frm=None, encoder=inception_branch.encoder)
    rows = [line.split("\t") for line in (shared_reference / "mmcl_extra_state_dict.tsv").read_text().splitlines()]
    official = {k: eval(shape) for k, shape in rows if k.startswith((ENCODER_PREFIX, "FAM_Aligh."))}
    ours = mmcl_extra_state_dict(heads)
    assert {k: list(v.shape) for k, v in ours.items()} == official  # same names and shapes, AuxLogits included
    gen = torch.Generator().manual_seed(3)
    sd = {k: (torch.randn(s, generator=gen) if s else torch.tensor(5)) for k, s in official.items()}
    sd = {k: (v.long() if k.endswith("num_batches_tracked") else v) for k, v in sd.items()}
    backbone = build_backbone("ctrgcn", num_classes=120, layout="ntu25", num_persons=2)
    ckpt = {**reference_state_dict(backbone), **sd}
    report = load_mmcl_checkpoint(backbone, heads, ckpt)
    assert "Inception-v3 encoder" in report.loaded and "FAM alignment MLP" in report.loaded
    assert torch.equal(heads.rgb.encoder.net.Mixed_7c.branch_pool.conv.weight,
                       sd["inception_v3.Mixed_7c.branch_pool.conv.weight"])
    assert torch.equal(heads.rgb.align.mlp[2].bias, sd["FAM_Aligh.mlp.2.bias"])
