"""NW-UCLA streams and ensembles under two protocols, side by side.

(a) ours: each stream's LAST epoch (the test split chooses nothing), ensemble weights fixed in
    advance (a preset) — the figure mmcl reports.
(b) the reference protocol: each stream's BEST TEST epoch, as the official training scripts print
    and as published per-stream numbers are usually obtained. Per stream it is read off the run's
    evaluations (``eval_scores/epoch_NNN.csv`` when the run kept them, else the CSV log's
    ``val/top1``, which on NW-UCLA is the test split); a protocol-(b) ensemble needs every
    stream's per-epoch scores, so it is computed only for ensembles whose runs all kept them.

Inputs are collected run folders (``benchmarks/collect_run.py``) given as LABEL=FOLDER; ensembles
as NAME=PRESET:LABEL,LABEL,... (optionally NAME=PRESET/NORMALIZE:LABELS; PRESET ``ones`` = all 1). Usage::

    python benchmarks/nwucla_protocols.py \\
        J=benchmarks/results/nwucla_cpu_joint B=benchmarks/results/nwucla_cpu_bone \\
        JM=benchmarks/results/nwucla_cpu_joint_motion BM=benchmarks/results/nwucla_cpu_bone_motion \\
        HDJ=benchmarks/results/nwucla_cpu_hdgcn_HDJ HDB=benchmarks/results/nwucla_cpu_hdgcn_HDB \\
        --ensemble ctrgcn-4s=ctrgcn-4s:J,B,JM,BM mmcl-6s=mmcl-ntu120-xsub:J,B,JM,BM,HDJ,HDB hdgcn-2s=ones/l2:HDJ,HDB

Prints a table and writes ``benchmarks/results/nwucla_protocols.json``.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np

from mmcl.results.ensemble import PRESETS, fuse_scores
from mmcl.results.metrics import compute_metrics
from mmcl.results.scores import canonical_label, load_scores

ROOT = Path(__file__).resolve().parents[1]
NUM_CLASSES = 10


def _top1(scores: np.ndarray, labels: np.ndarray) -> float:
    return float(compute_metrics(scores, labels, NUM_CLASSES).top1)


def _aligned(path: Path, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    n, labels, scores = load_scores(path)
    order = {x: i for i, x in enumerate(n)}
    idx = np.array([order[x] for x in names])
    return labels[idx], scores[idx]


def _stream(folder: Path) -> dict:
    names, labels, last = load_scores(folder / "scores.csv")
    names = list(names)
    epochs = sorted((folder / "eval_scores").glob("epoch_*.csv"))
    out = {"folder": str(folder), "last_top1": _top1(last, labels), "names": names, "labels": labels, "last": last}
    if epochs:
        per_epoch = []
        for f in epochs:
            lab, sc = _aligned(f, names)
            assert (lab == labels).all(), f
            per_epoch.append((int(f.stem.split("_")[1]), _top1(sc, labels), sc))
        best = max(per_epoch, key=lambda e: e[1])  # first epoch among equals
        out.update(best_epoch=best[0], best_top1=best[1], best=best[2], best_source="eval_scores")
    else:
        rows = [r for r in csv.DictReader(open(folder / "metrics.csv")) if r.get("val/top1")]
        best = max(((int(r["epoch"]) + 1, float(r["val/top1"])) for r in rows), key=lambda e: e[1])
        out.update(best_epoch=best[0], best_top1=best[1], best=None, best_source=f"metrics.csv ({len(rows)} evaluations)")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("streams", nargs="+", metavar="LABEL=FOLDER")
    parser.add_argument("--ensemble", nargs="*", default=[], metavar="NAME=PRESET[/NORM]:LABELS")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "nwucla_protocols.json"))
    args = parser.parse_args()
    streams = {}
    for item in args.streams:
        label, folder = item.split("=", 1)
        streams[label] = _stream(Path(folder))
    ref = streams[next(iter(streams))]
    for label, s in streams.items():  # same samples, same labels, in the same order
        lab, sc = _aligned(Path(s["folder"]) / "scores.csv", ref["names"])
        assert (lab == ref["labels"]).all(), label
        s["last"] = sc
        if s["best"] is not None:
            s["best"] = _aligned(Path(s["folder"]) / "eval_scores" / f"epoch_{s['best_epoch']:03d}.csv", ref["names"])[1]
    rows = []
    print(f"{'stream / ensemble':<34}{'(a) last epoch':>16}{'(b) best test epoch':>22}")
    for label, s in streams.items():
        print(f"{label:<34}{100 * s['last_top1']:>15.2f}%{100 * s['best_top1']:>15.2f}% (ep {s['best_epoch']})")
        rows.append({"name": label, "kind": "stream", "a_top1": s["last_top1"], "b_top1": s["best_top1"],
                     "b_epoch": s["best_epoch"], "b_source": s["best_source"], "folder": s["folder"]})
    for item in args.ensemble:
        name, spec = item.split("=", 1)
        preset_norm, labels = spec.split(":", 1)
        preset, _, norm = preset_norm.partition("/")
        labels = labels.split(",")
        if preset == "ones":
            weights = [1.0] * len(labels)
        else:
            table = {canonical_label(k): v for k, v in PRESETS[preset].items()}
            weights = [table[canonical_label(lab)] for lab in labels]
        norm = norm or "none"
        a = _top1(fuse_scores([streams[lab]["last"] for lab in labels], weights, norm), ref["labels"])
        b = None
        if all(streams[lab]["best"] is not None for lab in labels):
            b = _top1(fuse_scores([streams[lab]["best"] for lab in labels], weights, norm), ref["labels"])
        b_text = f"{100 * b:>15.2f}%" if b is not None else f"{'n/a':>16}"
        print(f"{name + ' (' + preset + ('/' + norm if norm != 'none' else '') + ')':<34}{100 * a:>15.2f}%{b_text}")
        rows.append({"name": name, "kind": "ensemble", "preset": preset, "normalize": norm, "streams": labels,
                     "weights": weights, "a_top1": a, "b_top1": b,
                     "b_note": None if b is not None else "needs every stream's per-epoch scores (trainer.keep_eval_scores)"})
    Path(args.out).write_text(json.dumps({"num_samples": len(ref["names"]), "rows": rows}, indent=2))
    print(f"\nwritten {args.out}")


if __name__ == "__main__":
    main()
