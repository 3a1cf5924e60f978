"""``mmcl predict``, ``mmcl zero-shot``, ``mmcl export``: using a trained model (thin wrappers).

Libraries: :mod:`mmcl.predict` (a model ready from any checkpoint, raw-file classification),
:mod:`mmcl.export` and :mod:`mmcl.zeroshot` (REFERENCE §9 evaluation).
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from typing import Any

__all__ = ["register"]

from mmcl.skeleton.streams import STREAMS  # noqa: E402  (light: numpy only)

CHECKPOINT_HELP = "mmcl .ckpt, exported model folder/.safetensors, or an official CTR-GCN / HD-GCN / MMCL .pt"

PREDICT_EPILOG = """\
files:
  .skeleton  raw NTU RGB+D file: reference parse, denoise, centring, then the model's test transform
  .json      NW-UCLA all_sqe file (20 Kinect-v1 joints)
  .mat       UTD-MHAD *_skeleton.mat (20 Kinect-v1 joints)
  .npy       prepared (already centred) sample: C×T×V×M, T×V×C (one person) or T×(M·V·C), V = 25 or 20
  FOLDER     every file of these kinds below it
  The model card decides the preprocessing: layout, persons, test transform and stream (bone, motion).
  20-joint input to an NTU-25 model needs --cross-layout (interpolated to 25 joints, zero-shot preprocessing).

examples:
  mmcl predict --checkpoint runs/ntu120_xsub_joint/checkpoints/best.ckpt S001C001P001R001A001.skeleton
  mmcl predict --checkpoint ntu120_xsub_joint.pt --dataset ntu120 a27_s1_t1_skeleton.mat --json
  mmcl predict --checkpoint exported/ a01_s01_e00_v03.json sample.npy --top 3
  mmcl predict --checkpoint exported/ --runtime onnx ../shared/data/nw-ucla/all_sqe --json

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
files: model.safetensors + model.json (weights and the model card: classes, layout, stream, test transform),
model.onnx (needs the export extra: pip install 'mmcl[export]'; skipped with a note when it is missing) and
model.torchscript.pt. The ONNX/TorchScript graphs take joint coordinates after the test transform and apply
the stream themselves.

examples:
  mmcl export --checkpoint runs/ntu120_xsub_joint/checkpoints/best.ckpt --out exported/ntu120_joint
  mmcl export --checkpoint official_mmcl_ntu120.pt --dataset ntu120 --stream bone --out exported/mmcl_bone --no-onnx
