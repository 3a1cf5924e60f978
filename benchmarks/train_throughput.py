"""Training-step throughput and batch-1 inference latency of a config's model on this machine,
against the official code (CTR-GCN; HD-GCN on CUDA).

Measures the model step only (forward, cross-entropy, backward, SGD-Nesterov update) on random
inputs of the config's shape, so data loading (which runs in worker processes during training)
does not blur the comparison. Variants:

- ``official``: the official ``Model`` (github.com/Uason-Chen/CTR-GCN, github.com/Jho-Yonsei/HD-GCN; not
  vendored: see ``benchmarks/official_code.py``), built as its config for the layout does, fp32. The
  official HD-GCN runs on CUDA only, so on the CPU its baseline is
- ``transcription`` (``--backbone hdgcn``): the literal transcription of the official HD-GCN
  (``tests/reference_hdgcn.py``), fp32;
- ``mmcl``: mmcl's model (identical math: same parameters, same outputs to float rounding);
- ``mmcl-bf16``: the same under ``torch.autocast(bfloat16)`` (AVX-512 BF16 / AMX CPUs, GPUs);
- ``mmcl-compile`` / ``mmcl-compile-bf16``: ``torch.compile`` of the model.

Every variant starts from the same weights (mmcl's, loaded into the official model under the official
key names; ``max_abs_diff`` is each variant's largest eval-output difference from mmcl fp32 on one
batch, TF32 off), and the variants are interleaved over ``--rounds`` rounds so load from other
processes hits them alike; the figure is the median step. ``--device cuda`` times on the GPU
(synchronised steps).

Usage (alone on the machine)::

    python benchmarks/train_throughput.py --config configs/nwucla.yaml --official /work/official/CTR-GCN
    python benchmarks/train_throughput.py --config configs/ntu120_xsub.yaml --official /work/official/CTR-GCN --variants official mmcl mmcl-bf16
    python benchmarks/train_throughput.py --config configs/ntu120_xsub.yaml --backbone hdgcn --variants transcription mmcl mmcl-bf16
    python benchmarks/train_throughput.py --config configs/ntu120_xsub.yaml --backbone hdgcn --device cuda --official /work/official/HD-GCN --variants official transcription mmcl mmcl-bf16

Prints a table and writes ``benchmarks/results/train_throughput_<config>[_<backbone>][_cuda].json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from official_code import official_model, resolve_official_dir  # benchmarks/official_code.py

from mmcl.checkpoints import ModelCard, reference_state_dict
from mmcl.config import load_config
from mmcl.device import resolve_device
from mmcl.skeleton.layouts import get_layout

ROOT = Path(__file__).resolve().parents[1]
ALL_VARIANTS = ("official", "transcription", "mmcl", "mmcl-bf16", "mmcl-compile", "mmcl-compile-bf16")


def build(variant: str, cfg, official_dir: Path | None) -> torch.nn.Module:
    torch.manual_seed(0)
    card = ModelCard.from_config(cfg)
    model = card.build()
    if variant == "transcription":
        sys.path.insert(0, str(ROOT / "tests"))
        from reference_hdgcn import Model  # the literal HD-GCN transcription of the tests

        from mmcl.models import hierarchy_groups

        groups = [[j + 1 for j in g] for g in hierarchy_groups(cfg.data.layout, card.com)]
        literal = Model(num_class=cfg.data.num_classes, num_point=get_layout(cfg.data.layout).num_joints,
                        num_person=cfg.data.num_persons, groups_1based=groups, in_channels=cfg.model.in_channels)
        literal.load_state_dict(reference_state_dict(model), strict=True)
        return literal
    if variant != "official":
        return model
    official = official_model(official_dir, num_class=cfg.data.num_classes, num_point=get_layout(cfg.data.layout).num_joints,
                              num_person=cfg.data.num_persons, layout=cfg.data.layout, in_channels=cfg.model.in_channels,
                              backbone=cfg.model.backbone, com=card.com or 21)
    official.load_state_dict(reference_state_dict(model), strict=True)
    return official


def _clock(device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


def time_train(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, *, bf16: bool, compile_: bool, steps: int, warmup: int) -> list[float]:
    model.train()
    device = x.device
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=4e-4)
    forward = torch.compile(model) if compile_ else model
    times = []
    for i in range(warmup + steps):
        start = _clock(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            logits = forward(x)
        loss = F.cross_entropy(logits.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if i >= warmup:
            times.append(_clock(device) - start)
    return times


@torch.inference_mode()
def time_infer(model: torch.nn.Module, x: torch.Tensor, *, bf16: bool, repeats: int = 30) -> list[float]:
    model.eval()
    times = []
    for i in range(repeats + 5):
        start = _clock(x.device)
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=bf16):
            model(x)
        if i >= 5:
            times.append(_clock(x.device) - start)
    return times


@torch.inference_mode()
def max_abs_diff(models: dict[str, torch.nn.Module], x: torch.Tensor) -> dict[str, float]:
    """Each variant's largest eval-output difference from mmcl's fp32 model on ``x`` (before any
    training step, TF32 off): the variants compute the same function from the same weights."""
    tf32 = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        outs = {}
        for name, model in models.items():
            with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=name.endswith("bf16")):
                outs[name] = model.eval()(x).float()
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = tf32
    ref = outs.get("mmcl", next(iter(outs.values())))
    return {name: float((out - ref).abs().max()) for name, out in outs.items()} | {"scale": float(ref.abs().max())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(ROOT / "configs" / "ntu120_xsub.yaml"))
    parser.add_argument("--official", help="folder with the official code's model/ and graph/ (default: $MMCL_OFFICIAL_CTRGCN, HD-GCN: $MMCL_OFFICIAL_HDGCN)")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=4, help="timed training steps per variant and round")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds over the variants")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    parser.add_argument("--backbone", default=None, help="override model.backbone (ctrgcn, ctrs-gcn, hdgcn)")
    parser.add_argument("--variants", nargs="+", default=None, choices=ALL_VARIANTS)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = load_config(args.config)
    if args.backbone:
        cfg.model.backbone = args.backbone
    device = resolve_device(args.device)
    hd = cfg.model.backbone == "hdgcn"
    official_ok = not hd or device.type == "cuda"  # the official HD-GCN runs on CUDA only
    variants = args.variants or [v for v in ALL_VARIANTS if v != ("official" if hd and not official_ok else "transcription")]
    if "official" in variants and not official_ok:
        parser.error("the official HD-GCN runs on CUDA only: use --device cuda, or the 'transcription' baseline")
    if not hd and "transcription" in variants:
        parser.error("'transcription' is the HD-GCN baseline; CTR-GCN's is 'official'")
    official_dir = resolve_official_dir(args.official, cfg.data.layout, cfg.model.backbone) if "official" in variants else None
    variants = [v for v in variants if v != "official" or official_dir is not None]
    v = get_layout(cfg.data.layout).num_joints
    shape = (args.batch_size, cfg.model.in_channels, cfg.data.window, v, cfg.data.num_persons)
    torch.manual_seed(0)
    x = torch.randn(shape).to(device)
    y = torch.randint(0, cfg.data.num_classes, (args.batch_size,)).to(device)
    x1 = torch.randn((1,) + shape[1:]).to(device)
    models = {name: build(name, cfg, official_dir).to(device) for name in variants}
    diffs = max_abs_diff({n: m for n, m in models.items() if "compile" not in n}, x)
    train_t: dict[str, list[float]] = {name: [] for name in variants}
    infer_t: dict[str, list[float]] = {name: [] for name in variants}
    for r in range(args.rounds):
        for name in variants[r % len(variants):] + variants[: r % len(variants)]:  # rotated order
            bf16, compile_ = name.endswith("bf16"), "compile" in name
            warm = args.warmup + (2 if compile_ and r == 0 else 0)
            train_t[name] += time_train(models[name], x, y, bf16=bf16, compile_=compile_, steps=args.steps, warmup=warm)
            infer_t[name] += time_infer(torch.compile(models[name]) if compile_ else models[name], x1, bf16=bf16)
            print(f"round {r + 1} {name:<18} step {1000 * statistics.median(train_t[name]):8.1f} ms", flush=True)
    rows = []
    for name in variants:
        step = statistics.median(train_t[name])
        rows.append({
            "variant": name,
            "train_samples_per_s": args.batch_size / step,
            "train_step_ms": 1000 * step,
            "infer_bs1_ms": 1000 * statistics.median(infer_t[name]),
            "timed_steps": len(train_t[name]),
            "max_abs_diff_vs_mmcl_fp32": diffs.get(name),
        })
    base = next((r for r in rows if r["variant"] in ("official", "transcription")), rows[0])
    print()
    print(f"{'variant':<20}{'samples/s':>12}{'speed-up':>10}{'bs-1 ms':>10}{'max |diff|':>12}  (outputs up to {diffs['scale']:.3g})")
    for r in rows:
        r["speedup_vs_" + base["variant"]] = r["train_samples_per_s"] / base["train_samples_per_s"]
        diff = "" if r["max_abs_diff_vs_mmcl_fp32"] is None else f"{r['max_abs_diff_vs_mmcl_fp32']:.2e}"
        print(f"{r['variant']:<20}{r['train_samples_per_s']:>12.1f}{r['speedup_vs_' + base['variant']]:>9.2f}x{r['infer_bs1_ms']:>10.2f}{diff:>12}")
    result = {
        "config": args.config,
        "backbone": cfg.model.backbone,
        "input_shape": list(shape),
        "baseline": base["variant"],
        "max_abs_output": diffs["scale"],
        "device": str(device),
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "cpus": os.cpu_count(),
                    "threads": torch.get_num_threads(), "torch": torch.__version__,
                    "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
                    "load_average": os.getloadavg()},
        "rows": rows,
    }
    out = Path(args.out or ROOT / "benchmarks" / "results" / f"train_throughput_{Path(args.config).stem}{'_' + cfg.model.backbone if args.backbone else ''}{'_cuda' if device.type == 'cuda' else ''}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"\nwritten {out}")


if __name__ == "__main__":
    main()
