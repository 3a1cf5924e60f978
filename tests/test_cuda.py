"""CUDA checks, run where a GPU is present (skipped elsewhere; CI has none).

- every backbone computes on CUDA what it computes on the CPU (float64: same math, not close math);
- the official CTR-GCN and HD-GCN code itself -- HD-GCN's runs on CUDA only, so the CPU tests compare
  against a literal transcription -- gives our outputs and gradients from the same weights
  (needs ``MMCL_OFFICIAL_CTRGCN`` / ``MMCL_OFFICIAL_HDGCN``: ``benchmarks/official_code.py``);
- bf16 autocast on CUDA tracks float32;
- a model trained on the GPU (bf16, weight EMA, data workers) evaluates and predicts the same on the
  CPU as on the GPU, from its checkpoint.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from mmcl.checkpoints.official import load_reference_state_dict, official_key
from mmcl.models import build_backbone
from mmcl.predict import load_model, predict_arrays
from mmcl.results.evaluation import evaluate
from mmcl.training.fit import train

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from official_code import OFFICIAL_ENVS, official_model  # noqa: E402  (benchmarks/official_code.py)
from test_engine import tiny_config, tiny_data  # noqa: E402,F401  (the engine tests' tiny benchmark)

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
CUDA = torch.device("cuda")


@pytest.fixture(autouse=True)
def no_tf32() -> Iterator[None]:
    """TF32 would turn float32 products into 10-bit-mantissa ones and hide real differences."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def _perturb(model: torch.nn.Module, seed: int = 3) -> None:
    """Non-trivial BN statistics and affine parameters, so eval mode tests more than identity BNs."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                m.running_mean.copy_(0.1 * torch.randn(m.running_mean.shape, generator=g))
                m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=g))
                m.weight.copy_(1.0 + 0.2 * torch.randn(m.weight.shape, generator=g))
                m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=g))


def _same_step(a: torch.nn.Module, b: torch.nn.Module, x_a: torch.Tensor, x_b: torch.Tensor, key=lambda k: k) -> None:
    """Eval outputs, training outputs and every gradient of ``b`` equal ``a``'s (float64 tolerances)."""
    with torch.no_grad():
        ya, yb = a.eval()(x_a), b.eval()(x_b)
    torch.testing.assert_close(yb.cpu(), ya.cpu(), rtol=1e-9, atol=1e-9 * float(ya.abs().max()))
    ya, yb = a.train()(x_a), b.train()(x_b)
    torch.testing.assert_close(yb.detach().cpu(), ya.detach().cpu(), rtol=1e-9, atol=1e-9 * float(ya.detach().abs().max()))
    (ya**2).sum().backward()
    (yb**2).sum().backward()
    grads_a = {k: p.grad for k, p in a.named_parameters()}
    scale = max(float(g.abs().max()) for g in grads_a.values())
    for name, p in b.named_parameters():
        torch.testing.assert_close(p.grad.cpu(), grads_a[key(name)].cpu(), rtol=1e-7, atol=1e-9 * scale, msg=name)


BACKBONES = [
    pytest.param("ctrgcn", "kinect20", 1, id="ctrgcn-ucla"),
    pytest.param("ctrs-gcn", "ntu25", 2, id="ctrs-gcn-ntu"),
    pytest.param("hdgcn", "kinect20", 1, id="hdgcn-ucla"),
    pytest.param("hdgcn", "ntu25", 2, id="hdgcn-ntu"),
]


