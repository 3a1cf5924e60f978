"""Training-step throughput and batch-1 inference latency of a config's model on this machine.

Measures the model step only (forward, cross-entropy, backward, SGD-Nesterov update) on random
inputs of the config's shape, so data loading (which runs in worker processes during training)
does not blur the comparison. Variants:

- ``literal``: a literal transcription of the official CTR-GCN module structure
  (``tests/reference_ctrgcn.py``), i.e. the reference's math *and* its way of computing it;
- ``mmcl``: mmcl's CTR-GCN (identical math: same parameters, same outputs to float rounding);
- ``mmcl-bf16``: the same under ``torch.autocast(bfloat16)`` (AVX-512 BF16 / AMX CPUs, GPUs);
- ``mmcl-compile`` / ``mmcl-compile-bf16``: ``torch.compile`` of the feature extractor.

Usage::

    python benchmarks/train_throughput.py --config configs/ntu120_xsub.yaml --batch-size 16
    python benchmarks/train_throughput.py --config configs/nwucla.yaml --batch-size 16 --variants literal mmcl mmcl-bf16

Prints a table and writes ``benchmarks/results/train_throughput_<config>.json``.
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the literal reference transcription lives with the tests

from mmcl.config import load_config  # noqa: E402
from mmcl.checkpoints import ModelCard  # noqa: E402
from mmcl.skeleton.layouts import get_layout  # noqa: E402

ALL_VARIANTS = ("literal", "mmcl", "mmcl-bf16", "mmcl-compile", "mmcl-compile-bf16")


def build(variant: str, cfg) -> torch.nn.Module:
    if variant == "literal":
        from reference_ctrgcn import OfficialCTRGCN

        return OfficialCTRGCN(num_class=cfg.data.num_classes, num_point=get_layout(cfg.data.layout).num_joints,
                              num_person=cfg.data.num_persons, in_channels=cfg.model.in_channels)
    return ModelCard.from_config(cfg).build()


def time_train(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, *, bf16: bool, compile_: bool, steps: int, warmup: int) -> list[float]:
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=4e-4)
    forward = torch.compile(model) if compile_ else model
    times = []
    for i in range(warmup + steps):
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = forward(x)
        loss = F.cross_entropy(logits.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return times


@torch.inference_mode()
def time_infer(model: torch.nn.Module, x: torch.Tensor, *, bf16: bool, repeats: int = 30) -> list[float]:
    model.eval()
    times = []
    for i in range(repeats + 5):
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            model(x)
        if i >= 5:
            times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(ROOT / "configs" / "ntu120_xsub.yaml"))
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    parser.add_argument("--variants", nargs="+", default=list(ALL_VARIANTS), choices=ALL_VARIANTS)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = load_config(args.config)
    v = get_layout(cfg.data.layout).num_joints
    shape = (args.batch_size, cfg.model.in_channels, cfg.data.window, v, cfg.data.num_persons)
    torch.manual_seed(0)
    x = torch.randn(shape)
    y = torch.randint(0, cfg.data.num_classes, (args.batch_size,))
    x1 = torch.randn((1,) + shape[1:])
    rows = []
    for variant in args.variants:
        bf16 = variant.endswith("bf16")
        compile_ = "compile" in variant
        torch.manual_seed(0)
        model = build(variant, cfg)
        train_t = time_train(model, x, y, bf16=bf16, compile_=compile_, steps=args.steps, warmup=args.warmup + (2 if compile_ else 0))
        infer_t = time_infer(torch.compile(model) if compile_ else model, x1, bf16=bf16)
        step = statistics.median(train_t)
        rows.append({
            "variant": variant,
            "train_samples_per_s": args.batch_size / step,
            "train_step_ms": 1000 * step,
            "infer_bs1_ms": 1000 * statistics.median(infer_t),
        })
        print(f"{variant:<20} train {rows[-1]['train_samples_per_s']:8.1f} samples/s   "
              f"step {rows[-1]['train_step_ms']:8.1f} ms   bs-1 inference {rows[-1]['infer_bs1_ms']:7.2f} ms", flush=True)
    base = next((r for r in rows if r["variant"] == "literal"), rows[0])
    print()
    print(f"{'variant':<20}{'samples/s':>12}{'speed-up':>10}{'bs-1 ms':>10}")
    for r in rows:
        r["speedup_vs_" + base["variant"]] = r["train_samples_per_s"] / base["train_samples_per_s"]
        print(f"{r['variant']:<20}{r['train_samples_per_s']:>12.1f}{r['speedup_vs_' + base['variant']]:>9.2f}x{r['infer_bs1_ms']:>10.2f}")
    result = {
        "config": args.config,
        "input_shape": list(shape),
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "cpus": os.cpu_count(),
                    "threads": torch.get_num_threads(), "torch": torch.__version__,
                    "load_average": os.getloadavg()},
        "rows": rows,
    }
    out = Path(args.out or ROOT / "benchmarks" / "results" / f"train_throughput_{Path(args.config).stem}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"\nwritten {out}")


if __name__ == "__main__":
    main()
