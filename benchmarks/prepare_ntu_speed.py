"""Speed of NTU parsing + denoising: mmcl.prepare.ntu versus a reference-style pipeline.

One run generates a corpus of NTU-format files (1-4 bodies, 30-300 frames, skewed towards short
one-body clips like the real data) and measures, on that same corpus, files/s for:

  (a) reference-style pipeline, 1 process: written here from REFERENCE §2.2-2.6.1 in the manner of
      the three CTR-GCN scripts, per sample: line-by-line parse into per-bodyID dicts with Python
      float conversion and row-wise stacking, motion, denoising (length / spread filters with a
      per-frame loop), actor assignment, missing-frame removal and centring. It does not pickle
      intermediate results between stages as the real scripts do (which would only slow it down);
  (b) mmcl ``process_file`` in a loop, 1 process;
  (c) mmcl ``prepare_ntu``'s parse+denoise stage (``run_chunks``: chunks, worker pool, resume-cache
      shards written), with 1 and with N worker processes (default 2);
  (d) optional (--end-to-end): mmcl ``prepare_ntu`` end to end with N workers (also padding and
      writing every split, which is not parsing/denoising).

Each figure is the best of --repeat runs. Besides files per wall-clock second it reports files per
CPU second (this process plus its workers), which does not depend on what else the machine runs.

The compiled parser is warmed up (numba compile or on-disk cache load) before timing, as
``prepare_ntu`` does once per process. Outputs of (a) and (b) are compared for bit equality.
Prints a table and writes benchmarks/results/prepare_ntu_speed.json.

Usage: python benchmarks/prepare_ntu_speed.py [--files 1000] [--workers 2] [--chunk-size 32] [--repeat 2]
       [--end-to-end] [--out PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from mmcl.formats.ntu import process_file, warm_up
from mmcl.prepare.ntu import prepare_ntu
from mmcl.prepare.ntu_synth import ntu60_names, random_sample, write_skeleton
from mmcl.prepare.ntu_workers import run_chunks

REFERENCE_FIGURE = 110  # files/s quoted for the reference three-script pipeline (single process)


def make_corpus(root: Path, n: int, seed: int = 0) -> list[Path]:
    """``n`` files with distinct valid NTU-60 names (none on the missing-skeleton list)."""
    rng = np.random.default_rng(seed)
    paths: list[Path] = []
    for name in ntu60_names():
        if len(paths) == n:
            break
        frames = int(np.clip(rng.lognormal(np.log(80), 0.5), 30, 300))
        bodies = int(rng.choice([1, 2, 3, 4], p=[0.6, 0.3, 0.07, 0.03]))
        paths.append(write_skeleton(root / f"{name}.skeleton", random_sample(rng, frames, bodies)))
    return paths


# ================================================================================================
# (a) REFERENCE-STYLE PIPELINE (baseline for the speed-up; written from REFERENCE §2.2-2.6.1)
# ================================================================================================


def ref_read_sample(path: Path) -> dict:
    """Stage 1 (§2.2): line-by-line parse into a dict per bodyID."""
    with open(path) as fh:
        lines = fh.readlines()
    num_frames = int(lines[0])
    pos, valid = 1, -1
    bodies: dict[str, dict] = {}
    dropped = []
    for f in range(num_frames):
        num_bodies = int(lines[pos])
        pos += 1
        if num_bodies == 0:
            dropped.append(f)
            continue
        valid += 1
        for _ in range(num_bodies):
            body_id = lines[pos].split()[0]
            num_joints = int(lines[pos + 1])
            pos += 2
            joints = np.zeros((num_joints, 3), dtype=np.float32)
            colors = np.zeros((num_joints, 2), dtype=np.float32)
            for j in range(num_joints):
                t = lines[pos].split()
                pos += 1
                joints[j] = (float(t[0]), float(t[1]), float(t[2]))
                colors[j] = (float(t[5]), float(t[6]))
            if body_id not in bodies:
                bodies[body_id] = {"joints": joints, "colors": colors[None], "interval": [valid]}
            else:
                b = bodies[body_id]
                b["joints"] = np.vstack((b["joints"], joints))
                b["colors"] = np.vstack((b["colors"], colors[None]))
                b["interval"].append(b["interval"][-1] + 1)
    if len(bodies) > 1:
        for b in bodies.values():
            b["motion"] = np.sum(np.var(b["joints"], axis=0))
    return {"bodies": bodies, "num_frames": num_frames - len(dropped)}


def ref_spread_valid_frames(joints: np.ndarray) -> list[int]:
    """§2.3 step 2: frames whose x-spread <= 0.8 * y-spread (per-frame loop)."""
    per_frame = joints.reshape(-1, 25, 3)
    valid = []
    for i in range(len(per_frame)):
        x, y = per_frame[i, :, 0], per_frame[i, :, 1]
        if float(x.max() - x.min()) <= 0.8 * float(y.max() - y.min()):
            valid.append(i)
    return valid


def ref_denoise(bodies: dict) -> list[tuple[str, dict]]:
    """§2.3: length filter, spread filter, ordering by motion."""
    for bid in list(bodies):
        if len(bodies[bid]["interval"]) <= 11:
            del bodies[bid]
    if len(bodies) == 1:
        return list(bodies.items())
    for bid in list(bodies):
        if len(bodies) == 1:
            break
        b = bodies[bid]
        valid = ref_spread_valid_frames(b["joints"])
        n = len(b["interval"])
        noise = n - len(valid)
        if noise == 0:
            continue
        if noise / float(n) >= 0.69754:
            del bodies[bid]
        else:
            rows = b["joints"].reshape(-1, 25, 3)[valid].reshape(-1, 3)
            b["motion"] = min(b["motion"], np.sum(np.var(rows, axis=0)))
    if len(bodies) == 1:
        return list(bodies.items())
    return sorted(bodies.items(), key=lambda kv: kv[1]["motion"], reverse=True)


def ref_sample(path: Path) -> np.ndarray:
    """Stages 1-2 and the centring of stage 3 (§2.2-2.6.1) for one file; T x 150 float32."""
    raw = ref_read_sample(path)
    bodies, num_frames = raw["bodies"], raw["num_frames"]
    multi = len(bodies) > 1
    if not multi:
        (b,) = bodies.values()
        joints = np.zeros((num_frames, 75), dtype=np.float32)
        s = b["interval"][0]
        joints[s : s + len(b["interval"])] = b["joints"].reshape(-1, 75)
    else:
        order = ref_denoise(bodies)
        joints = np.zeros((num_frames, 75 if len(order) == 1 else 150), dtype=np.float32)
        (_, b1), rest = order[0], order[1:]
        s1, e1 = b1["interval"][0], b1["interval"][-1]
        joints[s1 : e1 + 1, :75] = b1["joints"].reshape(-1, 75)
        s2 = e2 = 0
        for _, b in rest:
            s, e = b["interval"][0], b["interval"][-1]
            if min(e1, e) - max(s1, s) <= 0:
                joints[s : e + 1, :75] = b["joints"].reshape(-1, 75)
                s1, e1 = min(s, s1), max(e, e1)
            elif min(e2, e) - max(s2, s) <= 0:
                joints[s : e + 1, 75:] = b["joints"].reshape(-1, 75)
                s2, e2 = min(s, s2), max(e, e2)
        joints = joints[joints.sum(axis=1) != 0]  # §2.5 missing-frame removal
    # §2.6.1 centring on actor 1's J2 in its first non-zero frame
    i = 0
    while i < len(joints) and not joints[i, :75].any():
        i += 1
    origin = joints[i, 3:6].copy()
    if joints.shape[1] == 150:
        miss1 = joints[:, :75].sum(axis=1) == 0
        miss2 = joints[:, 75:].sum(axis=1) == 0
        joints = joints - np.tile(origin, 50)
        joints[miss1, :75] = 0
        joints[miss2, 75:] = 0
        return joints
    out = np.zeros((len(joints), 150), dtype=np.float32)
    out[:, :75] = joints - np.tile(origin, 25)
    return out


# ================================================================================================
# measurements
# ================================================================================================


def measure(n: int, fn, repeat: int) -> tuple[float, float]:
    """Best of ``repeat`` runs: (files per wall-clock second, files per CPU second of this process
    and its worker processes). The CPU figure is what the code costs, whatever else the machine runs."""
    best_wall, best_cpu = 0.0, 0.0
    for _ in range(repeat):
        c0, t0 = os.times(), time.perf_counter()
        fn()
        wall, c1 = time.perf_counter() - t0, os.times()
        cpu = (c1.user + c1.system + c1.children_user + c1.children_system) - (
            c0.user + c0.system + c0.children_user + c0.children_system
        )
        best_wall, best_cpu = max(best_wall, n / wall), max(best_cpu, n / max(cpu, 1e-9))
    return best_wall, best_cpu


def loadavg() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:  # pragma: no cover
        return []


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--chunk-size", type=int, default=32)
    ap.add_argument("--repeat", type=int, default=2, help="best of this many runs per pipeline")
    ap.add_argument("--end-to-end", action="store_true", help="also measure (d)")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "prepare_ntu_speed.json")
    args = ap.parse_args()
    t_warm = time.perf_counter()
    compiled = warm_up()
    t_warm = time.perf_counter() - t_warm
    load_before = loadavg()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "skeletons"
        root.mkdir()
        paths = make_corpus(root, args.files)
        n = len(paths)
        mb = sum(p.stat().st_size for p in paths) / 1e6
        one_body = sum(1 for p in paths if process_file(p).info["bodies"] == 1)

        # equality of (a) and (b) on the whole corpus (untimed)
        mismatches = [p.name for p in paths if not np.array_equal(ref_sample(p), process_file(p).joints)]

        rates: dict[str, float] = {}
        cpu_rates: dict[str, float] = {}

        def run(name: str, fn) -> None:
            rates[name], cpu_rates[name] = measure(n, fn, args.repeat)

        run("(a) reference-style, 1 process", lambda: [ref_sample(p) for p in paths])
        run("(b) mmcl process_file, 1 process", lambda: [process_file(p) for p in paths])
        todo = []
        for p in paths:
            st = p.stat()
            todo.append((p.stem, str(p), st.st_size, st.st_mtime_ns))
        for w in (1, args.workers):
            cache = Path(tmp) / f"cache-{w}"

            def stage(w: int = w, cache: Path = cache) -> None:
                shutil.rmtree(cache, ignore_errors=True)
                cache.mkdir()
                run_chunks(todo, cache, False, w, False, False, args.chunk_size, None)

            run(f"(c) mmcl prepare_ntu stage, {w} worker{'s' if w > 1 else ''}", stage)
        if args.end_to_end:
            out = Path(tmp) / "prepared"
            run(f"(d) mmcl prepare_ntu end to end, {args.workers} workers",
                lambda: prepare_ntu([root], "ntu60", out, workers=args.workers, progress=False,
                                    chunk_size=args.chunk_size))
    load_after = loadavg()
    ref = rates["(a) reference-style, 1 process"]
    print(f"corpus: {n} files, {mb:.1f} MB ({mb / n * 1e3:.0f} kB/file), {one_body} single-body; "
          f"compiled parser: {compiled} (warm-up {t_warm:.2f} s, once per process)")
    print(f"load average before {load_before}, after {load_after} (cpu_count={os.cpu_count()})")
    print(f"reference-style output == mmcl output on {n - len(mismatches)}/{n} files")
    print(f"{'pipeline (best of ' + str(args.repeat) + ')':48s} {'files/s':>9s} {'x (a)':>7s} {'x 110/s':>8s}"
          f" {'files/CPU-s':>12s} {'x (a)':>7s}")
    cref = cpu_rates["(a) reference-style, 1 process"]
    for name, v in rates.items():
        c = cpu_rates[name]
        print(f"{name:48s} {v:9.1f} {v / ref:7.1f} {v / REFERENCE_FIGURE:8.1f} {c:12.1f} {c / cref:7.1f}")
    result = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "files": n, "megabytes": round(mb, 2), "single_body_files": one_body,
        "cpu_count": os.cpu_count(), "machine": platform.machine(), "python": platform.python_version(),
        "compiled_parser": compiled, "warm_up_s": round(t_warm, 3), "chunk_size": args.chunk_size,
        "loadavg_before": load_before, "loadavg_after": load_after,
        "outputs_equal_reference_style": n - len(mismatches), "mismatches": mismatches[:20],
        "repeat": args.repeat, "files_per_s": rates,
        "speedup_vs_reference_style": {k: v / ref for k, v in rates.items()},
        "files_per_cpu_s": cpu_rates,
        "cpu_speedup_vs_reference_style": {k: v / cpu_rates["(a) reference-style, 1 process"] for k, v in cpu_rates.items()},
        "reference_figure_per_s": REFERENCE_FIGURE,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