"""


def _wrap(text: str) -> str:
    return textwrap.fill(text, width=100)


def _shape_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model card (official checkpoints only; mmcl checkpoints carry theirs and these must agree)")
    g.add_argument("--dataset", dest="model_dataset", metavar="{ntu60,ntu120,nwucla}", help="fixes classes, layout, persons and class names")
    g.add_argument("--stream", choices=list(STREAMS), help="the stream the weights were trained on (default joint)")
    g.add_argument("--layout", choices=["ntu25", "kinect20"], help="skeleton layout (default: inferred from the weights)")
    g.add_argument("--num-classes", type=int, help="classes (default: rows of fc.weight)")
    g.add_argument("--persons", type=int, help="persons per sample (default: data_bn width / (joints × 3))")


def register(sub: Any) -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    p = sub.add_parser(
        "predict",
        help="classify raw skeleton files (.skeleton, .json, .mat, .npy) with any checkpoint",
        description=_wrap("Print the top classes (softmax probabilities) of each skeleton file. The model shape comes "
        "from the checkpoint's model card (classes, layout, stream, test transform); official checkpoints need at most --dataset and --stream."),
        epilog=PREDICT_EPILOG,
        formatter_class=fmt,
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="skeleton files, one sample each, or folders of them")
    p.add_argument("--checkpoint", required=True, help=CHECKPOINT_HELP)
    p.add_argument("--top", type=int, default=5, help="classes shown per file (default 5)")
    p.add_argument("--json", action="store_true", help="one JSON object per file and line (failed files: {'file', 'error'})")
    p.add_argument("--class-names", metavar="FILE", help="class names, one per line in label order (default: the dataset's, else indices)")
    p.add_argument(
        "--lone-actor", choices=["auto", "duplicate", "zero"], default="auto",
        help="NTU files with one actor: copy it into the second slot (NTU-120 reference data) or leave it zero; auto: duplicate for 120-class models",
    )
    p.add_argument("--batch-size", type=int, default=16, help="samples per forward pass (default 16)")
    p.add_argument("--runtime", choices=["torch", "onnx", "torchscript"], default="torch",
                   help="torch (default: any checkpoint, fp32 eager); onnx / torchscript: the graphs of an exported folder")
    p.add_argument("--cross-layout", action="store_true", help="allow 20-joint Kinect-v1 files for an NTU-25 model (interpolated; zero-shot guesses)")
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
    p.add_argument("--stream", choices=list(STREAMS), help="official weights only: the stream they were trained on (default joint)")
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
    p.add_argument("--onnx", action=argparse.BooleanOptionalAction, default=None, help="write model.onnx (default: when the onnx package is installed)")
    p.add_argument("--onnx-exporter", choices=["auto", "dynamo", "torchscript"], default="auto",
                   help="torch's ONNX exporter: dynamo (default when onnxscript is installed) or the faster TorchScript-based one")
    p.add_argument("--torchscript", action=argparse.BooleanOptionalAction, default=True, help="write model.torchscript.pt (default on)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    _shape_args(p)
    p.set_defaults(func=cmd_export)


def _shape_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    return {"dataset": args.model_dataset, "stream": args.stream, "layout": args.layout, "num_classes": args.num_classes, "num_persons": args.persons}


def _notes(notes: list[str]) -> None:
    for note in notes:
        print(f"mmcl: note: {note}", file=sys.stderr)


def cmd_predict(args: argparse.Namespace) -> int:
    from mmcl.formats.skeleton_file import expand_inputs
    from mmcl.predict import load_model, predict_files

    if args.top < 1:
        raise ValueError(f"--top must be >= 1, got {args.top}")
    loaded = load_model(args.checkpoint, class_names_file=args.class_names, device=args.device, runtime=args.runtime, **_shape_kwargs(args))
    files = expand_inputs(args.files)
    _notes(loaded.opened.notes)
    if not args.json:
        print(f"model: {loaded.card.describe()}, {loaded.kind} ({args.runtime} runtime); input: {loaded.card.input.describe()}")
    report = predict_files(loaded, files, top=args.top, lone_actor=args.lone_actor, batch_size=args.batch_size, cross_layout=args.cross_layout)
    _notes(report.notes)
    by_file = {p.file: p for p in report.predictions}
    failed = dict(report.failures)
    for f in files:
        if args.json:
            obj = by_file[f].to_dict() if f in by_file else {"file": f, "error": failed[f]}
            print(json.dumps(obj))
        elif f in by_file:
            pred = by_file[f]
            print(f"{pred.file}  ({pred.kind}, {pred.frames} frames)")
            for rank, (label, name, score) in enumerate(pred.top, 1):
                print(f"  {rank}. {score:7.2%}  {label:>4}  {name if name is not None else ''}".rstrip())
    if report.failures:
        n = len(files)
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
        stream=args.stream,
        device=args.device,
    )
    _notes(report.notes)
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
    from mmcl.export import export_checkpoint
    from mmcl.models.flops import format_cost

    res = export_checkpoint(args.checkpoint, args.out, onnx=args.onnx, torchscript=args.torchscript, onnx_exporter=args.onnx_exporter, **_shape_kwargs(args))
    card, cost = res["card"], res["cost"]
    summary = {
        "out": args.out,
        "checkpoint_kind": res["checkpoint_kind"],
        "model": card.describe(),
        "backbone": card.backbone,
        "classes": card.num_classes,
        "layout": card.input.layout,
        "persons": card.input.num_persons,
        "stream": card.input.stream,
        "input": "x".join(map(str, res["example_shape"][1:])),
        **cost,
        "files": res["paths"],
        "notes": res["notes"],
    }
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    _notes(res["notes"])
    print(f"exported {card.describe()} from {args.checkpoint} ({res['checkpoint_kind']})")
    print(f"  input {summary['input']}: {card.input.describe()}")
    print(f"  {format_cost(cost)}")
    for kind, path in res["paths"].items():
        print(f"  {kind:<12} {path}")
    return 0
