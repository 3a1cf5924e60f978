"""``mmcl predict``, ``mmcl zero-shot``, ``mmcl export``: using a trained model (thin wrappers).

Libraries: :mod:`mmcl.predict` (model loading from any checkpoint, raw-file classification,
export glue) and :mod:`mmcl.zeroshot` (REFERENCE §9 evaluation).
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from typing import Any

__all__ = ["register"]

CHECKPOINT_HELP = "mmcl .ckpt, exported model folder/.safetensors, or an official CTR-GCN / MMCL .pt"

PREDICT_EPILOG = """\
files:
  .skeleton  raw NTU RGB+D file: reference parse, denoise, centring, then the model's test transform
  .json      NW-UCLA all_sqe file (20 Kinect-v1 joints)
  .mat       UTD-MHAD *_skeleton.mat (20 Kinect-v1 joints)
  .npy       prepared (already centred) sample: C×T×V×M, T×V×C (one person) or T×(M·V·C), V = 25 or 20
  20-joint input to an NTU-25 model is interpolated to 25 joints (the zero-shot preprocessing of the MMCL code).

examples:
  mmcl predict --checkpoint runs/ntu120_xsub_joint/checkpoints/best.ckpt S001C001P001R001A001.skeleton
  mmcl predict --checkpoint ntu120_xsub_joint.pt --dataset ntu120 a27_s1_t1_skeleton.mat --json
  mmcl predict --checkpoint exported/ a01_s01_e00_v03.json sample.npy --top 3

exit status: 0 all files classified, 1 some files failed (listed at the end), 2 usage or checkpoint error.
"""

ZERO_SHOT_EPILOG = """\
examples:
  mmcl zero-shot --checkpoint mmcl_ntu120_xsub_joint.pt --dataset utd-mhad --data UTD-MHAD/Skeleton
  mmcl zero-shot --checkpoint best.ckpt --dataset utd-mhad --data UTD-MHAD/Skeleton --text-store utd_text/ --json
  mmcl zero-shot --checkpoint best.ckpt --dataset kinect-v1 --data sysu/ --mapping sysu_to_ntu120.tsv --joint-order sysu_joints.txt

mapping file: TSV with a header row, one '<action id>\\t<0-based NTU label>[\\t<action name>...]' per line
(default for utd-mhad: the six UTD actions the MMCL code maps to NTU-120). The action id of a file is the text before
its first '_' (UTD-MHAD: aA of aA_sS_tT_skeleton.mat). Text features are looked up by file stem.
"""

EXPORT_EPILOG = """\
examples:
  mmcl export --checkpoint runs/ntu120_xsub_joint/checkpoints/best.ckpt --out exported/ntu120_joint
  mmcl export --checkpoint official_mmcl_ntu120.pt --dataset ntu120 --out exported/mmcl --no-onnx
