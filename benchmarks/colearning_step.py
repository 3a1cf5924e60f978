"""Cost of one MMCL training step against a plain backbone step (FAM frozen / trainable, FRM).

Each variant runs the real modules: the CTR-GCN backbone, :class:`mmcl.colearning.CoLearningHeads`
(alignment MLP + contrastive loss, FRM refinement + its loss) and, in trainable mode, the
torchvision CNN fine-tuned inside the step on composites of the reference size (3×299×747).

- ``plain``: CE on the backbone's logits (what `mmcl train` does with co-learning off);
- ``mmcl-frozen``: FAM on cached CNN features (1000-d Inception logits) + FRM on BLIP answer ids;
- ``mmcl-trainable``: FAM with Inception-v3 (random init here; weights do not change the cost) run
  and fine-tuned in the step, + FRM — the reference's way.

Usage::

    python benchmarks/colearning_step.py --config configs/ntu120_xsub.yaml --batch-size 16
    python benchmarks/colearning_step.py --config configs/nwucla.yaml --batch-size 16 --skip-trainable

Prints a table (ms per step, samples/s, ratio to ``plain``) and writes
``benchmarks/results/colearning_step_<config>.json``. Target of the issue: frozen ≤ 1.15× plain.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch

from mmcl.colearning.objective import FAMConfig, FRMConfig, build_colearning_heads
from mmcl.config import load_config
from mmcl.checkpoints import ModelCard
from mmcl.skeleton.layouts import get_layout
from mmcl.training.module import training_loss

ROOT = Path(__file__).resolve().parents[1]
RGB_DIM = 1000  # Inception-v3 logits, the reference's RGB feature (REFERENCE §7.2)
IMAGE_HW = (299, 747)  # 800×320 composites with the shorter side resized to 299 (REFERENCE §7.2)


def build(variant: str, cfg):
    torch.manual_seed(0)
    backbone = ModelCard.from_config(cfg).build()
    if variant == "plain":
        return backbone, None
    fam = FAMConfig(mode="frozen", rgb_dim=RGB_DIM) if variant == "mmcl-frozen" else FAMConfig(
        mode="trainable", encoder="inception_v3", allow_random=True)
    heads = build_colearning_heads(backbone.feature_dim, cfg.data.num_classes, fam=fam,
                                   frm=FRMConfig(text_dim=3, kind="answer_ids"))
    return backbone, heads


def make_batch(variant: str, cfg, n: int) -> dict[str, torch.Tensor]:
    v = get_layout(cfg.data.layout).num_joints
    batch = {
        "x": torch.randn(n, cfg.model.in_channels, cfg.data.window, v, cfg.data.num_persons),
        "label": torch.randint(0, cfg.data.num_classes, (n,)),
    }
    if variant == "mmcl-frozen":
        batch["rgb_feature"] = torch.randn(n, RGB_DIM)
    if variant == "mmcl-trainable":
        batch["rgb"] = torch.randn(n, 3, *IMAGE_HW)
    if variant != "plain":
        batch["has_rgb"] = torch.ones(n, dtype=torch.bool)
        batch["text"] = torch.tensor([[30522.0, 2748.0, 102.0]]).repeat(n, 1).unsqueeze(-1)  # [DEC] yes [SEP]
        batch["text_mask"] = torch.ones(n, 3, dtype=torch.bool)
        batch["has_text"] = torch.ones(n, dtype=torch.bool)
    return batch


def time_steps(backbone, heads, batch, *, steps: int, warmup: int, bf16: bool) -> list[float]:
    params = list(backbone.parameters()) + (list(heads.parameters()) if heads is not None else [])
    opt = torch.optim.SGD([p for p in params if p.requires_grad], lr=0.01, momentum=0.9, nesterov=True, weight_decay=4e-4)
    backbone.train()
    if heads is not None:
        heads.train()
    times = []
    for i in range(warmup + steps):
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            features = backbone.forward_features(batch["x"])
            loss, _ = training_loss(features, backbone.classify(features), batch, heads)  # the module's objective
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(ROOT / "configs" / "ntu120_xsub.yaml"))
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast for every variant")
    parser.add_argument("--skip-trainable", action="store_true", help="skip the (slow) trainable-CNN variant")
    parser.add_argument("--trainable-steps", type=int, default=2, help="timed steps of the trainable variant (slow on a CPU)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    cfg = load_config(args.config)
    variants = ["plain", "mmcl-frozen"] + ([] if args.skip_trainable else ["mmcl-trainable"])
    rows = []
    for variant in variants:
        backbone, heads = build(variant, cfg)
        batch = make_batch(variant, cfg, args.batch_size)
        steps, warmup = (args.trainable_steps, 1) if variant == "mmcl-trainable" else (args.steps, args.warmup)
        t = statistics.median(time_steps(backbone, heads, batch, steps=steps, warmup=warmup, bf16=args.bf16))
        rows.append({"variant": variant, "step_ms": 1000 * t, "samples_per_s": args.batch_size / t})
        print(f"{variant:<16} {1000 * t:9.1f} ms/step  {args.batch_size / t:7.1f} samples/s", flush=True)
    base = rows[0]["step_ms"]
    print(f"\n{'variant':<16}{'ms/step':>10}{'samples/s':>11}{'vs plain':>10}")
    for r in rows:
        r["ratio_vs_plain"] = r["step_ms"] / base
        print(f"{r['variant']:<16}{r['step_ms']:>10.1f}{r['samples_per_s']:>11.1f}{r['ratio_vs_plain']:>9.2f}x")
    result = {
        "config": args.config, "batch_size": args.batch_size, "bf16": args.bf16,
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch": torch.__version__,
                    "threads": torch.get_num_threads(), "load_average": os.getloadavg()},
        "rows": rows,
    }
    out = Path(args.out or ROOT / "benchmarks" / "results" / f"colearning_step_{Path(args.config).stem}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"\nwritten {out}")


if __name__ == "__main__":
    main()
