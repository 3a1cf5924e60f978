"""``mmcl ensemble`` and ``mmcl report``: thin wrappers over :mod:`mmcl.results.ensemble` and :mod:`mmcl.results.report`."""

from __future__ import annotations

import argparse
import textwrap
from typing import Any

__all__ = ["register"]

ENSEMBLE_EXAMPLES = """\
examples:
  # reference CTR-GCN 4-stream fusion (REFERENCE §8.2): 0.6·J + 0.6·B + 0.4·JM + 0.4·BM on raw logits
  mmcl ensemble runs/j runs/b runs/jm runs/bm --names J B JM BM --weights 0.6 0.6 0.4 0.4 --out runs/ens
  mmcl ensemble runs/j runs/b runs/jm runs/bm --names J B JM BM --preset ctrgcn-4s
  # weights fitted on the validation split (runs trained with data.val_fraction>0), never on test
  mmcl ensemble runs/j runs/b runs/jm runs/bm --fit val --normalize softmax --out runs/ens_fit
  # re-use fitted weights (ensemble.json is a valid weights file)
  mmcl ensemble runs/j runs/b runs/jm runs/bm --weights-file runs/ens_fit/ensemble.json
"""

REPORT_EXAMPLES = """\
examples:
  mmcl report runs/ntu120_xsub_joint                       writes runs/ntu120_xsub_joint/report/report.md + PNGs
  mmcl report runs/ctrgcn_joint --compare runs/mmcl_joint --labels CTR-GCN MMCL --out reports/joint
  mmcl report runs/ens                                     an ensemble output directory works too
"""


def register(sub: Any) -> None:
    from mmcl.results.ensemble import NORMALIZATIONS, PRESETS

    p = sub.add_parser(
        "ensemble",
        help="fuse the scores of several runs (streams), aligned by sample name",
        description=textwrap.fill(
            "Fuse per-sample scores of several runs (e.g. joint, bone, joint-motion, bone-motion). Rows are joined by "
            "sample name, never by order; inputs must cover the same samples with the same labels. Prints top-1, top-5 "
            "and mean class accuracy per stream and fused; with --out writes ensemble.json and the fused scores.npz."
        ),
        epilog=ENSEMBLE_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("inputs", nargs="+", metavar="RUN", help="run directories (their scores.npz, or scores.csv in a collected copy) or score files (.npz/.csv)")
    p.add_argument("--names", nargs="+", metavar="NAME", help="stream labels, one per input (e.g. J B JM BM); default: each run's data.stream, else its directory name")
    w = p.add_mutually_exclusive_group()
    w.add_argument("--weights", nargs="+", type=float, metavar="W", help="one fixed weight per input (default: all 1)")
    w.add_argument("--weights-file", metavar="FILE", help="YAML/JSON weights: a list, or a mapping stream name -> weight (an ensemble.json works)")
    w.add_argument("--preset", choices=sorted(PRESETS), help="reference weights, matched by stream name (J = joint, B = bone, JM, BM; or --names): " + "; ".join(f"{k} = {', '.join(f'{s} {v:.4g}' for s, v in d.items())}" for k, d in PRESETS.items()))
    w.add_argument("--fit", choices=["val"], help="fit non-negative weights (sum 1) on the runs' val_scores.npz (validation carved from training; the test split is never used)")
    p.add_argument("--normalize", choices=NORMALIZATIONS, default=None, help="per-sample score normalisation before fusing: none = raw logits (reference), softmax, l2 (HD-GCN); default: l2 for the hdgcn presets, else none")
    p.add_argument("--allow-partial", action="store_true", help="fuse the samples common to all inputs instead of refusing inputs with different sample sets")
    p.add_argument("--fit-step", type=float, default=0.05, help="grid step of the weight fit (default 0.05)")
    p.add_argument("--out", metavar="DIR", help="write ensemble.json and the fused scores.npz here")
    p.set_defaults(func=cmd_ensemble)

    p = sub.add_parser(
        "report",
        help="Markdown report with plots for a run; per-class comparison of two runs",
        description=textwrap.fill(
            "Write training curves (csv/metrics.csv), a confusion matrix, per-class accuracy and report.md (configuration, "
            "best epoch, top-1/top-5/mean class, per-class table, worst confusions) for a run directory. With --compare, "
            "add a per-class comparison of the two runs on the samples they share (joined by name), in the style of "
            "Table 1 of the MMCL paper."
        ),
        epilog=REPORT_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory (needs scores.npz, or scores.csv in a collected copy)")
    p.add_argument("--compare", metavar="OTHER_RUN_DIR", help="second run; deltas are OTHER − RUN_DIR")
    p.add_argument("--labels", nargs="+", metavar="LABEL", help="display names: one for RUN_DIR, plus one for --compare")
    p.add_argument("--out", metavar="DIR", help="output folder (default RUN_DIR/report)")
    p.add_argument("--top", type=int, default=10, help="rows in the worst-confusion and comparison tables (default 10)")
    p.add_argument("--dataset", help="class names of this dataset (ntu60, ntu120, nwucla); default: the run's data.dataset")
    p.set_defaults(func=cmd_report)


def cmd_ensemble(args: argparse.Namespace) -> int:
    from mmcl.results.ensemble import format_ensemble_table, run_ensemble

    result = run_ensemble(
        args.inputs,
        names=args.names,
        weights=args.weights,
        weights_file=args.weights_file,
        preset=args.preset,
        fit=args.fit,
        normalize=args.normalize,
        allow_partial=args.allow_partial,
        fit_step=args.fit_step,
        out_dir=args.out,
    )
    print(format_ensemble_table(result))
    if args.out:
        print(f"wrote {args.out}/ensemble.json and {args.out}/scores.npz")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from mmcl.results.report import write_report

    path = write_report(args.run_dir, out_dir=args.out, compare=args.compare, labels=args.labels, top=args.top, dataset=args.dataset)
    print(f"report: {path}")
    return 0
