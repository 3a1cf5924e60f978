"""``mmcl export``: skeleton-only artefacts from MMCL training checkpoints and official checkpoints.

ONNX/TorchScript parity is tested by ``test_export.py``; here: what gets exported, the reported
cost, and that the artefact is usable by ``predict``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from mmcl.config import Config, config_to_dict
from mmcl.checkpoints.official import reference_state_dict
from mmcl.models import build_backbone
from mmcl.checkpoints import open_checkpoint
from mmcl.predict import load_model

from cli_runner import run  # noqa: E402  (shared in-process CLI runner)

NTU120_CTRGCN_PARAMETERS = 1_462_092  # REFERENCE §5.7



def test_export_mmcl_training_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """An MMCL run's checkpoint also holds FRM/FAM heads: only ``backbone.*`` is exported."""
    from safetensors.torch import load_file

    import mmcl.export

    counted: list[tuple[tuple[int, ...], dict]] = []
    real_cost = mmcl.export.cost_summary

    def spy(model: torch.nn.Module, shape: tuple[int, ...]) -> dict:
        counted.append((tuple(shape), real_cost(model, shape)))
        return counted[-1][1]

    monkeypatch.setattr(mmcl.export, "cost_summary", spy)

    torch.manual_seed(0)
    model = build_backbone(num_classes=120, layout="ntu25", num_persons=2).eval()
    cfg = Config()
    cfg.data.dataset, cfg.data.num_classes, cfg.data.layout, cfg.data.num_persons = "ntu120", 120, "ntu25", 2
    state = {f"backbone.{k}": v for k, v in model.state_dict().items()}
    state.update({
        "heads.frm.mlp.0.weight": torch.zeros(64, 3), "heads.frm.mlp.0.bias": torch.zeros(64),
        "heads.frm.mlp.2.weight": torch.zeros(2, 64), "heads.frm.mlp.2.bias": torch.zeros(2),
        "heads.frm.class_weights": torch.ones(2, 120), "heads.rgb.align.mlp.0.weight": torch.zeros(256, 1000),
    })
    ckpt = tmp_path / "last.ckpt"
    torch.save({"state_dict": state, "mmcl_config": config_to_dict(cfg), "epoch": 3}, ckpt)
    out = tmp_path / "exported"
    code, stdout, _ = run(["export", "--checkpoint", str(ckpt), "--out", str(out), "--no-onnx", "--no-torchscript", "--json"], capsys)
    assert code == 0
    summary = json.loads(stdout)
    assert summary["parameters"] == NTU120_CTRGCN_PARAMETERS and summary["checkpoint_kind"] == "mmcl-train"
    assert [shape for shape, _ in counted] == [(1, 3, 64, 25, 2)] and summary["input"] == "3x64x25x2"
    assert summary["GMACs"] == counted[0][1]["GMACs"] and 1.8 < summary["GMACs"] < 2.1  # paper formulation, ≈1.94 for NTU CTR-GCN
    assert summary["GMACs_executed"] == counted[0][1]["GMACs_executed"] < summary["GMACs"]
    assert sorted(p.name for p in out.iterdir()) == ["model.json", "model.safetensors"]
    weights = load_file(str(out / "model.safetensors"))
    assert set(weights) == set(model.state_dict())  # exactly the backbone, no heads
    assert all(torch.equal(weights[k], v) for k, v in model.state_dict().items())
    card = open_checkpoint(out).card  # the export carries shape, dataset, stream and test transform
    assert (card.num_classes, card.dataset, card.input.window, card.input.stream, card.source) == (120, "ntu120", 64, "joint", "card")
    assert load_model(out).class_names[22] == "hand waving"


def test_export_official_checkpoint_with_onnx(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Official file (``module.`` prefix, reference names): shape inferred, all artefacts written."""
    import mmcl.export
    import mmcl.models

    def fake_onnx(model, example, path, exporter):  # the real exporter takes ~10 s; parity is test_export.py's job
        Path(path).write_bytes(b"onnx")
        return "stub"

    monkeypatch.setattr(mmcl.export, "_export_onnx", fake_onnx)
    monkeypatch.setattr(mmcl.export, "_add_onnx_metadata", lambda path, entries: None)
    monkeypatch.setattr(mmcl.export, "cost_summary", lambda model, shape: {"parameters": 1_426_892, "GMACs": 0.123, "GMACs_executed": 0.1})
    model = build_backbone(num_classes=10, layout="kinect20", num_persons=1)
    ckpt = tmp_path / "ctrgcn_ucla.pt"
    torch.save({"module." + k: v for k, v in reference_state_dict(model).items()}, ckpt)
    out = tmp_path / "ucla"
    code, stdout, _ = run(["export", "--checkpoint", str(ckpt), "--out", str(out), "--stream", "bone", "--onnx"], capsys)
    assert code == 0
    assert f"exported a 10-class Kinect-20 bone-stream ctrgcn model (1 person) from {ckpt} (official-ctrgcn)" in stdout
    assert "input 3x52x20x1: Kinect-20 bone stream, 1 person, ucla transform (52 frames)" in stdout
    assert "parameters 1,426,892   GMACs 0.1230 (paper formulation; 0.1000 executed)" in stdout
    for name in ("model.safetensors", "model.json", "model.onnx", "model.torchscript.pt"):
        assert (out / name).is_file()
    info = json.loads((out / "model.json").read_text())
    assert info["card"]["dataset"] == "nwucla" and info["card"]["input"]["transform"] == "ucla" and info["card"]["input"]["stream"] == "bone"
    loaded = load_model(out)
    assert loaded.kind == "mmcl-export" and loaded.card.input.stream == "bone"
    x = torch.from_numpy(np.random.default_rng(0).normal(size=(1, 3, 52, 20, 1)).astype(np.float32))
    with torch.no_grad():
        assert torch.allclose(loaded.model(x), model.eval()(x), atol=1e-5)


def test_export_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["export", "--checkpoint", str(tmp_path / "nope.pt"), "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and "checkpoint not found" in err
    torch.save({"something": torch.zeros(3)}, tmp_path / "junk.pt")
    code, _, err = run(["export", "--checkpoint", str(tmp_path / "junk.pt"), "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and "cannot infer the model shape" in err
    (tmp_path / "model.json").write_text("{}")
    code, _, err = run(["export", "--checkpoint", str(tmp_path / "model.json"), "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and "a JSON/text file, not a PyTorch checkpoint" in err and "weights_only" not in err
    (tmp_path / "empty.pt").write_bytes(b"")
    code, _, err = run(["export", "--checkpoint", str(tmp_path / "empty.pt"), "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and "empty.pt: empty file (0 bytes)" in err
