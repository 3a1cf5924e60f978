"""Skeleton-only export: safetensors round trip, ONNX and TorchScript give the PyTorch outputs."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from mmcl.export import export_backbone, load_exported_backbone
from mmcl.models import build_backbone, count_parameters

SHAPE = (2, 3, 16, 20, 1)
pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")


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
    paths = export_backbone(model, out, example_shape=SHAPE, meta={"dataset": "nw-ucla", "stream": "joint"})
    return model, out, paths


def test_files_and_json(exported):
    model, out, paths = exported
    assert set(paths) == {"safetensors", "json", "onnx", "torchscript"}
    assert all(p.is_file() and p.parent == out for p in paths.values())
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]
    info = json.loads(paths["json"].read_text())
    assert info["builder"] == {
        "name": "ctrgcn", "num_classes": 10, "layout": "kinect20", "num_persons": 1, "in_channels": 3, "drop_out": 0.0
    }
    assert info["meta"] == {"dataset": "nw-ucla", "stream": "joint"}
    assert info["parameters"] == count_parameters(model) == 1_426_892
    assert info["onnx_exporter"] in ("dynamo", "torchscript")


def test_safetensors_round_trip(exported):
    model, out, _ = exported
    loaded = load_exported_backbone(out)
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
        with torch.no_grad():
            want = model(x).numpy()
        assert got.shape == want.shape
        assert abs(got - want).max() <= 1e-4 * max(1.0, abs(want).max())


def test_torchscript_matches_pytorch(exported):
    model, _, paths = exported
    ts = torch.jit.load(str(paths["torchscript"]))
    x = torch.randn(3, *SHAPE[1:])
    with torch.no_grad():
        torch.testing.assert_close(ts(x), model(x), rtol=1e-5, atol=1e-5)


def test_export_requires_builder_args(tmp_path):
    with pytest.raises(ValueError, match="build_backbone"):
        export_backbone(nn.Linear(2, 2), tmp_path, example_shape=(1, 2), meta={})
