"""Does bf16 autocast cost accuracy? Paired fp32 / bf16 trainings, and fp32 / bf16 inference.

Two measurements, both with the real engine (`mmcl.training.fit.train` / `run_inference`):

1. Training: the demo's small CTR-GCN on the demo's synthetic NTU-25 world, trained once per seed
   in ``32-true`` and once in ``bf16-mixed`` (same seed, data, schedule); top-1 per run and the
   paired difference. Seeds differ in initialisation and sample order, so the spread across seeds
   is the yardstick the bf16 - fp32 difference must be read against.
2. Inference (optional, ``--checkpoint``): one trained checkpoint evaluated on a real test split in
   fp32 and under bf16 autocast: top-1 of each, prediction agreement, max |Δ logit|.

Usage::

    python benchmarks/precision_accuracy.py --seeds 0 1 2
    python benchmarks/precision_accuracy.py --seeds 0 1 2 --checkpoint runs/nwucla_cpu_joint/checkpoints/last.ckpt \\
        --config configs/nwucla_cpu.yaml --data ../shared/data/nw-ucla/all_sqe

Prints a table and writes ``benchmarks/results/precision_accuracy.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mmcl.demo import DEMO_EPOCHS, DEMO_PER_CLASS, demo_config, prepare_demo_data
from mmcl.training.fit import train

ROOT = Path(__file__).resolve().parents[1]
PRECISIONS = ("32-true", "bf16-mixed")


def training_comparison(seeds: list[int], epochs: int, per_class: int, work: Path) -> list[dict[str, Any]]:
    rows = []
    data_root = work / "data"
    train_data, _ = prepare_demo_data(data_root, per_class=per_class, seed=0)  # one dataset; seeds vary the training
    for seed in seeds:
        row: dict[str, Any] = {"seed": seed}
        for precision in PRECISIONS:
            cfg = demo_config(data_root, work / f"s{seed}_{precision}", num_classes=train_data.num_classes, epochs=epochs, seed=seed)
            cfg.trainer.precision, cfg.trainer.progress = precision, False
            start = time.time()
            result = train(cfg)
            row[precision] = {"top1": result["test"]["top1"], "seconds": round(time.time() - start, 1)}
            print(f"seed {seed} {precision:>10}: top-1 {100 * result['test']['top1']:.2f}%", flush=True)
        rows.append(row)
    return rows


def inference_comparison(config: str, data: str, checkpoint: str) -> dict[str, Any]:
    from mmcl.checkpoints import open_checkpoint
    from mmcl.config import load_config
    from mmcl.results.evaluation import build_eval_dataset, eval_loader, run_inference

    cfg = load_config(config, overrides=[f"data.path={data}"])
    opened = open_checkpoint(checkpoint, config=cfg)
    cfg = opened.card.apply_to_config(cfg)  # the checkpoint's stream and input, whatever the config says
    backbone = opened.build_model()
    dataset = build_eval_dataset(cfg)
    out = {}
    for precision in PRECISIONS:
        cfg.trainer.precision = precision
        out[precision] = run_inference(backbone, eval_loader(cfg, dataset), cfg)
    a, b = out["32-true"], out["bf16-mixed"]
    pa, pb = a["scores"].argmax(1), b["scores"].argmax(1)
    return {
        "checkpoint": checkpoint,
        "stream": cfg.data.stream,
        "num_samples": int(len(pa)),
        "top1_fp32": float((pa == a["labels"]).mean()),
        "top1_bf16": float((pb == b["labels"]).mean()),
        "prediction_agreement": float((pa == pb).mean()),
        "max_abs_logit_diff": float(np.abs(a["scores"] - b["scores"]).max()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=DEMO_EPOCHS)
    parser.add_argument("--per-class", type=int, default=DEMO_PER_CLASS)
    parser.add_argument("--checkpoint", help="also compare fp32 / bf16 inference of this checkpoint")
    parser.add_argument("--config", help="config of --checkpoint")
    parser.add_argument("--data", help="dataset path of --checkpoint")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "precision_accuracy.json"))
    args = parser.parse_args()

    report: dict[str, Any] = {"machine": platform.processor() or platform.machine(), "torch": torch.__version__,
                              "threads": torch.get_num_threads(), "epochs": args.epochs, "per_class": args.per_class}
    if args.checkpoint:
        if not (args.config and args.data):
            parser.error("--checkpoint needs --config and --data")
        inf = inference_comparison(args.config, args.data, args.checkpoint)
        report["inference"] = inf
        print(f"\ninference ({inf['stream']}, {inf['num_samples']} test samples): fp32 {100 * inf['top1_fp32']:.2f}%  "
              f"bf16 {100 * inf['top1_bf16']:.2f}%  agreement {100 * inf['prediction_agreement']:.2f}%  "
              f"max |dlogit| {inf['max_abs_logit_diff']:.3g}\n", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        rows = training_comparison(args.seeds, args.epochs, args.per_class, Path(tmp))
    report["training"] = rows
    diffs = [r["bf16-mixed"]["top1"] - r["32-true"]["top1"] for r in rows]
    print(f"\n{'seed':>6} {'fp32 top-1':>11} {'bf16 top-1':>11} {'bf16-fp32':>10}")
    for r, d in zip(rows, diffs):
        print(f"{r['seed']:>6} {100 * r['32-true']['top1']:>10.2f}% {100 * r['bf16-mixed']['top1']:>10.2f}% {100 * d:>+9.2f}")
    for precision in PRECISIONS:
        accs = [r[precision]["top1"] for r in rows]
        report[f"mean_top1_{precision}"] = statistics.mean(accs)
        report[f"std_top1_{precision}"] = statistics.stdev(accs) if len(accs) > 1 else 0.0
    report["mean_diff"] = statistics.mean(diffs)
    print(f"{'mean':>6} {100 * report['mean_top1_32-true']:>10.2f}% {100 * report['mean_top1_bf16-mixed']:>10.2f}% "
          f"{100 * report['mean_diff']:>+9.2f}   (std across seeds: fp32 {100 * report['std_top1_32-true']:.2f}, "
          f"bf16 {100 * report['std_top1_bf16-mixed']:.2f})")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2))
    print(f"\nwritten {args.out}")


if __name__ == "__main__":
    main()
