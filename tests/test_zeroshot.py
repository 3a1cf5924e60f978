"""``mmcl zero-shot``: UTD-MHAD files of the six mapped classes with a model whose ranking is known."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from mmcl.checkpoints.official import reference_state_dict
from mmcl.models import build_backbone
from mmcl.zeroshot import evaluate_zero_shot, find_samples

from cli_runner import run  # noqa: E402  (shared in-process CLI runner)

# REFERENCE §9.2: UTD action -> NTU-120 0-based label
MAPPING = {"a3": 22, "a6": 95, "a7": 62, "a24": 8, "a25": 7, "a27": 79}
# logits = fc bias (zero fc weight): ranking 79 > 22 > 95 > 62 > 8 > every other class (7 far below)
BIAS = {79: 10.0, 22: 9.0, 95: 8.0, 62: 7.0, 8: 6.0}



@pytest.fixture(scope="module")
def official_mmcl(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Official-style MMCL checkpoint: backbone + FRM (PosMatrix/NegMatrix/mlp.*) with known behaviour.

    phi outputs (+20, -20) whatever the text, so p = (1, 0) and S_R = PosMatrix ⊙ S; PosMatrix[7] = 100
    lifts label 7 (a25 'stand to sit' -> A008 sitting down) to the top after refinement.
    """
    torch.manual_seed(0)
    m = build_backbone(num_classes=120, layout="ntu25", num_persons=2).eval()
    with torch.no_grad():
        m.fc.weight.zero_()
        m.fc.bias.fill_(0.5)
        for label, value in BIAS.items():
            m.fc.bias[label] = value
    sd = dict(reference_state_dict(m))
    pos = torch.ones(120)
    pos[7] = 100.0
    sd.update({
        "PosMatrix": pos, "NegMatrix": torch.ones(120),
        "mlp.0.weight": torch.zeros(64, 3), "mlp.0.bias": torch.zeros(64),
        "mlp.2.weight": torch.zeros(2, 64), "mlp.2.bias": torch.tensor([20.0, -20.0]),
    })
    path = tmp_path_factory.mktemp("ckpt") / "mmcl_ntu120.pt"
    torch.save({"module." + k: v for k, v in sd.items()}, path)
    return path