@pytest.mark.parametrize("name, layout, persons", BACKBONES)
def test_cuda_computes_what_the_cpu_computes(name: str, layout: str, persons: int) -> None:
    torch.manual_seed(0)
    cpu = build_backbone(name, num_classes=10, layout=layout, num_persons=persons)
    _perturb(cpu)
    gpu = build_backbone(name, num_classes=10, layout=layout, num_persons=persons)
    gpu.load_state_dict(cpu.state_dict())
    cpu, gpu = cpu.double(), gpu.double().to(CUDA)
    joints = 20 if layout == "kinect20" else 25
    x = torch.randn(3, 3, 24, joints, persons, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    _same_step(cpu, gpu, x, x.to(CUDA))


OFFICIAL = [
    pytest.param("ctrgcn", "ntu25", 2, None, id="ctrgcn-ntu"),
    pytest.param("ctrgcn", "kinect20", 1, None, id="ctrgcn-ucla"),
    pytest.param("hdgcn", "ntu25", 2, 21, id="hdgcn-com21"),
    pytest.param("hdgcn", "ntu25", 2, 1, id="hdgcn-com1"),
    pytest.param("hdgcn", "ntu25", 2, 2, id="hdgcn-com2"),
]


@pytest.mark.parametrize("name, layout, persons, com", OFFICIAL)
def test_same_function_as_the_official_code(name: str, layout: str, persons: int, com: int | None) -> None:
    folder = os.environ.get(OFFICIAL_ENVS[name])
    if not folder:
        pytest.skip(f"set {OFFICIAL_ENVS[name]} to the official code (benchmarks/official_code.py)")
    joints = 20 if layout == "kinect20" else 25
    torch.manual_seed(0)
    official = official_model(Path(folder), num_class=10, num_point=joints, num_person=persons, layout=layout,
                              backbone=name, com=com or 21)
    _perturb(official)
    ours = build_backbone(name, num_classes=10, layout=layout, num_persons=persons, com=com)
    load_reference_state_dict(ours, official.state_dict())
    official, ours = official.double().to(CUDA), ours.double().to(CUDA)
    x = torch.randn(3, 3, 32, joints, persons, dtype=torch.float64, generator=torch.Generator().manual_seed(2)).to(CUDA)
    _same_step(official, ours, x, x, key=official_key)


@pytest.mark.parametrize("name", ["ctrgcn", "hdgcn"])
def test_bf16_autocast_on_cuda_tracks_float32(name: str) -> None:
    torch.manual_seed(0)
    model = build_backbone(name, num_classes=10, layout="kinect20", num_persons=1).to(CUDA).eval()
    x = torch.randn(8, 3, 52, 20, 1, generator=torch.Generator().manual_seed(4)).to(CUDA)
    with torch.no_grad():
        ref = model(x)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            low = model(x).float()
    assert float((low - ref).abs().max()) < 0.05 * float(ref.abs().max())
    assert (low.argmax(1) == ref.argmax(1)).float().mean() >= 0.75


def test_trained_on_the_gpu_predicts_the_same_on_the_cpu(tiny_data: Path, tmp_path: Path) -> None:
    cfg = tiny_config(tiny_data, tmp_path / "run", accelerator="gpu", precision="bf16-mixed", ema_decay=0.9,
                      final_checkpoint="last")
    cfg.data.num_workers = 2
    results = train(cfg)
    run = tmp_path / "run"
    assert results["test"]["num_samples"] > 0 and (run / "checkpoints" / "last.ckpt").is_file()
    assert json.loads((run / "env.json").read_text())["cuda"] == torch.cuda.get_device_name(0)
    scores = {}
    for accelerator in ("gpu", "cpu"):  # same checkpoint, fp32 evaluation on each device
        cfg.trainer.accelerator, cfg.trainer.precision = accelerator, "32-true"
        evaluate(cfg, run / "checkpoints" / "last.ckpt", out_dir=tmp_path / accelerator)
        with np.load(tmp_path / accelerator / "scores.npz", allow_pickle=False) as s:
            scores[accelerator] = (s["names"].tolist(), s["scores"])
    assert scores["gpu"][0] == scores["cpu"][0]
    np.testing.assert_allclose(scores["gpu"][1], scores["cpu"][1], rtol=1e-4, atol=1e-4 * np.abs(scores["cpu"][1]).max())
    # the predict path: the checkpoint's own card builds the model on either device
    x = np.random.default_rng(0).standard_normal((4, 3, cfg.data.window, 25, 1)).astype(np.float32)
    on_gpu = predict_arrays(load_model(run / "checkpoints" / "last.ckpt", device="cuda"), x)
    on_cpu = predict_arrays(load_model(run / "checkpoints" / "last.ckpt", device="cpu"), x)
    np.testing.assert_allclose(on_gpu, on_cpu, atol=1e-4)
