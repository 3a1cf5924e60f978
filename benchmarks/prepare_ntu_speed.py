"""Speed of NTU parsing + denoising (mmcl.prepare.ntu) versus a reference-style line-by-line parser.

Generates a corpus of NTU-format files (1-4 bodies, 30-300 frames, skewed towards short one-body
clips like the real data), then measures samples/s for:
  * reference-style: line-by-line, one small numpy array per joint line, as the CTR-GCN script
    does (REFERENCE §2.2), single process;
  * mmcl, single process;
  * mmcl with 2 worker processes (ProcessPoolExecutor).
Prints a table and writes benchmarks/results/prepare_ntu_speed.json.

Usage: python benchmarks/prepare_ntu_speed.py [--files 300] [--workers 2] [--out PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from mmcl.prepare.ntu import process_file
from mmcl.prepare.ntu_denoise import process_parsed
from mmcl.prepare.ntu_parse import ParsedBody, ParsedSkeleton
from mmcl.prepare.ntu_synth import random_sample, sample_name, write_skeleton


def make_corpus(root: Path, n: int, seed: int = 0) -> list[Path]:
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        frames = int(np.clip(rng.lognormal(np.log(80), 0.5), 30, 300))
        bodies = int(rng.choice([1, 2, 3, 4], p=[0.6, 0.3, 0.07, 0.03]))
        p = root / f"{sample_name(1 + i % 17, 1 + i % 3, 1 + i % 40, 1, 1 + i % 60)}_{i}.skeleton"
        paths.append(write_skeleton(p, random_sample(rng, frames, bodies)))
    return paths


def reference_style(path: Path) -> object:
    """Line-by-line parse as the reference does, then the same denoising."""
    with open(path) as fh:
        lines = fh.readlines()
    n_frames = int(lines[0])
    pos, valid = 1, -1
    acc: dict[str, tuple[list, list, list]] = {}
    dropped = []
    for f in range(n_frames):
        nb = int(lines[pos]); pos += 1
        if nb == 0:
            dropped.append(f)
            continue
        valid += 1
        for _ in range(nb):
            bid = lines[pos].split()[0]; pos += 1
            nj = int(lines[pos]); pos += 1
            joints = np.zeros((nj, 3), dtype=np.float32)
            colors = np.zeros((nj, 2), dtype=np.float32)
            for j in range(nj):
                t = lines[pos].split(); pos += 1
                joints[j] = np.array(t[:3], dtype=np.float32)
                colors[j] = np.array(t[5:7], dtype=np.float32)
            e = acc.setdefault(bid, ([], [], []))
            e[0].append(joints); e[1].append(colors); e[2].append(valid)
    bodies = [ParsedBody(b, np.stack(j), np.stack(c), np.array(fr)) for b, (j, c, fr) in acc.items()]
    return process_parsed(ParsedSkeleton(n_frames - len(dropped), bodies, dropped))


def _mmcl(path: Path) -> int:
    return len(process_file(path).joints)


def timed(fn, paths) -> float:
    t0 = time.perf_counter()
    for p in paths:
        fn(p)
    return len(paths) / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=300)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "prepare_ntu_speed.json")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        paths = make_corpus(Path(tmp), args.files)
        mb = sum(p.stat().st_size for p in paths) / 1e6
        sub = paths[: max(20, len(paths) // 5)]
        ref = timed(reference_style, sub)
        single = timed(_mmcl, paths)
        t0 = time.perf_counter()
        with ProcessPoolExecutor(args.workers) as pool:
            list(pool.map(_mmcl, paths, chunksize=16))
        multi = len(paths) / (time.perf_counter() - t0)
    rows = [
        ("reference-style, 1 process", ref),
        ("mmcl, 1 process", single),
        (f"mmcl, {args.workers} workers", multi),
    ]
    print(f"corpus: {args.files} files, {mb:.1f} MB ({mb / args.files * 1e3:.0f} kB/file)")
    print(f"{'pipeline':32s} {'samples/s':>10s} {'x reference-style':>18s} {'x 110/s':>8s}")
    for name, v in rows:
        print(f"{name:32s} {v:10.1f} {v / ref:18.1f} {v / 110:8.1f}")
    result = {
        "files": args.files, "megabytes": mb, "cpu_count": os.cpu_count(), "machine": platform.processor(),
        "samples_per_s": {name: v for name, v in rows}, "reference_figure_per_s": 110,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
