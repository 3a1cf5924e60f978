"""``mmcl prepare custom``: your own skeleton files -> a prepared dataset (store + one benchmark folder).

Samples are read by :func:`mmcl.formats.skeleton_file.read_skeleton_file`, the very function
``mmcl predict`` reads a raw file with, with the same 2-D options (persons kept, normalisation, image
size) that the trained model's card then carries: a file gives the same input in training and in
prediction. What is read (docs/custom-data.md):

* ``--samples DIR``: one sample per file (Kinetics-Skeleton or COCO-style ``.json``, ``.npy``
  C×T×V×M, NW-UCLA ``.json``, UTD ``.mat``, NTU ``.skeleton``) or per OpenPose folder; the sample name
  is the file stem (folder name). ``--labels labels.csv`` (header ``name,label[,split][,subject]``)
  names each sample's class and optionally its split and subject.
* ``--samples FILE.pkl``: a PYSKL annotation pickle (labels and splits inside; a CSV may still
  override labels).

Classes come from ``--classes`` (one name per line) or the CSV's labels (integers: 0..max; names:
sorted). Splits: the CSV's ``split`` column, the PYSKL ``split`` dict (``<bench>_train`` /
``<bench>_val|test``), or carved (:func:`mmcl.datasets.splits.carve_test_split`: by subject when
the CSV gives subjects, else stratified by class). Bad files are skipped and listed in
``<out>/prepare_report.{json,txt}``; the outputs are committed as one set.
"""

from __future__ import annotations

import csv
import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

import mmcl
from mmcl.datasets.splits import carve_test_split
from mmcl.formats.coco_keypoints import is_coco_keypoints, read_coco_keypoints
from mmcl.formats.errors import DataError
from mmcl.formats.kinetics_json import is_kinetics_json, read_kinetics_json
from mmcl.formats.openpose_json import read_openpose_folder
from mmcl.formats.pose2d import CHANNELS_2D, NORMALISATIONS, read_json
from mmcl.formats.pyskl import PYSKL_SUFFIXES, read_pyskl
from mmcl.formats.sample_store import CHANNELS_XYZ, write_dataset
from mmcl.formats.skeleton_file import SUPPORTED_SUFFIXES, Pose2DInput, read_skeleton_file
from mmcl.io import atomic_write_text, check_output_folder, printable
from mmcl.skeleton.layouts import LAYOUT_BY_JOINTS, get_layout, layout_key
from mmcl.skeleton.transforms import fit_persons, valid_frame_count

__all__ = ["prepare_custom", "CustomReport", "read_labels_csv", "CUSTOM_BENCHMARK"]

CUSTOM_BENCHMARK = "custom"
REPORT_FILES = ("prepare_report.json", "prepare_report.txt")
_TEST_NAMES = {"test": "test", "val": "test", "valid": "test", "validation": "test", "train": "train"}


@dataclass
class CustomReport:
    """What a :func:`prepare_custom` run did (``<out>/prepare_report.{json,txt}``)."""

    samples_path: str
    out: str
    layout: str = ""
    channels: list[str] = field(default_factory=list)
    files_found: int = 0
    samples: int = 0
    failed: list[dict[str, str]] = field(default_factory=list)  # name, path, message
    unlabelled: list[str] = field(default_factory=list)  # files without a row in the labels CSV
    missing: list[str] = field(default_factory=list)  # CSV rows without a file
    classes: list[str] = field(default_factory=list)
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    splits_from: str = ""
    preprocessing: dict[str, Any] = field(default_factory=dict)
    train_with: list[str] = field(default_factory=list)
    seconds: float = 0.0
    mmcl_version: str = mmcl.__version__

    def to_text(self) -> str:
        lines = [
            f"mmcl {self.mmcl_version} prepare custom: {self.samples_path} -> {self.out}",
            f"layout={get_layout(self.layout).name if self.layout else '?'}  channels={','.join(self.channels)}  "
            f"files found={self.files_found}  prepared={self.samples}  failed={len(self.failed)}  "
            f"unlabelled={len(self.unlabelled)}  missing files={len(self.missing)}  time={self.seconds:.1f}s",
            f"{len(self.classes)} classes: {', '.join(self.classes[:20])}{' …' if len(self.classes) > 20 else ''}",
            f"splits: {self.splits_from}",
        ]
        lines += [f"  {b}: train={c.get('train', 0)} test={c.get('test', 0)}" for b, c in self.counts.items()]
        if self.failed:
            lines.append("failed samples (skipped):")
            lines += [f"  {e['message']}" for e in self.failed]
        for title, items in (("files without a label (skipped):", self.unlabelled), ("labelled samples without a file:", self.missing)):
            if items:
                lines.append(title)
                lines += [f"  {x}" for x in items[:50]] + ([f"  … {len(items) - 50} more"] if len(items) > 50 else [])
        if self.train_with:
            lines.append("train with: mmcl train " + " ".join(self.train_with))
        return "\n".join(lines) + "\n"


