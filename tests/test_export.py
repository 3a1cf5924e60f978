"""Skeleton-only export: safetensors round trip with the card, ONNX and TorchScript give the PyTorch outputs.

The exported graphs take joint coordinates and apply the card's stream inside: checked here on a
bone-motion model against ``to_stream`` + the backbone.
"""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from mmcl.checkpoints import ModelCard, open_checkpoint
from mmcl.datasets.pipeline import InputSpec
from mmcl.export import GRAPH_INPUT, export_backbone
from mmcl.models import build_backbone, count_parameters
from mmcl.skeleton.streams import to_stream

SHAPE = (2, 3, 16, 20, 1)
CARD = ModelCard("ctrgcn", 10, InputSpec("kinect20", 1, stream="bone_motion", transform="ucla", window=16), dataset="nwucla")
pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::FutureWarning")]  # ONNX dynamo export: ~20 s


def _calibrated_model() -> nn.Module:
    """Fresh model with data-derived BN statistics, so eval outputs are O(1) (not ~1e3)."""
    torch.manual_seed(0)
    m = build_backbone(num_classes=10, layout="kinect20", num_persons=1)
    for mod in m.modules():
        if isinstance(mod, nn.modules.batchnorm._BatchNorm):
            mod.momentum = None
    with torch.no_grad():
        m.train()(torch.randn(8, *SHAPE[1:]))
    with torch.no_grad():
        m.blocks[3].graph_conv.alpha.fill_(0.5)  # exercise the topology refinement
    for mod in m.modules():
        if isinstance(mod, nn.modules.batchnorm._BatchNorm):
            mod.momentum = 0.1
    return m.eval()


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    model = _calibrated_model()
    out = tmp_path_factory.mktemp("export")
    paths = export_backbone(model, out, card=CARD)
    return model, out, paths


def _streamed(x: torch.Tensor, model: nn.Module) -> torch.Tensor:
    """What the exported graphs must compute from joint coordinates: the card's stream, then the backbone."""
    with torch.no_grad():
        return model(to_stream(x, CARD.input.stream, CARD.input.layout))


def test_files_and_json(exported):
    model, out, paths = exported
    assert set(paths) == {"safetensors", "json", "onnx", "torchscript"}
    assert all(p.is_file() and p.parent == out for p in paths.values())
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]
    info = json.loads(paths["json"].read_text())
    assert ModelCard.from_dict(info["card"]) == CARD
    assert info["card"]["input"] == {"layout": "kinect20", "num_persons": 1, "in_channels": 3, "stream": "bone_motion",
                                     "transform": "ucla", "window": 16, "p_interval": [0.95], "centre": False,
                                     "channels": ["x", "y", "z"], "normalise": "none", "image_size": []}
    assert info["card"]["class_names"] is None and info["graph_input"] == GRAPH_INPUT
    assert info["files"] == {"safetensors": "model.safetensors", "onnx": "model.onnx", "torchscript": "model.torchscript.pt"}
    assert count_parameters(model) == 1_426_892
    assert info["onnx_exporter"] in ("dynamo", "torchscript")
    onnx = pytest.importorskip("onnx")
    props = {p.key: p.value for p in onnx.load(str(paths["onnx"])).metadata_props}
    assert ModelCard.from_dict(json.loads(props["mmcl_card"])) == CARD


def test_safetensors_round_trip(exported):
    model, out, _ = exported
    opened = open_checkpoint(out)
    assert opened.kind == "mmcl-export" and opened.card == CARD
    loaded = opened.build_model()
    assert not loaded.training and count_parameters(loaded) == count_parameters(model)
    for (k, a), (k2, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert k == k2 and torch.equal(a, b)
    x = torch.randn(*SHAPE)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))


def test_onnx_matches_pytorch(exported):
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime not installed: ONNX output not checked")
    model, _, paths = exported
    sess = ort.InferenceSession(str(paths["onnx"]), providers=["CPUExecutionProvider"])
    for batch in (1, 5):  # dynamic batch axis
        x = torch.randn(batch, *SHAPE[1:])
        got = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
        want = _streamed(x, model).numpy()
        assert got.shape == want.shape
        assert abs(got - want).max() <= 1e-4 * max(1.0, abs(want).max())


def test_torchscript_matches_pytorch(exported):
    model, _, paths = exported
    ts = torch.jit.load(str(paths["torchscript"]))
    x = torch.randn(3, *SHAPE[1:])
    with torch.no_grad():
        torch.testing.assert_close(ts(x), _streamed(x, model), rtol=1e-5, atol=1e-5)


def test_export_refuses_a_file_as_folder_and_unknown_formats(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(NotADirectoryError, match="is a file"):
        export_backbone(_calibrated_model(), tmp_path / "f", card=CARD, formats=("safetensors",))
    with pytest.raises(ValueError, match="unknown export formats"):
        export_backbone(_calibrated_model(), tmp_path / "o", card=CARD, formats=("tflite",))


def test_stale_formats_are_removed(tmp_path, exported):
    """Re-exporting without ONNX must not leave an older model.onnx beside the new weights."""
    model, _, _ = exported
    out = tmp_path / "again"
    export_backbone(model, out, card=CARD, formats=("safetensors", "torchscript"))
    (out / "model.onnx").write_bytes(b"old graph")
    export_backbone(model, out, card=CARD, formats=("safetensors",))
    assert sorted(p.name for p in out.iterdir()) == ["model.json", "model.safetensors"]
