"""``mmcl prepare ntu|nw-ucla|custom``: raw dataset downloads or your own files -> prepared benchmark folders."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

__all__ = ["register"]


def register(sub: Any) -> None:
    p = sub.add_parser("prepare", help="turn raw dataset downloads into prepared benchmark folders")
    psub = p.add_subparsers(dest="dataset_kind", metavar="DATASET", required=True)

    q = psub.add_parser(
        "ntu",
        help="NTU RGB+D 60/120 raw .skeleton folders -> all benchmarks of the dataset",
        description=(
            "Parse, denoise, centre and split raw NTU .skeleton files exactly as the reference pipeline "
            "(the official CTR-GCN scripts). Corrupt files are skipped and listed in <out>/prepare_report.txt; an interrupted "
            "run resumes without redoing finished files."
        ),
    )
    q.add_argument("--skeletons", nargs="+", required=True, metavar="DIR", help="folders holding <name>.skeleton files (NTU-120: both nturgb+d_skeletons and nturgb+d_skeletons120)")
    q.add_argument("--dataset", required=True, choices=["ntu60", "ntu120"])
    q.add_argument("--out", required=True, help="output root; benchmarks go to OUT/xsub, OUT/xview (ntu60) or OUT/xsub, OUT/xset (ntu120)")
    q.add_argument("--workers", type=int, default=2, help="parallel parser processes (default 2)")
    q.add_argument("--strict", action="store_true", help="stop at the first corrupt file instead of skipping it")
    q.add_argument("--fix-quirks", action="store_true", help="correct the reference pipeline's data quirks (re-appearing bodies, one-frame overlaps, lone-actor fill; see the README); off by default for arrays identical to the reference")
    q.add_argument("--npz", action="store_true", help="also write the reference npz files (NTU60_CS.npz, ...)")
    q.add_argument("--no-colors", action="store_true", help="do not keep the colour-pixel joint coordinates (needed for skeleton-guided RGB crops)")
    q.add_argument("--keep-cache", action="store_true", help="keep the per-file resume cache after a successful run")
    q.set_defaults(func=cmd_prepare_ntu)

    q = psub.add_parser("nw-ucla", help="NW-UCLA all_sqe JSON folder -> prepared cross-view folder")
    q.add_argument("--all-sqe", required=True, help="the all_sqe folder of JSON files")
    q.add_argument("--out", required=True, help="output root (writes OUT/nw-ucla/cross_view)")
    q.set_defaults(func=cmd_prepare_nwucla)

    q = psub.add_parser(
        "custom",
        help="your own skeleton files (pose-estimator JSON, PYSKL .pkl, .npy, ...) -> a prepared dataset",
        description=(
            "Read one sample per file (Kinetics-Skeleton or COCO-style .json, OpenPose *_keypoints.json folders, .npy "
            "C×T×V×M, ...) or a PYSKL annotation pickle, with the reader `mmcl predict` uses; keep the best --persons "
            "people, normalise 2-D coordinates, split, and write OUT/samples + OUT/<benchmark>. Bad files are skipped "
            "and listed in OUT/prepare_report.txt. Formats and options: docs/custom-data.md."
        ),
    )
    q.add_argument("--samples", required=True, help="folder of sample files / OpenPose folders, or a PYSKL .pkl")
    q.add_argument("--labels", help="CSV with a header: name,label[,split][,subject] (optional for PYSKL pickles)")
    q.add_argument("--classes", help="class names, one per line (default: the labels of the CSV)")
    q.add_argument("--layout", help="built-in layout name (coco17, openpose18, mediapipe33, ntu25, kinect20) or a layout "
                                   ".yaml; default: the built-in layout with the files' joint count")
    q.add_argument("--out", required=True, help="output folder (writes OUT/samples and OUT/<benchmark>)")
    q.add_argument("--persons", type=int, default=2, help="people kept per sample, best mean keypoint score first (default 2)")
    q.add_argument("--normalise", "--normalize", default="image", choices=["image", "box", "none"],
                   help="2-D coordinates: image: [-1, 1] over the frame (default); box: the people's box over the clip; none: pixels")
    q.add_argument("--image-size", help="WIDTHxHEIGHT of the frames, for formats that do not store it (OpenPose, COCO results)")
    q.add_argument("--benchmark", default="custom", help="benchmark folder name when the splits are not named (default custom)")
    q.add_argument("--test-fraction", type=float, default=0.2, help="share carved for test when no split is given (default 0.2)")
    q.add_argument("--seed", type=int, default=0, help="seed of the carved split (default 0)")
    q.add_argument("--dataset", default="custom", help="dataset name written into the metadata and model cards (default custom)")
    q.set_defaults(func=cmd_prepare_custom)


def cmd_prepare_ntu(args: argparse.Namespace) -> int:
    from mmcl.prepare.ntu import prepare_ntu

    report = prepare_ntu(
        [Path(d) for d in args.skeletons],
        args.dataset,
        Path(args.out),
        workers=args.workers,
        strict=args.strict,
        fix_quirks=args.fix_quirks,
        npz=args.npz,
        colors=not args.no_colors,
        keep_cache=args.keep_cache,
        progress=sys.stderr.isatty(),  # a bar in a terminal, none in a log file
    )
    print(report.to_text())
    return 0 if report.samples else 1


def cmd_prepare_nwucla(args: argparse.Namespace) -> int:
    from mmcl.prepare.nwucla import prepare_nwucla

    root = prepare_nwucla(args.all_sqe, args.out, progress=sys.stderr.isatty())
    meta = json.loads((Path(root) / "meta.json").read_text())
    print(f"prepared NW-UCLA cross-view: {meta.get('counts')} -> {root}")
    return 0


def _image_size(text: str | None) -> tuple[float, float] | None:
    if text is None:
        return None
    try:
        w, h = (float(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"--image-size must be WIDTHxHEIGHT, e.g. 1920x1080, got {text!r}") from None
    return w, h


def cmd_prepare_custom(args: argparse.Namespace) -> int:
    from mmcl.prepare.custom import prepare_custom

    report = prepare_custom(
        args.samples, args.out, labels=args.labels, classes=args.classes, layout=args.layout, persons=args.persons,
        normalise=args.normalise, image_size=_image_size(args.image_size), benchmark=args.benchmark,
        test_fraction=args.test_fraction, seed=args.seed, dataset=args.dataset, progress=sys.stderr.isatty(),
    )
    print(report.to_text(), end="")
    return 0
