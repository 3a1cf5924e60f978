"""Inference latency and throughput of NTU-120 CTR-GCN on this CPU, relative to the official code.

Why: mmcl claims its CTR-GCN computes the same function as the official implementation
(Uason-Chen/CTR-GCN) while being faster to run, and offers bf16 autocast, TorchScript and ONNX as
deployment routes. This script measures all of them in one process on the same weights and input,
so the ratios in the table are comparable:

- ``official``: the official ``model.ctrgcn.Model``, eager fp32, weights loaded from mmcl's model
  through :func:`mmcl.checkpoints.reference_state_dict` (official key names);
- ``mmcl-fp32``: mmcl's CTR-GCN, eager fp32 under ``torch.inference_mode()``;
- ``mmcl-bf16``: the same under ``torch.autocast("cpu", dtype=torch.bfloat16)``;
- ``torchscript``: the file ``mmcl.export.export_backbone`` writes (traced), loaded as
  ``mmcl predict --runtime torchscript`` loads it; ``torchscript-opt``: that module after ``torch.jit.optimize_for_inference``
  (which freezes it first);
- ``onnxruntime``: the ``model.onnx`` the exporter writes (input ``x``, dynamic batch), on
  ``CPUExecutionProvider`` with graph optimisation level ALL.

Before any timing, every fp32 path's output is checked against mmcl eager fp32 (max |Δ logit| <
``FP32_TOLERANCE``) at both batch sizes; bf16's deviation is reported, not asserted. BatchNorm
running statistics are first calibrated on random input so logits have a trained model's scale
(O(1..10)): with the init statistics they reach ~1e3, where fp32 rounding alone approaches the
tolerance. Weights do not change the cost of any path (dense ops only).

Timing: batch-1 latency (median, p90) and batch-``--batch`` throughput. Paths are interleaved:
``ROUNDS`` rounds, each giving every path (in rotated order) one un-timed call, to settle caches and
thread pools after the switch, then its share of the timed calls; so load from other processes and
thermal drift hit all paths alike.

The official code is not vendored; how to get it: ``benchmarks/official_code.py``.

The C allocator matters at batch 64 (see :mod:`mmcl.memory`): ``--allocator tuned`` applies the
setting the mmcl CLI uses; run both to compare (the setting is process-wide, so the official row
of a tuned run gets it too).

Usage (run it alone on the machine; other load skews the numbers)::

    python benchmarks/inference_latency.py --official /work/official/CTR-GCN
    python benchmarks/inference_latency.py --official /work/official/CTR-GCN --allocator tuned --out benchmarks/results/inference_latency_tuned.json
    MMCL_OFFICIAL_CTRGCN=/work/official/CTR-GCN python benchmarks/inference_latency.py --threads 2
    python benchmarks/inference_latency.py --official /work/official/CTR-GCN --quick   # smoke run

Prints a Markdown table and writes ``benchmarks/results/inference_latency.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

import mmcl.models
from mmcl.checkpoints import ModelCard, reference_state_dict
from mmcl.formats.checkpoint_file import load_torchscript
from mmcl.datasets.pipeline import InputSpec
from mmcl.export import export_backbone
from mmcl.io import atomic_write_text
from mmcl.memory import keep_freed_memory
from official_code import OFFICIAL_ENV, official_model, resolve_official_dir  # benchmarks/official_code.py

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "inference_latency.json"

# NTU RGB+D 120 as the official config (config/nturgbd120-cross-subject/default.yaml) and
# mmcl's configs/ntu120_xsub.yaml set it: 120 classes, 25 Kinect v2 joints, 2 persons, xyz
# channels, 64-frame windows.
NUM_CLASSES = 120
LAYOUT = "ntu25"
NUM_JOINTS = 25
NUM_PERSONS = 2
IN_CHANNELS = 3
WINDOW = 64
SAMPLE_SHAPE = (IN_CHANNELS, WINDOW, NUM_JOINTS, NUM_PERSONS)  # C×T×V×M, the input is N×C×T×V×M

FP32_TOLERANCE = 1e-3  # max |Δ logit| allowed between fp32 paths (same weights, same input)
ROUNDS = 5  # interleaving rounds (see module docstring)
BN_CALIBRATION_BATCHES = 4
BN_CALIBRATION_BATCH_SIZE = 4
QUICK = {"repeats": 5, "warmup": 3, "batch_repeats": 1, "batch_warmup": 1}


@dataclass
class BenchPath:
    """One inference route: ``run`` takes the prepared input of ``prepare`` and returns logits."""

    name: str
    description: str
    run: Callable[[Any], Any]
    prepare: Callable[[torch.Tensor], Any] = lambda x: x
    fp32: bool = True  # outputs must match eager fp32 within FP32_TOLERANCE
    times: dict[int, list[float]] = field(default_factory=dict)  # batch size -> seconds per call
    checks: dict[int, dict[str, float]] = field(default_factory=dict)


def to_tensor(out: Any) -> torch.Tensor:
    if isinstance(out, (list, tuple)):
        out = out[0]
    return torch.as_tensor(out).float()


def torch_runner(model: nn.Module, *, bf16: bool = False) -> Callable[[torch.Tensor], torch.Tensor]:
    def run(x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            return model(x)

    return run


def calibrate_batchnorm(model: nn.Module, generator: torch.Generator) -> None:
    """Replace init BN statistics (mean 0, var 1) by the cumulative average over random inputs."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative moving average
    model.train()
    with torch.no_grad():
        for _ in range(BN_CALIBRATION_BATCHES):
            model(torch.randn((BN_CALIBRATION_BATCH_SIZE, *SAMPLE_SHAPE), generator=generator))
    for bn in bns:
        bn.momentum = 0.1
    model.eval()