def read_labels_csv(path: str | Path) -> dict[str, dict[str, str]]:
    """name -> {"label", and "split"/"subject" when the CSV has them}; errors name the file and line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read the labels ({exc})", path) from None
    reader = csv.reader(text.splitlines())
    header = [h.strip().lower() for h in next(reader, [])]
    if "name" not in header or "label" not in header:
        raise DataError(f"the first line must name the columns, with name and label (got {header})", path)
    col = {h: i for i, h in enumerate(header)}
    rows: dict[str, dict[str, str]] = {}
    for line, row in enumerate(reader, start=2):
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) != len(header):
            raise DataError(f"line {line} has {len(row)} fields, the header {len(header)}", path)
        name = row[col["name"]].strip()
        if not name or name in rows:
            raise DataError(f"line {line}: {'empty' if not name else 'duplicate'} sample name {name!r}", path)
        rows[name] = {k: row[col[k]].strip() for k in ("label", "split", "subject") if k in col}
    if not rows:
        raise DataError("has no sample rows", path)
    return rows


def _class_list(labels: Sequence[str], classes_file: str | Path | None) -> list[str]:
    if classes_file is not None:
        names = [ln.strip() for ln in Path(classes_file).read_text(encoding="utf-8").splitlines() if ln.strip()]
        if not names or len(set(names)) != len(names):
            raise DataError("must list distinct class names, one per line", classes_file)
        return names
    if all(lab.isdigit() for lab in labels):
        return [str(i) for i in range(max(int(lab) for lab in labels) + 1)]
    return sorted(set(labels))


def _label_index(label: str, classes: list[str]) -> int:
    if label in classes:
        return classes.index(label)
    if label.isdigit() and int(label) < len(classes):
        return int(label)
    raise ValueError(f"label {label!r} is not one of the {len(classes)} classes")


def _discover(folder: Path) -> tuple[dict[str, Path], list[str]]:
    """name -> path of every sample below ``folder`` (files by stem, OpenPose folders by name), and duplicates."""
    found: dict[str, Path] = {}
    dupes: list[str] = []
    entries = sorted(folder.rglob("*"))
    for p in entries:
        is_clip_dir = p.is_dir() and any(p.glob("*_keypoints.json"))
        is_file = p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES and not p.name.endswith("_keypoints.json")
        if not (is_clip_dir or is_file):
            continue
        name = p.name if is_clip_dir else p.stem
        if name in found:
            dupes.append(f"{printable(p)}: duplicate of {printable(found[name])}")
            continue
        found[name] = p
    return found, dupes


def prepare_custom(
    samples: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    labels: str | os.PathLike[str] | None = None,
    classes: str | os.PathLike[str] | None = None,
    layout: str | None = None,
    persons: int = 2,
    normalise: str = "image",
    image_size: Sequence[float] | None = None,
    benchmark: str = CUSTOM_BENCHMARK,
    test_fraction: float = 0.2,
    seed: int = 0,
    dataset: str = "custom",
    progress: bool = True,
) -> CustomReport:
    """Prepare a custom dataset into ``out`` (store ``out/samples``, benchmark ``out/<benchmark>``)."""
    t0 = time.perf_counter()
    src, out = Path(samples), check_output_folder(out)
    if normalise not in NORMALISATIONS:
        raise ValueError(f"--normalise must be one of {', '.join(NORMALISATIONS)}, got {normalise!r}")
    if persons < 1:
        raise ValueError(f"--persons must be >= 1, got {persons}")
    report = CustomReport(samples_path=printable(src), out=str(out))
    rows = read_labels_csv(labels) if labels is not None else {}

    # ---- what to read: (name, reader) pairs; PYSKL brings labels and splits
    pyskl_split: dict[str, list[str]] = {}
    items: list[tuple[str, Any]] = []  # (name, path or PysklSample)
    pyskl_labels: dict[str, int] = {}
    if src.is_file() and src.suffix.lower() in PYSKL_SUFFIXES:
        anns, pyskl_split = read_pyskl(src)
        seen = set()
        for a in anns:
            if a.name in seen:
                report.failed.append({"name": a.name, "path": printable(src), "message": f"{printable(src)}: duplicate frame_dir {a.name!r}"})
                continue
            seen.add(a.name)
            items.append((a.name, a))
            if a.label is not None:
                pyskl_labels[a.name] = a.label
    elif src.is_dir():
        found, dupes = _discover(src)
        report.failed += [{"name": "", "path": d.split(":")[0], "message": d} for d in dupes]
        items = list(found.items())
    else:
        raise FileNotFoundError(f"--samples {src}: not a folder of skeleton files or a PYSKL .pkl file")
    report.files_found = len(items)
    if not items:
        raise ValueError(f"--samples {src}: no skeleton files ({', '.join(SUPPORTED_SUFFIXES)}) or OpenPose folders found")
    if rows:
        names_present = {n for n, _ in items}
        report.unlabelled = sorted(n for n, _ in items if n not in rows and n not in pyskl_labels)
        report.missing = sorted(set(rows) - names_present)
        items = [(n, it) for n, it in items if n in rows or n in pyskl_labels]
    elif not pyskl_labels:
        raise ValueError("give --labels labels.csv (name,label[,split][,subject]); only PYSKL pickles carry their labels")
    else:
        report.unlabelled = sorted(n for n, _ in items if n not in pyskl_labels)
        items = [(n, it) for n, it in items if n in pyskl_labels]

    label_text = {n: rows[n]["label"] if n in rows else str(pyskl_labels[n]) for n, _ in items}
    class_names = _class_list(list(label_text.values()), classes)

    # ---- the layout: given, or from the first readable sample's joint count
    lay = get_layout(layout) if layout else None
    options = None
    data: list[np.ndarray] = []
    names: list[str] = []
    label_idx: list[int] = []
    channels: tuple[str, ...] | None = None
    bar = tqdm(items, unit="sample", desc="read", file=sys.stderr, disable=not progress)
    for name, item in bar:
        path = src if not isinstance(item, Path) else item
        try:
            y = _label_index(label_text[name], class_names)
            if lay is None:
                lay = get_layout(LAYOUT_BY_JOINTS[_joint_count(item)])
            options = Pose2DInput(lay.num_joints, persons, normalise, tuple(image_size or ()))
            if isinstance(item, Path):
                raw = read_skeleton_file(item, pose=options)
                x, ch = raw.data, raw.channels or (CHANNELS_XYZ if raw.data.shape[0] == 3 else ("x", "y"))
            elif item.xyz is not None:
                x, ch = item.xyz, CHANNELS_XYZ
            else:
                x, ch = options.sample(item.pose), CHANNELS_2D
            if x.shape[2] != lay.num_joints:
                raise ValueError(f"{x.shape[2]} joints; the layout {lay.name} has {lay.num_joints}")
            if channels is None:
                channels = tuple(ch)
            elif tuple(ch) != channels:
                raise ValueError(f"channels {', '.join(ch)}; the samples before had {', '.join(channels)}")
            x = fit_persons(x, persons)
            valid = valid_frame_count(x)
            if valid < 1:
                raise ValueError("no non-zero frame")
            data.append(np.ascontiguousarray(x[:, :valid], dtype=np.float32))
            names.append(name)
            label_idx.append(y)
        except (ValueError, OSError, KeyError) as exc:
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            if isinstance(exc, KeyError):
                text = f"{_joint_count(item)} joints match no built-in layout; give --layout NAME or a layout .yaml"
            where = printable(path)
            report.failed.append({"name": name, "path": where, "message": text if where in text else f"{where} ({name}): {text}"})
    bar.close()
    if not data:
        raise ValueError(f"no sample could be read from {src}; see the reasons above:\n"
                         + "\n".join(e["message"] for e in report.failed[:10]))

    # ---- splits
    benches = _splits(names, label_idx, rows, pyskl_split, benchmark, test_fraction, seed, report)
    lkey = layout_key(lay)
    pre = {"persons": persons, "normalise": normalise if channels == CHANNELS_2D else "none",
           "image_size": [float(v) for v in image_size or ()], "reader": "mmcl.formats.skeleton_file.read_skeleton_file"}
    report.layout, report.channels, report.classes, report.preprocessing = lkey, list(channels), class_names, pre
    report.samples = len(data)
    groups = [rows.get(n, {}).get("subject", "") for n in names] if any(r.get("subject") for r in rows.values()) else None
    write_dataset(
        out, data, label_idx, names, dataset=dataset, layout=lkey, num_classes=len(class_names), benchmarks=benches,
        channels=channels, groups=groups,
        store_meta={"class_names": class_names, "preprocessing": pre, "sources": {"samples": printable(src.resolve())}},
        benchmark_meta={"class_names": class_names, "preprocessing": pre},
    )
    first = next(iter(benches))
    report.train_with = [
        f"data.path={out / first}", f"data.dataset={dataset}", f"data.layout={lay.name if lkey == lay.name else layout}",
        f"data.num_classes={len(class_names)}", f"data.num_persons={persons}", f"model.in_channels={len(channels)}",
        f"data.channels=[{','.join(channels)}]",
    ]
    if channels == CHANNELS_2D:
        report.train_with += [f"data.normalise={normalise}"]
        if image_size:
            report.train_with.append(f"data.image_size=[{','.join(f'{v:g}' for v in image_size)}]")
    report.seconds = time.perf_counter() - t0
    atomic_write_text(out / REPORT_FILES[0], json.dumps(asdict(report), indent=1, ensure_ascii=False) + "\n")
    atomic_write_text(out / REPORT_FILES[1], report.to_text())
    return report


def _joint_count(item: Any) -> int:
    """V of a sample, to pick a built-in layout when none is given."""
    if isinstance(item, Path):
        return _peek_joints(item)
    return int(item.xyz.shape[2] if item.xyz is not None else item.pose.keypoints[0].shape[1])


def _peek_joints(path: Path) -> int:
    """Joint count of a file without a layout: 2-D readers give it before any person selection."""
    if path.is_dir():
        pose = read_openpose_folder(path)
    elif path.suffix.lower() == ".json":
        doc = read_json(path)
        if is_kinetics_json(doc):
            pose = read_kinetics_json(path, doc)[0]
        elif is_coco_keypoints(doc):
            pose = read_coco_keypoints(path, doc)
        else:
            return read_skeleton_file(path).data.shape[2]
    else:
        return read_skeleton_file(path).data.shape[2]
    return int(next(k.shape[1] for k in pose.keypoints))


def _splits(names: list[str], labels: list[int], rows: dict[str, dict[str, str]], pyskl_split: dict[str, list[str]],
            benchmark: str, fraction: float, seed: int, report: CustomReport) -> dict[str, dict[str, np.ndarray]]:
    pos = {n: i for i, n in enumerate(names)}
    if rows and any(r.get("split") for r in rows.values()):
        parts: dict[str, list[int]] = {"train": [], "test": []}
        for n in names:
            given = rows[n].get("split", "").lower()
            if given not in _TEST_NAMES:
                raise ValueError(f"sample {n}: split {given!r} is not train, test or val")
            parts[_TEST_NAMES[given]].append(pos[n])
        report.splits_from = "the labels CSV (split column)"
        out = {benchmark: {k: np.array(v, dtype=np.int64) for k, v in parts.items()}}
    elif pyskl_split:
        out = {}
        for key, members in pyskl_split.items():
            bench, _, part = key.rpartition("_")
            bench, part = (bench or benchmark), _TEST_NAMES.get(part.lower(), None)
            if part is None:
                bench, part = benchmark, _TEST_NAMES.get(key.lower())
            if part is None:
                continue
            out.setdefault(bench, {"train": np.zeros(0, np.int64), "test": np.zeros(0, np.int64)})
            out[bench][part] = np.array(sorted(pos[n] for n in members if n in pos), dtype=np.int64)
        if not out:
            raise ValueError(f"the PYSKL split keys {sorted(pyskl_split)} name no train/val/test part")
        report.splits_from = f"the PYSKL split ({', '.join(sorted(pyskl_split))})"
    else:
        groups = [rows[n]["subject"] for n in names] if rows and all(rows[n].get("subject") for n in names) else None
        train, test = carve_test_split(labels, groups, fraction, seed)
        report.splits_from = (f"carved: {fraction:g} of the {'subjects' if groups else 'samples of each class'} "
                              f"to test (seed {seed})")
        out = {benchmark: {"train": train, "test": test}}
    report.counts = {b: {k: int(len(v)) for k, v in s.items()} for b, s in out.items()}
    return out
