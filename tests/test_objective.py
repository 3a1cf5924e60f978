"""MMCL auxiliary objective (paper Eq. 10) on the real CTR-GCN, and official-checkpoint import."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from mmcl.checkpoints.official import reference_state_dict
from mmcl.checkpoints.official_mmcl import CheckpointMismatchError, load_mmcl_checkpoint, mmcl_extra_state_dict
from mmcl.colearning import (
    CoLearningHeads,
    FAMConfig,
    FRMConfig,
    build_colearning_heads,
    contrastive_loss,
    refinement_loss,
)
from mmcl.models import build_backbone

N, K = 4, 60


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny CPU models run much faster single-threaded on the shared CI cores; restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def backbone() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_backbone("ctrgcn", num_classes=K, layout="ntu25", num_persons=2)


def _batch(has_rgb: list[bool] | None = None, has_text: list[bool] | None = None) -> dict:
    gen = torch.Generator().manual_seed(1)
    return {
        "x": torch.randn(N, 3, 8, 25, 2, generator=gen),
        "label": torch.tensor([0, 5, 17, 59]),
        "rgb_feature": torch.randn(N, 12, generator=gen),
        "has_rgb": torch.tensor(has_rgb if has_rgb is not None else [True] * N),
        "text": torch.tensor([[[30522.0], [2748.0], [102.0]]] * N),
        "text_mask": torch.ones(N, 3, dtype=torch.bool),
        "has_text": torch.tensor(has_text if has_text is not None else [True] * N),
    }


def _heads(**kw) -> CoLearningHeads:
    torch.manual_seed(2)
    return CoLearningHeads(256, K, fam=FAMConfig(mode="frozen", rgb_dim=12), frm=FRMConfig(), **kw)


def _grad_norm(module: torch.nn.Module) -> float:
    return sum(float(p.grad.abs().sum()) for p in module.parameters() if p.grad is not None)


def test_each_auxiliary_loss_reaches_backbone(backbone: torch.nn.Module) -> None:
    """Real CTR-GCN, tiny input 2×3×8×25×2: L_C and L_R each send gradients into the first block."""
    heads = _heads()
    batch = {k: (v[:2] if isinstance(v, torch.Tensor) else v) for k, v in _batch().items()}
    feats = backbone.forward_features(batch["x"])
    logits = backbone.classify(feats)
    out = heads.losses(batch, feats, logits)
    assert set(out) == {"contrastive", "refine", "total_aux"}
    assert torch.allclose(out["total_aux"], 0.1 * out["contrastive"] + 0.2 * out["refine"])
    for term, head in (("contrastive", heads.rgb), ("refine", heads.frm)):
        backbone.zero_grad()
        heads.zero_grad()
        out[term].backward(retain_graph=True)
        assert _grad_norm(backbone.blocks[0]) > 0, term  # through forward_features, first block included
        assert _grad_norm(head) > 0, term


def test_terms_match_direct_computation_and_missing_modalities_are_excluded() -> None:
    heads = _heads()
    batch = _batch(has_rgb=[True, False, True, True], has_text=[False, True, True, False])
    feats = torch.randn(N, 256, requires_grad=True)
    logits = torch.randn(N, K, requires_grad=True)
    out = heads.losses(batch, feats, logits)
    rgb_rows = torch.tensor([0, 2, 3])
    expected_c = contrastive_loss(feats[rgb_rows], heads.rgb(batch["rgb_feature"][rgb_rows]))
    assert torch.allclose(out["contrastive"], expected_c)
    text_rows = torch.tensor([1, 2])
    refined = heads.frm(logits[text_rows], batch["text"][text_rows], batch["text_mask"][text_rows])
    assert torch.allclose(out["refine"], refinement_loss(refined, batch["label"][text_rows]))
    # at init S_R == S, so L_R is plain CE over the samples that have text
    assert torch.allclose(out["refine"], F.cross_entropy(logits[text_rows], batch["label"][text_rows]))
    out["total_aux"].backward()
    assert torch.all(feats.grad[1] == 0) and feats.grad[0].abs().sum() > 0  # row 1 has no RGB
    assert torch.all(logits.grad[[0, 3]] == 0) and logits.grad[1].abs().sum() > 0  # rows 0, 3 have no text


def test_no_modality_in_batch_gives_connected_zero() -> None:
    heads = _heads(variant="paper")
    batch = _batch(has_rgb=[False] * N, has_text=[False] * N)
    feats = torch.randn(N, 256, requires_grad=True)
    logits = torch.randn(N, K, requires_grad=True)
    out = heads.losses(batch, feats, logits)
    assert out["contrastive"].item() == 0.0 and out["refine"].item() == 0.0 and out["total_aux"].item() == 0.0
    out["total_aux"].backward()
    for p in heads.parameters():  # every head parameter gets a (zero) gradient: DDP-safe
        assert p.grad is not None and torch.all(p.grad == 0)


def test_switches_and_required_keys() -> None:
    assert build_colearning_heads(256, K, fam=None, frm=None) is None
    fam_only = build_colearning_heads(256, K, fam=FAMConfig(mode="frozen", rgb_dim=12), frm=None)
    assert fam_only is not None and fam_only.frm is None
    assert fam_only.required_keys == ("rgb_feature", "has_rgb")
    frm_only = build_colearning_heads(256, K, fam=None, frm=FRMConfig(), lambda_refine=0.5)
    out = frm_only.losses(_batch(), torch.randn(N, 256), torch.randn(N, K, requires_grad=True))
    assert set(out) == {"refine", "total_aux"} and torch.allclose(out["total_aux"], 0.5 * out["refine"])
    with pytest.raises(ValueError):
        CoLearningHeads(256, K, fam=None, frm=None)
    with pytest.raises(ValueError, match="variant"):
        _heads(variant="x")


# ---------------------------------------------------------------- official checkpoint import
def _tsv(path: Path) -> dict[str, list[int]]:
    rows = [line.split("\t") for line in path.read_text().splitlines() if line.strip()]
    return {k: eval(shape) for k, shape in rows}


def _synthetic_official(shared_reference: Path) -> dict[str, torch.Tensor]:
    """Random tensors under the official MMCL key names/shapes (CTR-GCN 120 classes + extras, no Inception)."""
    gen = torch.Generator().manual_seed(4)
    keys = _tsv(shared_reference / "ctrgcn_ntu120_state_dict.tsv")
    keys.update({k: s for k, s in _tsv(shared_reference / "mmcl_extra_state_dict.tsv").items()})
    return {
        k: torch.tensor(7) if k.endswith("num_batches_tracked") else torch.rand(s, generator=gen) + 0.1
        for k, s in keys.items()
    }


def test_import_official_checkpoint(shared_reference: Path) -> None:
    sd = _synthetic_official(shared_reference)
    backbone = build_backbone("ctrgcn", num_classes=120, layout="ntu25", num_persons=2)
    heads = CoLearningHeads(256, 120, fam=FAMConfig(mode="frozen", rgb_dim=1000), frm=FRMConfig())
    report = load_mmcl_checkpoint(backbone, heads, {"module." + k: v for k, v in sd.items()})
    assert report.loaded == ["backbone", "FRM", "FAM alignment MLP"]
    assert report.ignored == {"Inception-v3 encoder": 580}  # frozen mode: no CNN inside the model
    assert torch.equal(heads.frm.class_weights[0], sd["PosMatrix"])
    assert torch.equal(heads.frm.class_weights[1], sd["NegMatrix"])
    assert torch.equal(heads.frm.mlp[0].weight, sd["mlp.0.weight"])
    assert torch.equal(heads.rgb.align.mlp[0].weight, sd["FAM_Aligh.mlp.0.weight"])
    assert torch.equal(reference_state_dict(backbone)["l10.tcn1.branches.0.0.weight"], sd["l10.tcn1.branches.0.0.weight"])
    # round trip: our heads under official names equal the non-Inception extras
    extras = mmcl_extra_state_dict(heads)
    assert all(torch.equal(v, sd[k]) for k, v in extras.items())
    # skeleton-only (for export): extras ignored, backbone loaded
    plain = build_backbone("ctrgcn", num_classes=120, layout="ntu25", num_persons=2)
    report = load_mmcl_checkpoint(plain, None, sd)
    assert report.loaded == ["backbone"] and report.ignored["FRM"] == 6
    # plain CTR-GCN checkpoint into heads: heads keep their initialisation
    ctrgcn_only = {k: v for k, v in sd.items() if not k.startswith(("Pos", "Neg", "mlp.", "FAM_", "inception_"))}
    report = load_mmcl_checkpoint(plain, heads, ctrgcn_only)
    assert report.kept_init == ["FRM", "FAM alignment MLP"]


def test_import_mismatch_names_keys_and_shapes(shared_reference: Path) -> None:
    sd = _synthetic_official(shared_reference)
    backbone = build_backbone("ctrgcn", num_classes=60, layout="ntu25", num_persons=2)
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    heads = CoLearningHeads(256, 60, fam=None, frm=FRMConfig())
    init_weights = heads.frm.class_weights.detach().clone()
    with pytest.raises(CheckpointMismatchError) as err:
        load_mmcl_checkpoint(backbone, heads, sd)
    msg = str(err.value)
    assert "'PosMatrix' checkpoint [120] vs model [60]" in msg and "'NegMatrix'" in msg
    with pytest.raises(CheckpointMismatchError, match=r"fc\.weight.*\[120, 256\].*\[60, 256\]"):
        load_mmcl_checkpoint(backbone, None, sd)
    assert all(torch.equal(v, before[k]) for k, v in backbone.state_dict().items())  # nothing loaded
    assert torch.equal(heads.frm.class_weights, init_weights)
    wrong_width = CoLearningHeads(256, 120, fam=None, frm=FRMConfig(text_dim=2, kind="answer_probs"))
    with pytest.raises(CheckpointMismatchError, match=r"'0.weight' checkpoint \[64, 3\] vs model \[64, 2\]"):
        load_mmcl_checkpoint(build_backbone("ctrgcn", num_classes=120, layout="ntu25", num_persons=2), wrong_width, sd)