def build_official(official_dir: Path, state_dict: dict[str, torch.Tensor]) -> nn.Module:
    """The official Model for NTU-120, with mmcl's weights under official key names."""
    official = official_model(official_dir, num_class=NUM_CLASSES, num_point=NUM_JOINTS, num_person=NUM_PERSONS,
                              layout=LAYOUT, in_channels=IN_CHANNELS)
    official.load_state_dict(state_dict, strict=True)
    return official.eval()


def export_artefacts(model: nn.Module, out_dir: Path, notes: list[str]) -> dict[str, Path]:
    """TorchScript and ONNX files written by mmcl's exporter: the artefacts users deploy."""
    card = ModelCard("ctrgcn", NUM_CLASSES, InputSpec(LAYOUT, NUM_PERSONS, IN_CHANNELS, window=WINDOW))  # joint stream
    start = time.perf_counter()
    got = export_backbone(model, out_dir, card=card, formats=("safetensors", "onnx", "torchscript"))
    info = json.loads((out_dir / "model.json").read_text())
    notes.append(f"artefacts from mmcl.export.export_backbone in {time.perf_counter() - start:.1f} s "
                 f"(onnx exporter: {info['onnx_exporter']}, opset {info['onnx_opset']})")
    return {"torchscript": Path(got["torchscript"]), "onnx": Path(got["onnx"])}