"""


def _wrap(text: str) -> str:
    return textwrap.fill(text, width=100)


def _shape_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model shape (official checkpoints only; mmcl checkpoints carry theirs)")
    g.add_argument("--dataset", dest="model_dataset", metavar="{ntu60,ntu120,nwucla}", help="fixes classes, layout, persons and class names")
    g.add_argument("--layout", choices=["ntu25", "kinect20"], help="skeleton layout (default: inferred from the weights)")
    g.add_argument("--num-classes", type=int, help="classes (default: rows of fc.weight)")
    g.add_argument("--persons", type=int, help="persons per sample (default: data_bn width / (joints × 3))")


def register(sub: Any) -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    p = sub.add_parser(
        "predict",
        help="classify raw skeleton files (.skeleton, .json, .mat, .npy) with any checkpoint",
        description=_wrap("Print the top classes (softmax probabilities) of each skeleton file. The model shape comes "
        "from the checkpoint; official checkpoints need at most --dataset."),
        epilog=PREDICT_EPILOG,
        formatter_class=fmt,
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="skeleton files, one sample each")
    p.add_argument("--checkpoint", required=True, help=CHECKPOINT_HELP)
    p.add_argument("--top", type=int, default=5, help="classes shown per file (default 5)")
    p.add_argument("--json", action="store_true", help="one JSON object per file and line (failed files: {'file', 'error'})")
    p.add_argument("--class-names", metavar="FILE", help="class names, one per line in label order (default: the dataset's, else indices)")
    p.add_argument(
        "--lone-actor", choices=["auto", "duplicate", "zero"], default="auto",
        help="NTU files with one actor: copy it into the second slot (NTU-120 reference data) or leave it zero; auto: duplicate for 120-class models",
    )
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1 or auto (default cpu)")
    _shape_args(p)
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser(
        "zero-shot",
        help="evaluate an NTU-120 model on mapped classes of UTD-MHAD / Kinect-v1 data (zero-shot transfer, paper §4.3 / Table 10)",
        description=_wrap("Zero-shot transfer: Kinect-v1 skeletons are interpolated to 25 joints and preprocessed as the "
        "reference script; prints top-1/top-5 overall and per mapped action. With --text-store and an MMCL "
        "checkpoint holding FRM weights, the refined scores S_R are ranked."),
        epilog=ZERO_SHOT_EPILOG,
        formatter_class=fmt,
    )
    p.add_argument("--checkpoint", required=True, help=CHECKPOINT_HELP + " (an NTU-25 model)")
    p.add_argument("--dataset", required=True, choices=["utd-mhad", "kinect-v1"], help="utd-mhad (.mat files) or kinect-v1 (.npy/.mat/.json)")
    p.add_argument("--data", required=True, metavar="DIR", help="folder with the skeleton files (searched recursively)")
    p.add_argument("--mapping", metavar="FILE", help="action -> NTU label TSV (default for utd-mhad: resources/zero_shot/utd_to_ntu120.tsv)")
    p.add_argument("--joint-order", metavar="FILE", help="kinect-v1: the files' 20 joint names (KINECT20 spelling), one per line")
    p.add_argument("--text-store", metavar="STORE", help="feature store of text features of the target samples: rank FRM-refined S_R")
    p.add_argument("--scores", metavar="FILE", help="also write per-sample scores (scores.npz form: names, labels, scores)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto (default cpu)")
    p.set_defaults(func=cmd_zero_shot)

    p = sub.add_parser(
        "export",
        help="skeleton-only model artefact (safetensors + JSON, ONNX, TorchScript) from any checkpoint",
        description=_wrap("Write only the skeleton backbone (co-learning heads and RGB encoder are training-only) and "
        "print its parameters and GMACs. Works from mmcl training checkpoints (plain or MMCL) and official "
        "CTR-GCN / MMCL checkpoints."),
        epilog=EXPORT_EPILOG,
        formatter_class=fmt,
    )
    p.add_argument("--checkpoint", required=True, help=CHECKPOINT_HELP)
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (model.safetensors, model.json, model.onnx, model.torchscript.pt)")
    p.add_argument("--onnx", action=argparse.BooleanOptionalAction, default=True, help="write model.onnx (default on)")
    p.add_argument("--torchscript", action=argparse.BooleanOptionalAction, default=True, help="write model.torchscript.pt (default on)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    _shape_args(p)
    p.set_defaults(func=cmd_export)


def _shape_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    return {"dataset": args.model_dataset, "layout": args.layout, "num_classes": args.num_classes, "num_persons": args.persons}


def cmd_predict(args: argparse.Namespace) -> int:
    from mmcl.predict import load_model, predict_files

    if args.top < 1:
        raise ValueError(f"--top must be >= 1, got {args.top}")
    loaded = load_model(args.checkpoint, class_names_file=args.class_names, device=args.device, **_shape_kwargs(args))
    report = predict_files(loaded, args.files, top=args.top, lone_actor=args.lone_actor)
    by_file = {p.file: p for p in report.predictions}
    failed = dict(report.failures)
    for f in map(str, args.files):
        if args.json:
            obj = by_file[f].to_dict() if f in by_file else {"file": f, "error": failed[f]}
            print(json.dumps(obj))
        elif f in by_file:
            pred = by_file[f]
            print(f"{pred.file}  ({pred.kind}, {pred.frames} frames)")
            for rank, (label, name, score) in enumerate(pred.top, 1):
                print(f"  {rank}. {score:7.2%}  {label:>4}  {name if name is not None else ''}".rstrip())
    if report.failures:
        n = len(args.files)
        print(f"mmcl: {len(report.failures)} of {n} file{'s' if n > 1 else ''} failed:", file=sys.stderr)
        for _, msg in report.failures:
            print(f"  {msg}", file=sys.stderr)
        return 1
    return 0


def cmd_zero_shot(args: argparse.Namespace) -> int:
    from mmcl.zeroshot import evaluate_zero_shot

    report = evaluate_zero_shot(
        args.checkpoint,
        args.data,
        dataset=args.dataset,
        mapping=args.mapping,
        joint_order=args.joint_order,
        text_store=args.text_store,
        device=args.device,
    )
    if args.scores:
        report.save_scores(args.scores)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(report.to_text())
    if report.failures:
        print(f"mmcl: {len(report.failures)} files failed (see above)", file=sys.stderr)
        return 1
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from mmcl.predict import export_checkpoint

    res = export_checkpoint(args.checkpoint, args.out, onnx=args.onnx, torchscript=args.torchscript, **_shape_kwargs(args))
    spec = res["spec"]
    summary = {
        "out": args.out,
        "checkpoint_kind": res["checkpoint_kind"],
        "backbone": spec.name,
        "classes": spec.num_classes,
        "layout": spec.layout,
        "persons": spec.num_persons,
        "input": "x".join(map(str, res["example_shape"][1:])),
        "parameters": res["parameters"],
        "GMACs": round(res["macs"] / 1e9, 4),
        "files": res["paths"],
    }
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(f"exported {spec.name} ({spec.num_classes} classes, {spec.layout}, {spec.num_persons} persons) from {args.checkpoint} ({res['checkpoint_kind']})")
    print(f"  parameters {res['parameters']:,}   GMACs {res['macs'] / 1e9:.4f} (input {summary['input']})")
    for kind, path in res["paths"].items():
        print(f"  {kind:<12} {path}")
    return 0
