"""Feature Refinement Module (paper Eq. 7-9, REFERENCE §7.4)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mmcl.colearning.frm import FeatureRefinement, pool_text_features, refinement_loss


def test_identity_at_init_exact() -> None:
    torch.manual_seed(0)
    frm = FeatureRefinement(3, 60)
    scores = torch.randn(5, 60) * 10
    ids = torch.tensor([[30522.0, 2748.0, 102.0]]).repeat(5, 1)  # raw token IDs as in the reference
    assert torch.equal(frm(scores, ids), scores)


def test_reference_structure_and_formula() -> None:
    torch.manual_seed(1)
    frm = FeatureRefinement(3, 7)
    assert [tuple(p.shape) for p in frm.mlp.parameters()] == [(64, 3), (64,), (2, 64), (2,)]
    assert tuple(frm.class_weights.shape) == (2, 7)
    with torch.no_grad():
        frm.class_weights.uniform_(0.5, 1.5)
    scores, text = torch.randn(4, 7), torch.randn(4, 3)
    p = torch.softmax(frm.mlp(text), dim=1)
    pos, neg = frm.class_weights
    expected = p[:, :1] * pos * scores + p[:, 1:] * neg * scores  # REFERENCE §7.1 step 6
    assert torch.allclose(frm(scores, text), expected, atol=1e-6)


def test_n_channels_general() -> None:
    frm = FeatureRefinement(5, 4, num_channels=3, kind="sentence")
    with torch.no_grad():
        frm.class_weights.copy_(torch.rand(3, 4) + 0.5)
    s, t = torch.randn(2, 4), torch.randn(2, 5)
    p = torch.softmax(frm.mlp(t), 1)
    expected = sum(p[:, i : i + 1] * frm.class_weights[i] * s for i in range(3))
    assert torch.allclose(frm(s, t), expected, atol=1e-6)


def test_masked_mean_pooling_for_variable_length() -> None:
    text = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]], [[5.0, 6.0], [0.0, 0.0], [0.0, 0.0]]])
    mask = torch.tensor([[True, True, False], [True, False, False]])
    pooled = pool_text_features(text, mask, kind="decoder_hidden")
    assert torch.allclose(pooled, torch.tensor([[2.0, 3.0], [5.0, 6.0]]))
    empty = pool_text_features(text, torch.zeros(2, 3, dtype=torch.bool), kind="sentence")
    assert torch.equal(empty, torch.zeros(2, 2))
    frm = FeatureRefinement(2, 3, kind="decoder_hidden")
    s = torch.randn(2, 3)
    assert torch.allclose(frm(s, text, mask), frm(s, pooled))


def test_answer_ids_flatten_and_pad() -> None:
    # store layout: L×1 IDs, padded with a mask -> padded ID vector of width feature_dim
    ids = torch.tensor([[[101.0], [2748.0], [102.0], [7.0]], [[101.0], [2053.0], [0.0], [0.0]]])
    mask = torch.tensor([[True, True, True, True], [True, True, False, False]])
    vec = pool_text_features(ids, mask, kind="answer_ids", width=3)
    assert torch.equal(vec, torch.tensor([[101.0, 2748.0, 102.0], [101.0, 2053.0, 0.0]]))
    ref = pool_text_features(torch.tensor([[[1.0, 2.0, 3.0]]]), kind="answer_ids", width=3)  # N×1×3 reference
    assert torch.equal(ref, torch.tensor([[1.0, 2.0, 3.0]]))
    assert pool_text_features(torch.ones(1, 2), kind="answer_ids", width=4).shape == (1, 4)


def test_refinement_loss_is_softmax_ce_and_gradients_reach_scores() -> None:
    frm = FeatureRefinement(2, 5, kind="answer_probs")
    scores = torch.randn(3, 5, requires_grad=True)
    labels = torch.tensor([0, 4, 2])
    refined = frm(scores, torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.5, 0.5]]))
    loss = refinement_loss(refined, labels)
    assert torch.allclose(loss, F.cross_entropy(refined, labels))
    loss.backward()
    assert scores.grad is not None and scores.grad.abs().sum() > 0
    assert frm.class_weights.grad is not None and frm.mlp[0].weight.grad is not None


def test_errors() -> None:
    with pytest.raises(ValueError, match="kind"):
        FeatureRefinement(3, 4, kind="bogus")
    frm = FeatureRefinement(4, 3, kind="sentence")
    with pytest.raises(ValueError, match="width 4"):
        frm(torch.randn(2, 3), torch.randn(2, 5))
    with pytest.raises(ValueError, match="scores"):
        frm(torch.randn(2, 6), torch.randn(2, 4))