def onnxruntime_path(onnx_file: Path) -> tuple[BenchPath, str]:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = torch.get_num_threads()
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    session = ort.InferenceSession(str(onnx_file), opts, providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    path = BenchPath(
        name="onnxruntime",
        description=f"model.onnx on onnxruntime {ort.__version__} CPUExecutionProvider, ORT_ENABLE_ALL, "
                    f"{opts.intra_op_num_threads} intra-op threads",
        run=lambda x: session.run(None, {input_name: x})[0],
        prepare=lambda x: x.numpy(),
    )
    return path, ort.__version__


def build_paths(official_dir: Path | None, work_dir: Path, notes: list[str]) -> tuple[list[BenchPath], dict[str, Any]]:
    torch.manual_seed(0)
    model = mmcl.models.build_backbone("ctrgcn", num_classes=NUM_CLASSES, layout=LAYOUT, num_persons=NUM_PERSONS,
                                       in_channels=IN_CHANNELS)
    calibrate_batchnorm(model, torch.Generator().manual_seed(1))
    paths: list[BenchPath] = []
    extra: dict[str, Any] = {"parameters": sum(p.numel() for p in model.parameters())}
    if official_dir is not None:
        official = build_official(official_dir, reference_state_dict(model))
        paths.append(BenchPath("official", f"official model.ctrgcn.Model ({official_dir}), eager fp32",
                               torch_runner(official)))
    paths.append(BenchPath("mmcl-fp32", "mmcl CTR-GCN, eager fp32, inference_mode", torch_runner(model)))
    paths.append(BenchPath("mmcl-bf16", "mmcl CTR-GCN, eager, autocast(cpu, bfloat16)", torch_runner(model, bf16=True),
                           fp32=False))
    files = export_artefacts(model, work_dir, notes)
    if files["torchscript"] is not None:
        warnings.filterwarnings("ignore", message=r"`torch\.jit", category=FutureWarning)  # "deprecated"
        scripted = load_torchscript(files["torchscript"])
        paths.append(BenchPath("torchscript", f"{files['torchscript'].name} (torch.jit.trace) via torch.jit.load",
                               torch_runner(scripted)))
        try:
            optimized = torch.jit.optimize_for_inference(torch.jit.freeze(load_torchscript(files["torchscript"])))
            paths.append(BenchPath("torchscript-opt", "the same after torch.jit.freeze + optimize_for_inference",
                                   torch_runner(optimized)))
        except Exception as exc:  # noqa: BLE001 - an optional row
            notes.append(f"torchscript-opt skipped: {type(exc).__name__}: {exc}")
    if files["onnx"] is not None:
        ort_path, extra["onnxruntime"] = onnxruntime_path(files["onnx"])
        paths.append(ort_path)
    return paths, extra


def check_outputs(paths: list[BenchPath], inputs: dict[str, Any], batch: int) -> None:
    """Compare every path with mmcl eager fp32 on the same input; raise on an fp32 mismatch."""
    reference = to_tensor(next(p for p in paths if p.name == "mmcl-fp32").run(inputs["mmcl-fp32"]))
    failures = []
    for p in paths:
        out = to_tensor(p.run(inputs[p.name]))
        diff = (out - reference).abs().max().item()
        agree = (out.argmax(-1) == reference.argmax(-1)).float().mean().item()
        p.checks[batch] = {"max_abs_diff": diff, "top1_agreement": agree, "max_abs_logit": reference.abs().max().item()}
        verdict = ("ok" if diff < FP32_TOLERANCE else "FAIL") if p.fp32 else "info"
        print(f"  check batch {batch:>3} {p.name:<16} max|Δ logit| vs mmcl-fp32 {diff:.2e}  "
              f"top-1 agreement {agree:.0%}  [{verdict}]", flush=True)
        if p.fp32 and not diff < FP32_TOLERANCE:
            failures.append(f"{p.name} (batch {batch}): {diff:.3e}")
    if failures:
        raise SystemExit(f"outputs disagree beyond {FP32_TOLERANCE}: " + ", ".join(failures))


def measure(paths: list[BenchPath], batch: int, *, repeats: int, warmup: int, generator: torch.Generator) -> None:
    """Warm each path, check outputs, then time ``repeats`` calls per path interleaved over rounds."""
    x = torch.randn((batch, *SAMPLE_SHAPE), generator=generator)
    inputs = {p.name: p.prepare(x) for p in paths}
    for p in paths:
        for _ in range(warmup):
            p.run(inputs[p.name])
    check_outputs(paths, inputs, batch)
    rounds = max(1, min(ROUNDS, repeats))
    per_round = [repeats // rounds + (1 if r < repeats % rounds else 0) for r in range(rounds)]
    for p in paths:
        p.times[batch] = []
    for r in range(rounds):
        order = paths[r % len(paths):] + paths[: r % len(paths)]
        for p in order:
            if batch == 1:
                p.run(inputs[p.name])  # un-timed: settle caches and thread pools after the switch
            for _ in range(per_round[r]):
                start = time.perf_counter()
                p.run(inputs[p.name])
                p.times[batch].append(time.perf_counter() - start)


def machine_info(ort_version: str | None) -> dict[str, Any]:
    model_name = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model_name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "platform": platform.platform(),
        "processor": platform.processor(),
        "cpu_model": model_name,
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "onnxruntime": ort_version,
        "load_average": list(os.getloadavg()),
    }


def summarise(paths: list[BenchPath], batch: int) -> list[dict[str, Any]]:
    rows = []
    for p in paths:
        b1 = np.array(p.times[1]) * 1000
        bn = np.array(p.times[batch])
        rows.append({
            "path": p.name,
            "description": p.description,
            "bs1_median_ms": float(np.median(b1)),
            "bs1_p90_ms": float(np.percentile(b1, 90)),
            f"bs{batch}_samples_per_s": float(batch / np.median(bn)),
            "bs1_times_ms": [round(float(t), 3) for t in b1],
            f"bs{batch}_times_s": [round(float(t), 4) for t in bn],
            "checks": {str(k): v for k, v in p.checks.items()},
        })
    official = next((r for r in rows if r["path"] == "official"), None)
    for r in rows:
        r["bs1_x_official"] = official["bs1_median_ms"] / r["bs1_median_ms"] if official else None
        r[f"bs{batch}_x_official"] = (r[f"bs{batch}_samples_per_s"] / official[f"bs{batch}_samples_per_s"]
                                      if official else None)
    return rows


def markdown_table(rows: list[dict[str, Any]], batch: int) -> str:
    def ratio(v: float | None) -> str:
        return "–" if v is None else f"{v:.2f}×"

    lines = [f"| path | batch-1 median ms | p90 ms | ×official | batch-{batch} samples/s | ×official |",
             "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['path']} | {r['bs1_median_ms']:.1f} | {r['bs1_p90_ms']:.1f} | {ratio(r['bs1_x_official'])} "
                     f"| {r[f'bs{batch}_samples_per_s']:.1f} | {ratio(r[f'bs{batch}_x_official'])} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--official", default=None,
                        help=f"folder with the official CTR-GCN's model/ and graph/ (default: ${OFFICIAL_ENV})")
    parser.add_argument("--repeats", type=int, default=50, help="timed batch-1 calls per path")
    parser.add_argument("--warmup", type=int, default=10, help="un-timed batch-1 calls per path first")
    parser.add_argument("--batch", type=int, default=64, help="batch size of the throughput measurement")
    parser.add_argument("--batch-repeats", type=int, default=5)
    parser.add_argument("--batch-warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0 = all cores)")
    parser.add_argument("--allocator", choices=["default", "tuned"], default="default",
                        help="tuned: mmcl.memory.keep_freed_memory() as the mmcl CLI does (process-wide, so every row gets it)")
    parser.add_argument("--quick", action="store_true", help="smoke run: " + ", ".join(f"{k}={v}" for k, v in QUICK.items()))
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="JSON results file")
    args = parser.parse_args()
    if args.quick:
        for key, value in QUICK.items():
            setattr(args, key, value)
    if args.allocator == "tuned" and not keep_freed_memory():
        raise SystemExit("--allocator tuned needs glibc (Linux)")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    torch.set_num_threads(args.threads or cores)

    official_dir = resolve_official_dir(args.official)
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="mmcl-infer-bench-") as work:
        paths, extra = build_paths(official_dir, Path(work), notes)
        machine = machine_info(extra.get("onnxruntime"))
        print("machine: " + ", ".join(f"{k}={v}" for k, v in machine.items()))
        for note in notes:
            print(f"note: {note}")
        print(f"input N×{'×'.join(map(str, SAMPLE_SHAPE))}, {extra['parameters']:,} parameters; "
              f"batch 1: {args.warmup} warm-up + {args.repeats} timed, batch {args.batch}: "
              f"{args.batch_warmup} warm-up + {args.batch_repeats} timed calls per path", flush=True)
        generator = torch.Generator().manual_seed(2)
        start = time.perf_counter()
        measure(paths, 1, repeats=args.repeats, warmup=args.warmup, generator=generator)
        measure(paths, args.batch, repeats=args.batch_repeats, warmup=args.batch_warmup, generator=generator)
        elapsed = time.perf_counter() - start
    rows = summarise(paths, args.batch)
    table = markdown_table(rows, args.batch)
    print()
    print(table)
    print("\n×official: official time / path time (batch 1) or path / official samples/s; > 1 = faster.")
    result = {
        "benchmark": "inference_latency",
        "model": {"backbone": "ctrgcn", "num_classes": NUM_CLASSES, "layout": LAYOUT, "num_persons": NUM_PERSONS,
                  "input_shape": ["N", *SAMPLE_SHAPE], "parameters": extra["parameters"]},
        "settings": {k: getattr(args, k) for k in ("repeats", "warmup", "batch", "batch_repeats", "batch_warmup",
                                                   "threads", "quick", "allocator")}
                    | {"rounds": ROUNDS, "fp32_tolerance": FP32_TOLERANCE,
                       "official_dir": str(official_dir) if official_dir else None,
                       "measure_seconds": round(elapsed, 1)},
        "machine": machine | {"load_average_end": list(os.getloadavg())},
        "notes": notes,
        "table_markdown": table,
        "rows": rows,
    }
    out = Path(args.out)
    atomic_write_text(out, json.dumps(result, indent=2) + "\n")
    print(f"\nwritten {out}")


if __name__ == "__main__":
    main()