@pytest.fixture(scope="module")
def utd_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One file per mapped action, a second a27 file, and an unmapped action (a1) that is ignored."""
    from scipy.io import savemat

    d = tmp_path_factory.mktemp("utd") / "Skeleton"
    d.mkdir()
    rng = np.random.default_rng(0)
    for action, subject in [(3, 1), (6, 1), (7, 1), (24, 1), (25, 1), (27, 1), (27, 2), (1, 1)]:
        savemat(d / f"a{action}_s{subject}_t1_skeleton.mat", {"d_skel": rng.normal(size=(20, 3, 20 + action))})
    return d


def test_find_samples_uses_the_mapping(utd_dir: Path) -> None:
    samples, ignored = find_samples(utd_dir, "utd-mhad", MAPPING)
    assert ignored == 1 and len(samples) == 7
    assert {s.action for s in samples} == set(MAPPING)
    assert all(s.label == MAPPING[s.action] for s in samples)


def test_zero_shot_counts(official_mmcl: Path, utd_dir: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = run(["zero-shot", "--checkpoint", str(official_mmcl), "--dataset", "utd-mhad", "--data", str(utd_dir.parent),
                        "--json", "--scores", str(tmp_path / "scores.npz")], capsys)
    assert code == 0
    rep = json.loads(out)
    assert rep["scores"] == "S" and rep["checkpoint_kind"] == "official-mmcl"
    # top-1: only the two a27 files (label 79); top-5: every class but a25 (label 7): 6 of 7
    assert (rep["samples"], rep["top1_hits"], rep["top5_hits"], rep["ignored_files"]) == (7, 2, 6, 1)
    assert rep["top1"] == pytest.approx(2 / 7) and rep["top5"] == pytest.approx(6 / 7)
    per = {c["action"]: c for c in rep["per_class"]}
    assert list(per) == ["a3", "a6", "a7", "a24", "a25", "a27"]
    assert per["a27"] == {"action": "a27", "action_name": "squat", "label": 79, "label_name": "squat down",
                          "samples": 2, "top1_hits": 2, "top5_hits": 2, "top1": 1.0, "top5": 1.0}
    assert (per["a25"]["top1_hits"], per["a25"]["top5_hits"]) == (0, 0)
    assert (per["a3"]["top1_hits"], per["a3"]["top5_hits"], per["a3"]["label_name"]) == (0, 1, "hand waving")
    with np.load(tmp_path / "scores.npz", allow_pickle=False) as z:
        assert z["scores"].shape == (7, 120) and sorted(z["labels"].tolist()) == sorted([22, 95, 62, 8, 7, 79, 79])


def test_zero_shot_text_output_and_frm(official_mmcl: Path, utd_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from mmcl.modalities.store import FeatureStore

    samples, _ = find_samples(utd_dir, "utd-mhad", MAPPING)
    store = FeatureStore.create(tmp_path / "text", dim=3, kind="answer_probs")
    store.append([s.name for s in samples], np.random.default_rng(0).normal(size=(len(samples), 3)).astype(np.float32))
    report = evaluate_zero_shot(official_mmcl, utd_dir, text_store=tmp_path / "text")
    assert report.refined and report.num_samples == 7
    assert report.hits(1) == 1  # S_R: label 7 first for every sample -> only the a25 file is a hit
    text = report.to_text()
    assert "top-1  14.29% (1/7)" in text and "a25 stand to sit -> 7 sitting down" in text


def test_zero_shot_errors(official_mmcl: Path, utd_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    m = build_backbone(num_classes=120, layout="ntu25", num_persons=2)
    plain = tmp_path / "ctrgcn.pt"
    torch.save(reference_state_dict(m), plain)
    store = _store_with_one(tmp_path / "t")
    with pytest.raises(ValueError, match="no FRM weights"):
        evaluate_zero_shot(plain, utd_dir, text_store=store)
    with pytest.raises(ValueError, match="no text features for 7 of 7"):
        evaluate_zero_shot(official_mmcl, utd_dir, text_store=store)
    code, _, err = run(["zero-shot", "--checkpoint", str(plain), "--dataset", "kinect-v1", "--data", str(utd_dir)], capsys)
    assert code == 2 and "needs --mapping" in err


def _store_with_one(path: Path) -> Path:
    from mmcl.modalities.store import FeatureStore

    FeatureStore.create(path, dim=3, kind="answer_probs").append(["other"], np.zeros((1, 3), np.float32))
    return path


def test_generic_kinect_v1_with_joint_order(official_mmcl: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from mmcl.skeleton.layouts import KINECT20

    order = list(reversed(KINECT20.joint_names))
    (tmp_path / "joints.txt").write_text("\n".join(order) + "\n")
    (tmp_path / "map.tsv").write_text("action\tntu_label\tname\nsquat\t79\tdeep squat\nwave\t22\n")
    data = tmp_path / "data"
    data.mkdir()
    rng = np.random.default_rng(2)
    np.save(data / "squat_p1.npy", rng.normal(size=(30, 20, 3)).astype(np.float32))
    np.save(data / "wave_p1.npy", rng.normal(size=(30, 20, 3)).astype(np.float32))
    code, out, _ = run(["zero-shot", "--checkpoint", str(official_mmcl), "--dataset", "kinect-v1", "--data", str(data),
                        "--mapping", str(tmp_path / "map.tsv"), "--joint-order", str(tmp_path / "joints.txt")], capsys)
    assert code == 0
    assert "top-1  50.00% (1/2)   top-5 100.00% (2/2)" in out and "squat deep squat -> 79 squat down" in out


def test_zero_shot_applies_the_models_stream(utd_dir: Path, tmp_path: Path) -> None:
    """A bone-motion NTU model gets the zero-shot preprocessing, then its own stream (from the card)."""
    from mmcl.checkpoints import ModelCard
    from mmcl.formats.kinect_v1 import load_utd_skeleton
    from mmcl.skeleton.transforms import zero_shot_preprocess
    from mmcl.datasets.pipeline import InputSpec
    from mmcl.skeleton.interpolate import kinect20_to_ntu25
    from mmcl.skeleton.streams import to_stream

    card = ModelCard("ctrgcn", 120, InputSpec("ntu25", 2, stream="bone_motion"), base_channels=8, dataset="ntu120")
    torch.manual_seed(1)
    model = card.build().eval()
    path = tmp_path / "bm.ckpt"
    torch.save({"state_dict": {f"backbone.{k}": v for k, v in model.state_dict().items()}, "mmcl_card": card.to_dict()}, path)
    rep = evaluate_zero_shot(path, utd_dir, dataset="utd-mhad")
    for name, got in zip(rep.names, rep.scores):
        x = zero_shot_preprocess(kinect20_to_ntu25(load_utd_skeleton(utd_dir / f"{name}.mat")), 64)
        with torch.no_grad():
            want = model(torch.from_numpy(to_stream(x, "bone_motion", "ntu25")[None])).numpy()[0]
            joint = model(torch.from_numpy(x[None])).numpy()[0]
        assert np.abs(got - want).max() <= 1e-4 * max(1.0, np.abs(want).max())
        assert np.abs(got - joint).max() > 1e-3  # the stream matters: joint input would score differently
