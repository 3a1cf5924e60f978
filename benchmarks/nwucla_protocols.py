"""NW-UCLA streams and ensembles under two protocols, side by side.

(a) ours: each stream's LAST epoch (the test split chooses nothing), ensemble weights fixed in
    advance (a preset) — the figure mmcl reports.
(b) the reference protocol: each stream's BEST TEST epoch, as the official training scripts print
    and as published per-stream numbers are usually obtained. Per stream it is read off the run's
    evaluations (``eval_scores/epoch_NNN.csv`` when the run kept them, else the CSV log's
    ``val/top1``, which on NW-UCLA is the test split); a protocol-(b) ensemble needs every
    stream's per-epoch scores, so it is computed only for ensembles whose runs all kept them.

Inputs are collected run folders (``benchmarks/collect_run.py``) given as LABEL=FOLDER, or
LABEL=FOLDER+FOLDER for a model trained in cycles (``model.init_from`` the previous cycle's last
checkpoint): the cycles' evaluations are numbered on (cycle 2's epoch 1 is epoch 11 after a 10-epoch
cycle) and the last folder's ``scores.csv`` is protocol (a). Ensembles as NAME=PRESET:LABEL,LABEL,...
(optionally NAME=PRESET/NORMALIZE:LABELS; PRESET ``ones`` = all 1). Usage::

    B=benchmarks/results
    python benchmarks/nwucla_protocols.py \\
        J=$B/nwucla_cpu_joint B=$B/nwucla_cpu_bone JM=$B/nwucla_cpu_joint_motion BM=$B/nwucla_cpu_bone_motion \\
        HDJ=$B/nwucla_cpu_hdgcn_joint HDB=$B/nwucla_cpu_hdgcn_bone \\
        --ensemble ctrgcn-4s=ctrgcn-4s:J,B,JM,BM mmcl-6s=mmcl-ntu120-xsub:J,B,JM,BM,HDJ,HDB \\
                   mmcl-6s-l2=ones/l2:J,B,JM,BM,HDJ,HDB hdgcn-2s=ones/l2:HDJ,HDB

The 20-epoch HD-GCN (two cycles) record: the same with HDJ=$B/nwucla_cpu_hdgcn_joint+$B/nwucla_cpu_hdgcn2_joint
HDB=$B/nwucla_cpu_hdgcn_bone+$B/nwucla_cpu_hdgcn2_bone --out $B/nwucla_protocols_hdgcn20.json.

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


def _stream(folders: list[Path]) -> dict:
    """A stream's last-epoch scores and its best test epoch over every cycle's evaluations."""
    last_folder = folders[-1]
    names, labels, last = load_scores(last_folder / "scores.csv")
    names = list(names)
    out = {"folders": [str(f) for f in folders], "last_top1": _top1(last, labels), "names": names, "labels": labels, "last": last}
    per_epoch, offset = [], 0
    for folder in folders:
        epochs = sorted((folder / "eval_scores").glob("epoch_*.csv"))
        for f in epochs:
            lab, sc = _aligned(f, names)
            assert (lab == labels).all(), f
            per_epoch.append((offset + int(f.stem.split("_")[1]), _top1(sc, labels), f))
        offset = per_epoch[-1][0] if per_epoch else offset
    if per_epoch and all((f / "eval_scores").is_dir() for f in folders):
        best = max(per_epoch, key=lambda e: e[1])  # first epoch among equals
        out.update(best_epoch=best[0], best_top1=best[1], best_file=str(best[2]), best_source="eval_scores")
    else:
        if len(folders) > 1:
            raise SystemExit(f"{'+'.join(map(str, folders))}: cycles need every cycle's eval_scores/ (trainer.keep_eval_scores)")
        rows = [r for r in csv.DictReader(open(last_folder / "metrics.csv")) if r.get("val/top1")]
        best = max(((int(r["epoch"]) + 1, float(r["val/top1"])) for r in rows), key=lambda e: e[1])
        out.update(best_epoch=best[0], best_top1=best[1], best_file=None, best_source=f"metrics.csv ({len(rows)} evaluations)")
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
        streams[label] = _stream([Path(f) for f in folder.split("+")])
    ref = streams[next(iter(streams))]
    for label, s in streams.items():  # same samples, same labels, in the same order
        lab, sc = _aligned(Path(s["folders"][-1]) / "scores.csv", ref["names"])
        assert (lab == ref["labels"]).all(), label
        s["last"] = sc
        s["best"] = None if s["best_file"] is None else _aligned(Path(s["best_file"]), ref["names"])[1]
    rows = []
    print(f"{'stream / ensemble':<34}{'(a) last epoch':>16}{'(b) best test epoch':>22}")
    for label, s in streams.items():
        print(f"{label:<34}{100 * s['last_top1']:>15.2f}%{100 * s['best_top1']:>15.2f}% (ep {s['best_epoch']})")
        rows.append({"name": label, "kind": "stream", "a_top1": s["last_top1"], "b_top1": s["best_top1"],
                     "b_epoch": s["best_epoch"], "b_source": s["best_source"], "folders": s["folders"]})
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
