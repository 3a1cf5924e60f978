"""Classify raw skeleton files with any checkpoint a user may hold (``mmcl predict``), and export it.

Why a separate path from ``mmcl test``: a user with one recording and a downloaded checkpoint has
neither a prepared folder nor a config. Everything needed is therefore taken from the checkpoint:

* **model shape** — stored builder arguments of mmcl checkpoints / exported models
  (:func:`mmcl.engine.checkpoint.checkpoint_builder_args`), or, for official CTR-GCN / MMCL files,
  ``dataset=`` (fixes classes, layout, persons) or inference from the state-dict shapes
  (:func:`infer_model_shape`: ``fc.weight`` rows = classes, ``l1.gcn1.PA`` = joints, first graph
  convolution = input channels, ``data_bn`` width = persons × joints × channels);
* **input transform** — the test transform the model was evaluated with: NTU-25 models get the
  centre crop (p = 0.95) + linear resize to 64 frames (REFERENCE §3.1), Kinect-v1 (20-joint) models
  the NW-UCLA test transform (REFERENCE §3.3); window / p_interval from a stored config when present.

Supported files (one sample each):

============  ======================================================================================
``.skeleton`` raw NTU RGB+D text file: reference parse + denoise + centring (REFERENCE §2), then the
              model's test transform. A lone actor is duplicated into the second slot for NTU-120
              models (what the reference NTU-120 preparation stores, REFERENCE §2.6) and left zero
              otherwise (``lone_actor=``).
``.json``     NW-UCLA ``all_sqe`` file (T×20×3, Kinect v1).
``.mat``      UTD-MHAD ``*_skeleton.mat`` (``d_skel``, Kinect v1).
``.npy``      a prepared array, already centred as in a prepared folder: ``C×T×V×M``, ``T×V×C``
              (one person) or ``T×(M·V·C)`` (one row of ``x_*.npy``); V = 25 (NTU) or 20 (Kinect v1).
============  ======================================================================================

20-joint (Kinect v1) sequences given to an NTU-25 model are interpolated to 25 joints
(:func:`mmcl.skeleton.interpolate.kinect20_to_ntu25`) and preprocessed as the reference zero-shot
script does (:func:`mmcl.datasets.kinect_v1.zero_shot_preprocess`, REFERENCE §9.1). 25-joint input
cannot feed a 20-joint model.

Scores are softmax probabilities of the logits.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = [
    "DATASET_SHAPES",
    "TOP_K",
    "PredictInputError",
    "ModelSpec",
    "LoadedModel",
    "RawSkeleton",
    "Prediction",
    "PredictionReport",
    "infer_model_shape",
    "resolve_model_spec",
    "load_model",
    "read_skeleton_file",
    "model_input",
    "predict_arrays",
    "predict_files",
    "export_checkpoint",
]

# dataset -> model shape (REFERENCE §2.6/§5.1 for NTU: 25 joints, 2 actors; §3.3 for NW-UCLA: 20 joints, 1 person).
DATASET_SHAPES: dict[str, dict[str, Any]] = {
    "ntu60": {"num_classes": 60, "layout": "ntu25", "num_persons": 2},
    "ntu120": {"num_classes": 120, "layout": "ntu25", "num_persons": 2},
    "nwucla": {"num_classes": 10, "layout": "kinect20", "num_persons": 1},
}
_DATASET_ALIASES = {"nw-ucla": "nwucla", "ucla": "nwucla", "nw_ucla": "nwucla"}
TOP_K = 5  # top-5 accuracy/predictions, as everywhere in the reference (REFERENCE §6.4)
LAYOUT_BY_JOINTS = {25: "ntu25", 20: "kinect20"}  # mmcl.skeleton.layouts
DEFAULT_TRANSFORM = {"ntu25": "ntu", "kinect20": "ucla"}  # REFERENCE §3.1 (NTU) / §3.3 (NW-UCLA)
REFERENCE_BASE_CHANNELS = 64  # CTR-GCN width of l1-l4 (REFERENCE §5.2); fc input = 4 × base
_FLAG_NAMES = {"layout": "--layout", "num_classes": "--num-classes", "num_persons": "--persons"}
NTU120_LONE_ACTOR_DUPLICATED = "ntu120"  # REFERENCE §2.6 step 2: the NTU-120 script duplicates a lone actor


class PredictInputError(ValueError):
    """A skeleton file cannot be classified; the message names the file."""


def normalize_dataset(name: str | None) -> str | None:
    if name is None:
        return None
    key = name.lower()
    return _DATASET_ALIASES.get(key, key)


# ----------------------------------------------------------------------------- model shape
@dataclass
class ModelSpec:
    """Everything needed to rebuild a backbone and feed it: builder args + the test transform."""

    name: str
    num_classes: int
    layout: str
    num_persons: int
    in_channels: int = 3
    base_channels: int = REFERENCE_BASE_CHANNELS
    dataset: str | None = None  # for class names; None when unknown
    transform: str = "ntu"  # "ntu" (crop + resize) | "ucla" (centre, normalise, sample)
    window: int = 64
    p_interval: tuple[float, ...] = (0.95,)
    source: str = "checkpoint"  # where the shape came from: checkpoint | dataset | inferred

    def builder_args(self) -> dict[str, Any]:
        args: dict[str, Any] = {
            "num_classes": self.num_classes,
            "layout": self.layout,
            "num_persons": self.num_persons,
            "in_channels": self.in_channels,
        }
        if self.base_channels != REFERENCE_BASE_CHANNELS:
            args["base_channels"] = self.base_channels
        return args

    @property
    def num_joints(self) -> int:
        from mmcl.skeleton.layouts import get_layout

        return get_layout(self.layout).num_joints

    def example_shape(self) -> tuple[int, int, int, int, int]:
        return (1, self.in_channels, self.window, self.num_joints, self.num_persons)


def _first(sd: Mapping[str, torch.Tensor], *keys: str) -> torch.Tensor | None:
    for k in keys:
        if k in sd:
            return sd[k]
    return None


def infer_model_shape(state_dict: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """Builder arguments read off a backbone state dict (official or mmcl key names).

    Saves users a flag: classes = ``fc.weight`` rows; joints = size of the graph (``l1.gcn1.PA``);
    input channels = input width of the first graph convolution; persons = ``data_bn`` width /
    (joints × channels); CTRS-GCN is recognised by its static subset convolutions (``conv_d``).
    """
    from mmcl.models.reference import unwrap_checkpoint

    sd = unwrap_checkpoint(state_dict)
    if any(k.startswith("backbone.") for k in sd):
        sd = {k[len("backbone."):]: v for k, v in sd.items() if k.startswith("backbone.")}
    fc = _first(sd, "fc.weight")
    bn = _first(sd, "data_bn.weight", "data_bn.running_mean")
    graph = _first(sd, "l1.gcn1.PA", "blocks.0.graph_conv.adjacency")
    first = _first(sd, "l1.gcn1.down.0.weight", "blocks.0.graph_conv.down.conv.weight", "l1.gcn1.conv_d.0.weight")
    missing = [n for n, t in (("fc.weight", fc), ("data_bn.weight", bn), ("l1.gcn1.PA", graph), ("l1.gcn1.down.0.weight", first)) if t is None]
    if missing:
        raise ValueError(f"cannot infer the model shape: the state dict has no {', '.join(missing)}")
    joints, in_channels = int(graph.shape[-1]), int(first.shape[1])
    if joints not in LAYOUT_BY_JOINTS:
        raise ValueError(f"cannot infer the layout: the graph has {joints} joints (known: {sorted(LAYOUT_BY_JOINTS)})")
    width = int(bn.shape[0])
    if width % (joints * in_channels):
        raise ValueError(f"data_bn width {width} is not persons × {joints} joints × {in_channels} channels")
    name = "ctrs-gcn" if any(".conv_d." in k or ".subset_convs." in k for k in sd) else "ctrgcn"
    return {
        "name": name,
        "num_classes": int(fc.shape[0]),
        "layout": LAYOUT_BY_JOINTS[joints],
        "num_persons": width // (joints * in_channels),
        "in_channels": in_channels,
        "base_channels": int(fc.shape[1]) // 4,
    }


def _exported_info(path: Path) -> dict[str, Any] | None:
    """model.json of an exported artefact (folder or ``.safetensors`` beside its ``.json``), else None."""
    js = path / "model.json" if path.is_dir() else path.with_suffix(".json") if path.suffix == ".safetensors" else None
    if js is None or not js.is_file():
        return None
    try:
        return json.loads(js.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ValueError(f"{js}: unreadable export description ({exc})") from None


def _stored_spec(path: Path) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """(builder args, extras) stored by mmcl with a checkpoint or export; None for official files."""
    from mmcl.engine.checkpoint import checkpoint_builder_args, read_checkpoint

    info = _exported_info(path)
    if info is not None:
        builder = dict(info.get("builder") or {k: info[k] for k in ("name", "num_classes", "layout", "num_persons", "in_channels") if k in info})
        meta = dict(info.get("meta") or {})
        return builder, meta
    if path.is_dir():
        raise FileNotFoundError(f"{path}: a folder that holds no exported model (model.json + model.safetensors)")
    builder = checkpoint_builder_args(path)
    if not builder:
        return None
    cfg = read_checkpoint(path).get("mmcl_config") or {}
    data, model = cfg.get("data", {}), cfg.get("model", {})
    extras = {
        "dataset": data.get("dataset"),
        "transform": data.get("transform"),
        "window": data.get("window"),
        "p_interval": data.get("p_interval_test"),
        "base_channels": model.get("base_channels"),
    }
    return dict(builder), extras


def resolve_model_spec(
    checkpoint: str | os.PathLike[str],
    *,
    dataset: str | None = None,
    layout: str | None = None,
    num_classes: int | None = None,
    num_persons: int | None = None,
) -> ModelSpec:
    """Model shape + test transform for ``checkpoint``; explicit arguments must agree with the file.

    mmcl checkpoints/exports carry their shape; for official files the shape comes from ``dataset``
    and/or the state dict (explicit ``layout``/``num_classes``/``num_persons`` override the dataset's).
    """
    from mmcl.engine.checkpoint import read_checkpoint
    from mmcl.skeleton.transforms import NTU_TEST_P_INTERVAL, NTU_WINDOW, UCLA_WINDOW

    path = Path(checkpoint)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    dataset = normalize_dataset(dataset)
    if dataset is not None and dataset not in DATASET_SHAPES:
        raise ValueError(f"unknown dataset {dataset!r}; choose from {sorted(DATASET_SHAPES)}")
    flags = {k: v for k, v in (("layout", layout), ("num_classes", num_classes), ("num_persons", num_persons)) if v is not None}
    wanted: dict[str, Any] = {**(DATASET_SHAPES[dataset] if dataset else {}), **flags}

    stored = _stored_spec(path)
    extras: dict[str, Any] = {}
    if stored is not None:
        builder, extras = stored
        source = "checkpoint"
    else:
        sd = read_checkpoint(path)
        try:
            builder = infer_model_shape(sd)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}; pass --dataset or --layout/--num-classes/--persons") from None
        source = "inferred"
    for key, value in wanted.items():
        if key in builder and builder[key] != value:
            given = _FLAG_NAMES[key] if key in flags else f"--dataset {dataset}"
            raise ValueError(f"{path}: the checkpoint has {key} = {builder[key]}, but {given} asks for {value}")
    builder = {**wanted, **builder}
    if source == "inferred" and dataset:
        source = "dataset"

    lay = builder["layout"]
    ds = dataset or normalize_dataset(extras.get("dataset"))
    if ds is None and source != "checkpoint":  # official file: the reference datasets are the only candidates
        ds = next((d for d, s in DATASET_SHAPES.items() if s["num_classes"] == builder["num_classes"] and s["layout"] == lay), None)
    transform = extras.get("transform") or DEFAULT_TRANSFORM.get(lay, "ntu")
    if transform not in ("ntu", "ucla"):
        raise ValueError(f"{path}: unknown input transform {transform!r} in the stored config")
    window = int(extras.get("window") or (UCLA_WINDOW if transform == "ucla" else NTU_WINDOW))
    p_interval = tuple(float(p) for p in (extras.get("p_interval") or NTU_TEST_P_INTERVAL))
    base = int(extras.get("base_channels") or builder.get("base_channels") or REFERENCE_BASE_CHANNELS)
    return ModelSpec(
        name=str(builder.get("name", "ctrgcn")),
        num_classes=int(builder["num_classes"]),
        layout=lay,
        num_persons=int(builder["num_persons"]),
        in_channels=int(builder.get("in_channels", 3)),
        base_channels=base,
        dataset=ds,
        transform=transform,
        window=window,
        p_interval=p_interval,
        source=source,
    )


def resolve_class_names(spec: ModelSpec, class_names_file: str | os.PathLike[str] | None = None) -> list[str] | None:
    """Class names for the model's labels: a user file (one per line), the dataset's, or None (indices)."""
    if class_names_file is not None:
        names = [ln.strip() for ln in Path(class_names_file).read_text(encoding="utf-8").splitlines() if ln.strip()]
        if len(names) != spec.num_classes:
            raise ValueError(f"{class_names_file}: {len(names)} class names for a {spec.num_classes}-class model")
        return names
    if spec.dataset in DATASET_SHAPES and DATASET_SHAPES[spec.dataset]["num_classes"] == spec.num_classes:
        from mmcl.datasets import class_names

        return class_names(spec.dataset)
    if spec.dataset == "synthetic":
        from mmcl.datasets.synthetic import SYNTHETIC_CLASSES

        if len(SYNTHETIC_CLASSES) == spec.num_classes:
            return [c.name for c in SYNTHETIC_CLASSES]
    return None


@dataclass
class LoadedModel:
    """A backbone in eval mode with its spec, checkpoint kind and class names."""

    model: nn.Module
    spec: ModelSpec
    kind: str
    checkpoint: Path
    class_names: list[str] | None = None
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    def label_name(self, label: int) -> str | None:
        return self.class_names[label] if self.class_names else None


def _device(device: str | torch.device | None) -> torch.device:
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def load_model(
    checkpoint: str | os.PathLike[str],
    *,
    dataset: str | None = None,
    layout: str | None = None,
    num_classes: int | None = None,
    num_persons: int | None = None,
    class_names_file: str | os.PathLike[str] | None = None,
    device: str | torch.device | None = "cpu",
) -> LoadedModel:
    """Build the backbone described by the checkpoint and load its weights (any supported kind)."""
    from mmcl.engine.checkpoint import load_backbone_from_checkpoint
    from mmcl.models import build_backbone

    spec = resolve_model_spec(checkpoint, dataset=dataset, layout=layout, num_classes=num_classes, num_persons=num_persons)
    model = build_backbone(spec.name, **spec.builder_args())
    kind = load_backbone_from_checkpoint(model, checkpoint)
    dev = _device(device)
    return LoadedModel(model.to(dev).eval(), spec, kind, Path(checkpoint), resolve_class_names(spec, class_names_file), dev)


# ----------------------------------------------------------------------------- input files
@dataclass
class RawSkeleton:
    """One sample as read from disk: ``data`` C×T×V×M float32 (V = 25 NTU order, or 20 ``KINECT20`` order)."""

    kind: str  # ntu-skeleton | nwucla-json | utd-mat | npy
    data: np.ndarray
    num_actors: int  # persons actually present (NTU lone actor: 1)
    centred: bool  # already centred by the reader (NTU reference pipeline / prepared arrays)


def _kinect_seq_to_raw(seq: np.ndarray, kind: str) -> RawSkeleton:
    return RawSkeleton(kind, np.ascontiguousarray(seq.transpose(2, 0, 1)[..., None]), 1, False)


def _read_npy(path: Path) -> RawSkeleton:
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise PredictInputError(f"{path}: cannot read .npy ({str(exc).splitlines()[0]})") from None
    if arr.dtype.kind not in "fiu":
        raise PredictInputError(f"{path}: array has non-numeric dtype {arr.dtype}")
    arr = arr.astype(np.float32)
    if arr.ndim == 4 and arr.shape[0] == 3 and arr.shape[2] in LAYOUT_BY_JOINTS:  # C×T×V×M
        x = arr
    elif arr.ndim == 3 and arr.shape[1] in LAYOUT_BY_JOINTS and arr.shape[2] == 3:  # T×V×C, one person
        x = arr.transpose(2, 0, 1)[..., None]
    elif arr.ndim == 2 and arr.shape[1] % 3 == 0 and any(arr.shape[1] % (3 * v) == 0 for v in (25, 20)):  # T×(M·V·C)
        v = 25 if arr.shape[1] % 75 == 0 else 20
        m = arr.shape[1] // (3 * v)
        x = arr.reshape(arr.shape[0], m, v, 3).transpose(3, 0, 2, 1)
    else:
        raise PredictInputError(
            f"{path}: expected a C×T×V×M, T×V×C or T×(M·V·C) array with C = 3 and V = 25 or 20, got shape {arr.shape}"
        )
    if x.shape[1] < 1:
        raise PredictInputError(f"{path}: no frames")
    if not np.isfinite(x).all():
        raise PredictInputError(f"{path}: contains NaN or infinite coordinates")
    persons = int(sum(bool(np.any(x[..., m])) for m in range(x.shape[-1])))
    return RawSkeleton("npy", np.ascontiguousarray(x), max(persons, 1), True)


def read_skeleton_file(path: str | os.PathLike[str]) -> RawSkeleton:
    """Read one skeleton file of a supported kind (see the module docstring); errors name the file."""
    p = Path(path)
    if not p.is_file():
        raise PredictInputError(f"{p}: file not found" if not p.exists() else f"{p}: not a file")
    suffix = p.suffix.lower()
    if suffix == ".skeleton":
        from mmcl.prepare.ntu import process_file

        sample = process_file(p)
        t = sample.joints.shape[0]
        x = sample.joints.reshape(t, 2, 25, 3).transpose(3, 0, 2, 1)  # T×(M·V·C) -> C×T×V×M (REFERENCE §2.8)
        return RawSkeleton("ntu-skeleton", np.ascontiguousarray(x, dtype=np.float32), int(sample.num_actors), True)
    if suffix == ".json":
        from mmcl.datasets.nwucla import read_nwucla_json

        return _kinect_seq_to_raw(read_nwucla_json(p), "nwucla-json")
    if suffix == ".mat":
        from mmcl.datasets.kinect_v1 import load_utd_skeleton

        return _kinect_seq_to_raw(load_utd_skeleton(p), "utd-mat")
    if suffix == ".npy":
        return _read_npy(p)
    raise PredictInputError(f"{p}: unsupported file type {suffix or '(none)'!r}; use .skeleton, .json, .mat or .npy")


def _fit_persons(x: np.ndarray, persons: int, duplicate_lone: bool = False) -> np.ndarray:
    """Pad (zeros, or a copy of actor 1 for a lone actor) or cut the person axis to ``persons``."""
    m = x.shape[-1]
    if m == persons:
        return x
    if m > persons:
        return np.ascontiguousarray(x[..., :persons])
    pad = np.repeat(x[..., :1], persons - m, axis=-1) if duplicate_lone else np.zeros(x.shape[:-1] + (persons - m,), x.dtype)
    return np.concatenate([x, pad], axis=-1)


def model_input(raw: RawSkeleton, spec: ModelSpec, *, lone_actor: str = "auto") -> np.ndarray:
    """C×window×V×M float32 input for the model of ``spec`` (the model's test transform).

    ``lone_actor``: "duplicate" copies a lone NTU actor into the empty second slot, "zero" leaves it
    zero, "auto" duplicates for NTU-120 models only (what the reference NTU-120 data holds, REFERENCE §2.6).
    """
    from mmcl.skeleton.transforms import crop_resize, ucla_transform, valid_frame_count

    if lone_actor not in ("auto", "duplicate", "zero"):
        raise ValueError(f"lone_actor must be auto, duplicate or zero, got {lone_actor!r}")
    if spec.in_channels != 3:
        raise ValueError(f"the model takes {spec.in_channels} input channels; skeleton files give xyz (3)")
    x = raw.data
    v_in, v_model = x.shape[2], spec.num_joints
    if spec.layout == "ntu25":
        if v_in == 20:  # Kinect v1 -> NTU-25, reference zero-shot preprocessing (REFERENCE §9.1)
            from mmcl.datasets.kinect_v1 import zero_shot_preprocess
            from mmcl.skeleton.interpolate import kinect20_to_ntu25

            seq = kinect20_to_ntu25(x[..., 0].transpose(1, 2, 0))
            return _fit_persons(zero_shot_preprocess(seq, spec.window), spec.num_persons)
        if v_in != 25:
            raise ValueError(f"{v_in}-joint input cannot feed an NTU-25 model")
        duplicate = lone_actor == "duplicate" or (
            lone_actor == "auto" and (spec.dataset == NTU120_LONE_ACTOR_DUPLICATED or (spec.dataset is None and spec.num_classes == 120))
        )
        if raw.kind == "ntu-skeleton" and raw.num_actors == 1:
            x = x[..., :1]
        x = _fit_persons(x, spec.num_persons, duplicate_lone=duplicate and raw.kind == "ntu-skeleton")
    elif v_in != v_model:
        raise ValueError(f"{v_in}-joint input cannot feed a {v_model}-joint ({spec.layout}) model")
    if spec.transform == "ucla":
        seq = x[:, : valid_frame_count(x), :, 0].transpose(1, 2, 0)
        if seq.shape[0] < 1:
            raise ValueError("the sequence has no non-zero frame")
        out = ucla_transform(seq, False, None, spec.window)
        return _fit_persons(np.ascontiguousarray(out.transpose(2, 0, 1)[..., None]), spec.num_persons)
    n = valid_frame_count(x)
    if n < 1:
        raise ValueError("the sequence has no non-zero frame")
    return _fit_persons(crop_resize(x, n, spec.p_interval, spec.window, None), spec.num_persons)


# ----------------------------------------------------------------------------- prediction
@torch.no_grad()
def predict_arrays(loaded: LoadedModel, x: np.ndarray | torch.Tensor) -> np.ndarray:
    """Softmax probabilities N×K for a batch N×C×T×V×M."""
    t = torch.as_tensor(np.asarray(x, dtype=np.float32)).to(loaded.device)
    logits = loaded.model(t).float()
    return torch.softmax(logits, dim=1).cpu().numpy()


@dataclass
class Prediction:
    """Top-k classes of one file."""

    file: str
    kind: str
    frames: int
    top: list[tuple[int, str | None, float]]  # (label, name, probability), best first

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "kind": self.kind,
            "frames": self.frames,
            "top": [{"rank": r + 1, "label": lab, "name": name, "score": round(score, 6)} for r, (lab, name, score) in enumerate(self.top)],
        }


@dataclass
class PredictionReport:
    """Predictions of the readable files and one message per failed file (prediction continues past failures)."""

    predictions: list[Prediction]
    failures: list[tuple[str, str]]
    checkpoint_kind: str
    spec: ModelSpec

    @property
    def ok(self) -> bool:
        return not self.failures


def _name_the_file(path: str, exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text if path in text or Path(path).name in text else f"{path}: {text}"


def predict_files(
    loaded: LoadedModel,
    files: Sequence[str | os.PathLike[str]],
    *,
    top: int = TOP_K,
    lone_actor: str = "auto",
    batch_size: int = 16,
) -> PredictionReport:
    """Classify every file; a file that fails is recorded (message names it) and the others go on."""
    k = max(1, min(int(top), loaded.spec.num_classes))
    ready: list[tuple[str, RawSkeleton, np.ndarray]] = []
    failures: list[tuple[str, str]] = []
    for f in files:
        name = os.fspath(f)
        try:
            raw = read_skeleton_file(name)
            ready.append((name, raw, model_input(raw, loaded.spec, lone_actor=lone_actor)))
        except (ValueError, OSError) as exc:
            failures.append((name, _name_the_file(name, exc)))
    preds: list[Prediction] = []
    for i in range(0, len(ready), batch_size):  # every input has the model's window: batch them
        chunk = ready[i : i + batch_size]
        probs = predict_arrays(loaded, np.stack([x for _, _, x in chunk]))
        for (name, raw, _), p in zip(chunk, probs):
            order = np.argsort(-p, kind="stable")[:k]
            top_k = [(int(j), loaded.label_name(int(j)), float(p[j])) for j in order]
            preds.append(Prediction(name, raw.kind, int(raw.data.shape[1]), top_k))
    return PredictionReport(preds, failures, loaded.kind, loaded.spec)


# ----------------------------------------------------------------------------- export
def export_checkpoint(
    checkpoint: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    onnx: bool = True,
    torchscript: bool = True,
    dataset: str | None = None,
    layout: str | None = None,
    num_classes: int | None = None,
    num_persons: int | None = None,
) -> dict[str, Any]:
    """Skeleton-only artefact (safetensors + JSON, optional ONNX / TorchScript) from any checkpoint.

    Only the backbone is written (FAM/FRM heads and the RGB encoder are training-only, REFERENCE §7.9).
    The dataset and test transform go into the export's meta so ``predict`` needs no flags later.
    Returns paths, parameters, MACs (one sample of the example shape), spec and checkpoint kind.
    """
    from mmcl.export import export_backbone
    from mmcl.models import count_macs, count_parameters

    loaded = load_model(checkpoint, dataset=dataset, layout=layout, num_classes=num_classes, num_persons=num_persons)
    spec = loaded.spec
    formats = ["safetensors"] + (["onnx"] if onnx else []) + (["torchscript"] if torchscript else [])
    meta = {
        "source_checkpoint": os.fspath(checkpoint),
        "checkpoint_kind": loaded.kind,
        "dataset": spec.dataset,
        "transform": spec.transform,
        "window": spec.window,
        "p_interval": list(spec.p_interval),
        "base_channels": spec.base_channels,
    }
    paths = export_backbone(loaded.model, out, example_shape=spec.example_shape(), meta=meta, formats=formats)
    return {
        "paths": {k: str(v) for k, v in paths.items()},
        "parameters": count_parameters(loaded.model),
        "macs": int(count_macs(loaded.model, spec.example_shape())),
        "example_shape": list(spec.example_shape()),
        "checkpoint_kind": loaded.kind,
        "spec": spec,
    }
