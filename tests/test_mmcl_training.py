"""MMCL training through the engine: loss terms, the ablation identity, missing modalities, skeleton-only outputs."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch

from mmcl.config import Config
from mmcl.demo import DEMO_BENCHMARK, build_demo_modalities, prepare_demo_data
from mmcl.modalities.cnn import build_image_encoder
from mmcl.modalities.store import FeatureStore
from mmcl.training.fit import train


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("mmcl_world")
    train_data, _ = prepare_demo_data(root / "data", per_class=3, seed=0)
    torch.manual_seed(0)  # a tiny random CNN keeps these engine tests fast and free of the demo extra
    encoder = build_image_encoder("resnet34", None, allow_random=True, output="pool", short_side=64)
    rgb_store, text_store = build_demo_modalities(root, train_data, text_kind="answer_probs", image_encoder=encoder)
    return {"data": root / "data" / DEMO_BENCHMARK, "rgb_store": rgb_store, "text_store": text_store, "root": root}


def small_config(world: dict[str, Path], work_dir: Path, *, fam: bool, frm: bool, epochs: int = 2) -> Config:
    cfg = Config()
    cfg.data.path, cfg.data.dataset, cfg.data.layout = str(world["data"]), "synthetic", "ntu25"
    cfg.data.num_classes, cfg.data.num_persons = 12, 1
    cfg.data.window, cfg.data.batch_size, cfg.data.test_batch_size, cfg.data.num_workers = 8, 8, 16, 0
    cfg.model.base_channels = 8
    cfg.optim.warmup_epochs, cfg.optim.lr_steps = 1, [5]
    cfg.trainer.epochs, cfg.trainer.work_dir, cfg.trainer.progress, cfg.trainer.seed = epochs, str(work_dir), False, 11
    c = cfg.colearning
    c.fam, c.frm, c.rgb_mode = fam, frm, "frozen"
    c.rgb_store, c.text_store = str(world["rgb_store"]), str(world["text_store"])
    return cfg.validate()


def _state(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]


def test_both_switches_off_is_plain_training(world: dict[str, Path], tmp_path: Path) -> None:
    plain = small_config(world, tmp_path / "plain", fam=False, frm=False)
    plain.colearning.rgb_store = plain.colearning.text_store = None
    train(plain)
    off = small_config(world, tmp_path / "off", fam=False, frm=False)  # stores configured but switched off
    train(off)
    a, b = _state(tmp_path / "plain"), _state(tmp_path / "off")
    assert a.keys() == b.keys() and all(k.startswith("backbone.") for k in a)
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_mmcl_training_logs_each_term_and_keeps_inference_skeleton_only(world: dict[str, Path], tmp_path: Path) -> None:
    cfg = small_config(world, tmp_path / "mmcl", fam=True, frm=True)
    results = train(cfg)
    with open(tmp_path / "mmcl" / "csv" / "metrics.csv") as fh:
        columns = next(csv.reader(fh))
    for term in ("train/loss_cls_epoch", "train/loss_contrastive_epoch", "train/loss_refine_epoch", "train/loss_total_aux_epoch"):
        assert term in columns, columns
    state = _state(tmp_path / "mmcl")
    assert any(k.startswith("heads.") for k in state)  # FAM/FRM weights are trained and checkpointed
    backbone = {k: v for k, v in state.items() if k.startswith("backbone.")}
    plain_params = results["parameters"]
    assert plain_params == sum(v.numel() for k, v in backbone.items() if "running_" not in k and "num_batches" not in k)
    assert (tmp_path / "mmcl" / "scores.npz").is_file()


@pytest.mark.parametrize("module", ["fam", "frm"])
def test_the_auxiliary_loss_and_nothing_else_changes_the_backbone(world: dict[str, Path], tmp_path: Path, module: str) -> None:
    """With its weight λ = 0 a switched-on module leaves the backbone's training bit for bit as plain
    training (same data order, same augmentation, no gradient); with the paper's λ it changes every
    backbone layer, so the auxiliary gradient reaches the whole skeleton model."""
    train(small_config(world, tmp_path / "base", fam=False, frm=False, epochs=1))
    zero = small_config(world, tmp_path / "zero", fam=module == "fam", frm=module == "frm", epochs=1)
    zero.colearning.lambda_contrastive = zero.colearning.lambda_refine = 0.0
    train(zero)
    train(small_config(world, tmp_path / "on", fam=module == "fam", frm=module == "frm", epochs=1))
    base, off, on = _state(tmp_path / "base"), _state(tmp_path / "zero"), _state(tmp_path / "on")
    backbone = [k for k in base if k.startswith("backbone.") and base[k].is_floating_point() and "running" not in k]
    assert all(torch.equal(base[k], off[k]) for k in backbone)
    changed = [k for k in backbone if not torch.equal(base[k], on[k])]
    assert "backbone.fc.weight" in changed and any(k.startswith("backbone.blocks.0.") for k in changed)
    assert any(k.startswith(f"heads.{'rgb' if module == 'fam' else 'frm'}.") for k in on)


def test_missing_features_stop_the_run_unless_allowed(world: dict[str, Path], tmp_path: Path) -> None:
    partial = tmp_path / "partial_text"
    full = FeatureStore.open(world["text_store"])
    store = FeatureStore.create(partial, dim=full.dim, kind=full.kind, meta={})
    keep = full.names[: len(full.names) // 2]
    import numpy as np

    store.append(keep, np.stack([full.get(n) for n in keep]))
    cfg = small_config(world, tmp_path / "strict", fam=False, frm=True, epochs=1)
    cfg.colearning.text_store = str(partial)
    from mmcl.datasets.multimodal import MissingModalityError

    with pytest.raises(MissingModalityError) as err:
        train(cfg)
    assert str(len(full.names) - len(keep)) in str(err.value)
    cfg.colearning.allow_missing = True
    results = train(cfg)
    assert results["test"]["num_samples"] > 0


@pytest.mark.parametrize("backbone", ["ctrs-gcn", "hdgcn"])
def test_colearning_works_with_every_backbone(world: dict[str, Path], tmp_path: Path, backbone: str) -> None:
    """FAM and FRM take any backbone of the builder (its pooled features and logits): with λ = 0 they
    leave its training bit for bit as plain; with the paper's λ both aux losses are logged and change its
    first block; the checkpointed model is the plain backbone plus the training-only heads."""

    def cfg(name: str, fam: bool, frm: bool, lam: float | None = None) -> Config:
        c = small_config(world, tmp_path / name, fam=fam, frm=frm, epochs=1)
        c.model.backbone = backbone
        c.model.base_channels = 64 if backbone == "ctrs-gcn" else 8
        if lam is not None:
            c.colearning.lambda_contrastive = c.colearning.lambda_refine = lam
        return c.validate()

    train(cfg("plain", False, False))
    train(cfg("zero", True, True, 0.0))
    train(cfg("on", True, True))
    plain, zero, on = _state(tmp_path / "plain"), _state(tmp_path / "zero"), _state(tmp_path / "on")
    weights = [k for k in plain if k.startswith("backbone.") and plain[k].is_floating_point() and "running" not in k]
    assert all(torch.equal(plain[k], zero[k]) for k in weights)
    changed = [k for k in weights if not torch.equal(plain[k], on[k])]
    assert any(k.startswith("backbone.blocks.0.") for k in changed)
    assert any(k.startswith("heads.rgb.") for k in on) and any(k.startswith("heads.frm.") for k in on)
    with open(tmp_path / "on" / "csv" / "metrics.csv") as fh:
        columns = next(csv.reader(fh))
    assert "train/loss_contrastive_epoch" in columns and "train/loss_refine_epoch" in columns


def test_every_evaluation_can_keep_its_scores(world: dict[str, Path], tmp_path: Path) -> None:
    """trainer.keep_eval_scores: one score file per evaluation (the reference's best-eval-epoch protocol
    needs them); the last one is the final model's test scores."""
    from mmcl.results.scores import load_scores

    cfg = small_config(world, tmp_path / "keep", fam=False, frm=False, epochs=2)
    cfg.trainer.keep_eval_scores, cfg.trainer.final_checkpoint = True, "last"
    train(cfg.validate())
    files = sorted(p.name for p in (tmp_path / "keep" / "eval_scores").iterdir())
    assert files == ["epoch_001.npz", "epoch_002.npz"]
    last = load_scores(tmp_path / "keep" / "eval_scores" / "epoch_002.npz")
    final = load_scores(tmp_path / "keep" / "scores.npz")
    assert list(last[0]) == list(final[0]) and (last[1] == final[1]).all()
    np.testing.assert_allclose(last[2], final[2], rtol=1e-5, atol=1e-5)
