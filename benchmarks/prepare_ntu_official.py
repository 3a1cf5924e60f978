"""``mmcl prepare ntu`` against the official CTR-GCN three-script pipeline, as a user runs them.

One run:
  1. writes a corpus of ``--files`` NTU ``.skeleton`` files with real content: the frames of the real
     sample under ``../shared/data/ntu-sample`` re-timed to lengths drawn like NTU's (log-normal around
     80 frames, 30-300, one file of exactly 300 so both pipelines pad to the same length), under
     distinct valid NTU-60 names;
  2. runs the official scripts (``get_raw_skes_data.py``, ``get_raw_denoised_data.py``,
     ``seq_transformation.py`` from a copy of ``data/ntu`` of Uason-Chen/CTR-GCN, ``--official DIR``)
     in a working copy whose ``statistics/`` lists this corpus. The scripts predate NumPy 2, so a shim
     restores the removed aliases ``np.int``/``np.string_`` and stubs the imported-but-unused
     ``h5py``/``sklearn``; nothing else changes;
  3. runs ``python -m mmcl prepare ntu --dataset ntu60 --workers N`` (the compact store) and, apart,
     with ``--npz``, whose NTU60_CS/CV.npz are compared array by array with the official ones;
  4. reads every training sample of xsub through ``SkeletonDataset`` (NTU transform, window 64) from the
     store and from the padded per-split folder earlier mmcl versions wrote (made here from the same
     samples), to show the data-loading rate is kept.

Wall times are of whole commands (interpreter start included), best of ``--repeat``; disk is bytes of
files. Prints a table and writes benchmarks/results/prepare_ntu_official.json. Run it alone.

Usage: python benchmarks/prepare_ntu_official.py --official /path/to/CTR-GCN/data/ntu [--files 3000]
       [--workers 2] [--repeat 2] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from mmcl.datasets import PreparedSource, SkeletonDataset
from mmcl.formats.ntu import parse_name
from mmcl.formats.sample_store import folder_bytes
from mmcl.prepare.ntu_synth import ntu60_names
from mmcl.skeleton.transforms import NTUTransform

ROOT = Path(__file__).resolve().parents[1]
REAL_SAMPLE = ROOT.parent / "shared" / "data" / "ntu-sample" / "S001C001P001R001A001.skeleton"
OFFICIAL_SCRIPTS = ("get_raw_skes_data.py", "get_raw_denoised_data.py", "seq_transformation.py")
SHIM = """
import runpy, sys, types
import numpy as np
np.int = int                      # removed in NumPy 1.24
np.string_ = np.bytes_            # removed in NumPy 2.0
sys.modules.setdefault("h5py", types.ModuleType("h5py"))  # imported, unused
sk = types.ModuleType("sklearn"); ms = types.ModuleType("sklearn.model_selection")
ms.train_test_split = None        # imported, unused for the CS/CV splits
sys.modules.setdefault("sklearn", sk); sys.modules.setdefault("sklearn.model_selection", ms)
runpy.run_path(sys.argv[1], run_name="__main__")
"""


def frame_blocks(path: Path) -> list[str]:
    """The text of each frame of a ``.skeleton`` file (body count, body lines, joint lines)."""
    lines = path.read_text().splitlines(keepends=True)
    blocks, pos = [], 1
    for _ in range(int(lines[0])):
        start, bodies = pos, int(lines[pos])
        pos += 1
        for _ in range(bodies):
            pos += 2 + int(lines[pos + 1])
        blocks.append("".join(lines[start:pos]))
    return blocks


def make_corpus(root: Path, n: int, seed: int = 0) -> list[str]:
    """``n`` real-content files with distinct NTU-60 names; returns the names in sorted order."""
    root.mkdir(parents=True, exist_ok=True)
    blocks = frame_blocks(REAL_SAMPLE)
    rng = np.random.default_rng(seed)
    names: list[str] = []
    for name in ntu60_names():
        if len(names) == n:
            break
        length = 300 if not names else int(np.clip(rng.lognormal(np.log(80), 0.5), 30, 300))
        pick = np.round(np.linspace(0, len(blocks) - 1, length)).astype(int)
        (root / f"{name}.skeleton").write_text(f"{length}\n" + "".join(blocks[k] for k in pick))
        names.append(name)
    return sorted(names)


def official_workdir(work: Path, scripts: Path, corpus: Path, names: list[str]) -> Path:
    """A fresh copy of the official ``data/ntu`` folder set up for ``names``."""
    wd = work / "official" / "ntu"
    shutil.rmtree(work / "official", ignore_errors=True)
    (wd / "statistics").mkdir(parents=True)
    (wd / "raw_data").mkdir()
    for f in OFFICIAL_SCRIPTS:
        shutil.copy(scripts / f, wd / f)
    raw = work / "official" / "nturgbd_raw"
    raw.mkdir()
    (raw / "nturgb+d_skeletons").symlink_to(corpus.resolve())  # the scripts read ../nturgbd_raw/nturgb+d_skeletons/
    fields = np.array([parse_name(n) for n in names])
    (wd / "statistics" / "skes_available_name.txt").write_text("".join(n + "\n" for n in names))
    for col, fname in enumerate(("setup", "camera", "performer", "replication", "label")):
        np.savetxt(wd / "statistics" / f"{fname}.txt", fields[:, col], fmt="%d")
    return wd


def run_official(work: Path, scripts: Path, corpus: Path, names: list[str]) -> tuple[float, Path]:
    wd = official_workdir(work, scripts, corpus, names)
    t0 = time.perf_counter()
    for f in OFFICIAL_SCRIPTS:
        subprocess.run([sys.executable, "-c", SHIM, f], cwd=wd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0, wd


def run_mmcl(corpus: Path, out: Path, workers: int, npz: bool = False) -> float:
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, "-m", "mmcl", "prepare", "ntu", "--skeletons", str(corpus), "--dataset", "ntu60",
           "--out", str(out), "--workers", str(workers), *(["--npz"] if npz else [])]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def write_padded_folder(src: PreparedSource, root: Path) -> None:
    """The same split in the padded per-split form of earlier mmcl versions (x/y/names/len/colors)."""
    root.mkdir(parents=True, exist_ok=True)
    n, t = len(src), src.max_frames
    x = np.lib.format.open_memmap(root / "x_train.npy", "w+", np.float32, (n, t, 150))
    c = np.lib.format.open_memmap(root / "colors_train.npy", "w+", np.float32, (n, t, 2, 25, 2))
    for i in range(n):
        s, valid = src.raw(i)
        x[i] = s.transpose(1, 3, 2, 0).reshape(t, 150)
        c[i, :valid] = src.sample_colors(i)
    x.flush()
    c.flush()
    del x, c
    np.save(root / "y_train.npy", src.labels)
    np.save(root / "len_train.npy", src.lengths.astype(np.int32))
    (root / "names_train.txt").write_text("".join(nm + "\n" for nm in src.names))
    meta = {k: src.meta[k] for k in ("dataset", "benchmark", "layout", "num_classes", "num_persons")}
    (root / "meta.json").write_text(json.dumps({**meta, "counts": {"train": n}}))


def loading_rate(folder: Path, repeat: int) -> float:
    """Training items per second through SkeletonDataset (NTU transform, window 64), one process."""
    best = float("inf")
    for _ in range(repeat):
        ds = SkeletonDataset(PreparedSource(folder, "train"), NTUTransform(train=True, window=64))
        t0 = time.perf_counter()
        for k in range(len(ds)):
            ds[k]
        best = min(best, time.perf_counter() - t0)
    return len(ds) / best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--official", type=Path, required=True, help="folder with the three official data/ntu scripts")
    ap.add_argument("--files", type=int, default=3000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temporary one, removed)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "prepare_ntu_official.json")
    args = ap.parse_args()
    if not REAL_SAMPLE.is_file():
        raise SystemExit(f"the real NTU sample is needed: {REAL_SAMPLE}")
    work = args.work or Path(tempfile.mkdtemp(prefix="mmcl-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        corpus = work / "corpus"
        shutil.rmtree(corpus, ignore_errors=True)
        names = make_corpus(corpus, args.files)
        corpus_bytes = folder_bytes(corpus)
        official_s, mmcl_s = [], []
        for _ in range(args.repeat):  # alternate, so drift of the machine hits both alike
            s, wd = run_official(work, args.official, corpus, names)
            official_s.append(s)
            mmcl_s.append(run_mmcl(corpus, work / "mmcl", args.workers))
        npz_s = run_mmcl(corpus, work / "mmcl_npz", args.workers, npz=True)
        same = {}
        for bench in ("CS", "CV"):
            with np.load(wd / f"NTU60_{bench}.npz") as a, np.load(work / "mmcl_npz" / f"NTU60_{bench}.npz") as b:
                same[bench] = sorted(a.files) == sorted(b.files) and all(
                    a[k].dtype == b[k].dtype and a[k].shape == b[k].shape and np.array_equal(a[k], b[k]) for k in a.files
                )
        official_npz = sum((wd / f"NTU60_{b}.npz").stat().st_size for b in ("CS", "CV"))
        official_all = folder_bytes(wd) - sum((wd / f).stat().st_size for f in OFFICIAL_SCRIPTS)
        mmcl_bytes = folder_bytes(work / "mmcl")
        store_joints = (work / "mmcl" / "samples" / "joints.npy").stat().st_size
        padded = work / "padded" / "xsub"
        write_padded_folder(PreparedSource(work / "mmcl" / "xsub", "train"), padded)
        rate_store = loading_rate(work / "mmcl" / "xsub", args.repeat)
        rate_padded = loading_rate(padded, args.repeat)
        longest = int(json.loads((work / "mmcl" / "samples" / "meta.json").read_text())["longest"])
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    result = {
        "files": args.files, "corpus_bytes": corpus_bytes, "longest_sample": longest, "workers": args.workers,
        "official_s": official_s, "mmcl_s": mmcl_s, "mmcl_with_npz_s": npz_s,
        "speedup": min(official_s) / min(mmcl_s),
        "official_npz_pair_bytes": official_npz, "official_all_outputs_bytes": official_all,
        "mmcl_output_bytes": mmcl_bytes, "mmcl_store_joints_bytes": store_joints,
        "disk_ratio_npz_pair_over_mmcl": official_npz / mmcl_bytes,
        "disk_ratio_npz_pair_over_mmcl_joints": official_npz / store_joints,
        "npz_arrays_identical": same,
        "loading_items_per_s": {"store": rate_store, "padded_folder": rate_padded},
        "machine": {"cpu_count": os.cpu_count(), "processor": platform.processor() or platform.machine(),
                    "python": platform.python_version(), "numpy": np.__version__, "loadavg_end": list(os.getloadavg())},
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    mb = 1e6
    rows = [
        ("official 3 scripts (s, best)", f"{min(official_s):.1f}"),
        (f"mmcl prepare ntu, {args.workers} workers (s, best)", f"{min(mmcl_s):.2f}"),
        ("  speed-up", f"{result['speedup']:.1f}x"),
        ("mmcl prepare ntu --npz (s)", f"{npz_s:.2f}"),
        ("official npz pair (MB)", f"{official_npz / mb:.0f}"),
        ("mmcl output, all files (MB)", f"{mmcl_bytes / mb:.0f}"),
        ("  npz pair / mmcl", f"{result['disk_ratio_npz_pair_over_mmcl']:.1f}x"),
        ("  npz pair / mmcl joints only (colours aside)", f"{result['disk_ratio_npz_pair_over_mmcl_joints']:.1f}x"),
        ("--npz arrays identical to official (CS, CV)", f"{same['CS']}, {same['CV']}"),
        ("loading, store (items/s)", f"{rate_store:.0f}"),
        ("loading, padded folder (items/s)", f"{rate_padded:.0f}"),
    ]
    print(f"{args.files} real-content NTU-60 files, longest {longest} frames, corpus {corpus_bytes / mb:.0f} MB")
    for k, v in rows:
        print(f"  {k:<48}{v:>12}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
