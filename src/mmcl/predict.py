"""Classify raw skeleton files with a trained model (``mmcl predict``): read, prepare as trained, run.

Why a separate path from ``mmcl test``: a user with one recording and a checkpoint has neither a
prepared folder nor a config. Everything comes from the checkpoint's model card
(:mod:`mmcl.checkpoints.card`), read once by :func:`mmcl.checkpoints.open_checkpoint`: the model's
shape, its classes and their names, and its input — layout, persons, **stream** and test
transform — applied by :meth:`mmcl.datasets.pipeline.InputSpec.prepare`, the same function the
evaluation dataset uses, so predict and ``mmcl test`` cannot drift.

Files (one sample each) are read by :func:`mmcl.formats.skeleton_file.read_skeleton_file`
(``.skeleton``, ``.json``, ``.mat``, ``.npy``). A lone NTU actor is duplicated into the second slot
for NTU-120 models (what the reference NTU-120 preparation stores, REFERENCE §2.6) and left zero
otherwise (``lone_actor=``). A folder argument means every supported file below it. 20-joint (Kinect v1) sequences are fed to an
NTU-25 model only when asked (``cross_layout=True``): interpolated to 25 joints
(:func:`mmcl.skeleton.interpolate.kinect20_to_ntu25`) and preprocessed as the reference zero-shot
script does (REFERENCE §9.1). Scores are softmax probabilities of the logits.

Runtimes: ``torch`` (default; any checkpoint, the backbone in eval mode, fp32) or, for an exported
folder, ``onnx`` (onnxruntime) and ``torchscript``. Exported graphs take joint coordinates after the
test transform and convert to the model's stream inside (stated in the card's ``graph_input``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mmcl.checkpoints import ModelCard, OpenedCheckpoint, open_checkpoint
from mmcl.device import resolve_device
from mmcl.formats.skeleton_file import RawSkeleton, read_skeleton_file
from mmcl.results.metrics import top_k_classes
from mmcl.skeleton.interpolate import kinect20_to_ntu25
from mmcl.skeleton.transforms import fit_persons, valid_frame_count, zero_shot_preprocess

__all__ = [
    "TOP_K",
    "RUNTIMES",
    "LoadedModel",
    "Prediction",
    "PredictionReport",
    "load_model",
    "fit_persons",
    "describe_error",
    "model_input",
    "predict_arrays",
    "predict_files",
]

TOP_K = 5  # top-5 accuracy/predictions, as everywhere in the reference (REFERENCE §6.4)
RUNTIMES = ("torch", "onnx", "torchscript")
NTU120_LONE_ACTOR_DUPLICATED = "ntu120"  # REFERENCE §2.6 step 2: the NTU-120 script duplicates a lone actor
CROSS_LAYOUT_NOTE = "20-joint Kinect-v1 input interpolated to NTU-25 joints (zero-shot preprocessing, REFERENCE §9.1)"


# ----------------------------------------------------------------------------- model
@dataclass
class LoadedModel:
    """A trained model ready to classify: its card, checkpoint and one runtime (module docstring)."""

    opened: OpenedCheckpoint
    runtime: str
    model: Any  # nn.Module (torch, torchscript) or an onnxruntime.InferenceSession
    class_names: list[str] | None = None
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def card(self) -> ModelCard:
        return self.opened.card

    @property
    def kind(self) -> str:
        return self.opened.kind

    @property
    def graph_takes_joints(self) -> bool:
        """Exported graphs apply the stream themselves; the torch backbone takes stream input."""
        return self.runtime != "torch"

    def label_name(self, label: int) -> str | None:
        return self.class_names[label] if self.class_names else None

    def logits(self, x: np.ndarray) -> np.ndarray:
        """Raw scores N×K of a batch N×C×T×V×M (the runtime's input form, see graph_takes_joints)."""
        batch = np.ascontiguousarray(x, dtype=np.float32)
        if self.runtime == "onnx":
            return np.asarray(self.model.run(None, {self.model.get_inputs()[0].name: batch})[0], dtype=np.float32)
        with torch.inference_mode():
            return self.model(torch.from_numpy(batch).to(self.device)).float().cpu().numpy()


def _read_class_names(path: str | os.PathLike[str], num_classes: int) -> list[str]:
    names = [ln.strip() for ln in Path(path).read_text(encoding="utf-8").splitlines() if ln.strip()]
    if len(names) != num_classes:
        raise ValueError(f"{path}: {len(names)} class names for a {num_classes}-class model")
    return names


def load_model(
    checkpoint: str | os.PathLike[str],
    *,
    dataset: str | None = None,
    stream: str | None = None,
    layout: str | None = None,
    num_classes: int | None = None,
    num_persons: int | None = None,
    class_names_file: str | os.PathLike[str] | None = None,
    device: str | torch.device | None = "cpu",
    runtime: str = "torch",
) -> LoadedModel:
    """Open ``checkpoint`` once and make its model ready (flags only fill in what official files lack)."""
    if runtime not in RUNTIMES:
        raise ValueError(f"unknown runtime {runtime!r}; choose from {', '.join(RUNTIMES)}")
    opened = open_checkpoint(checkpoint, dataset=dataset, stream=stream, layout=layout, num_classes=num_classes, num_persons=num_persons)
    dev = resolve_device(device)
    if runtime == "torch":
        model: Any = opened.build_model(dev)
    elif runtime == "onnx":
        model = opened.onnx_session()
    else:
        model = opened.torchscript_module(dev)
    names = _read_class_names(class_names_file, opened.card.num_classes) if class_names_file else opened.card.class_names
    return LoadedModel(opened, runtime, model, names, dev)


def model_input(
    raw: RawSkeleton, card: ModelCard, *, lone_actor: str = "auto", cross_layout: bool = False, stream: bool = True
) -> np.ndarray:
    """C×window×V×M float32 input of the card's model: persons fitted, then the card's input pipeline.

    ``lone_actor``: "duplicate" copies a lone NTU actor into the empty second slot, "zero" leaves it
    zero, "auto" duplicates for NTU-120 models only (what the reference NTU-120 data holds, REFERENCE §2.6).
    ``cross_layout`` allows 20-joint input for an NTU-25 model (zero-shot preprocessing, REFERENCE §9.1).
    ``stream=False`` stops before the stream conversion (the input of exported graphs).
    """
    if lone_actor not in ("auto", "duplicate", "zero"):
        raise ValueError(f"lone_actor must be auto, duplicate or zero, got {lone_actor!r}")
    spec = card.input
    x = raw.data
    if raw.channels is not None and tuple(raw.channels) != spec.channels:
        raise ValueError(f"the file gives channels {', '.join(raw.channels)}; {card.describe()} takes {', '.join(spec.channels)}")
    if x.shape[0] != spec.in_channels:
        raise ValueError(f"the array has {x.shape[0]} channels; {card.describe()} takes {spec.in_channels} ({', '.join(spec.channels)})")
    v_in = x.shape[2]
    if v_in != spec.num_joints:
        if not (spec.layout == "ntu25" and v_in == 20):
            raise ValueError(f"{v_in}-joint input cannot feed {card.describe()}")
        if not cross_layout:
            raise ValueError(
                f"20-joint (Kinect-v1) input for {card.describe()}; pass --cross-layout to interpolate it to 25 joints "
                "(zero-shot preprocessing, REFERENCE §9.1)"
            )
        seq = kinect20_to_ntu25(x[..., 0].transpose(1, 2, 0))
        out = fit_persons(zero_shot_preprocess(seq, spec.window), spec.num_persons)
        return spec.apply_stream(out) if stream else out
    if spec.layout == "ntu25":
        duplicate = lone_actor == "duplicate" or (
            lone_actor == "auto" and (card.dataset == NTU120_LONE_ACTOR_DUPLICATED or (card.dataset is None and card.num_classes == 120))
        )
        if raw.kind == "ntu-skeleton" and raw.num_actors == 1:
            x = x[..., :1]
        x = fit_persons(x, spec.num_persons, duplicate_lone=duplicate and raw.kind == "ntu-skeleton")
    else:
        x = fit_persons(x, spec.num_persons)
    if valid_frame_count(x) < 1:
        raise ValueError("the sequence has no non-zero frame")
    return spec.prepare(x, stream=stream)


# ----------------------------------------------------------------------------- prediction
def predict_arrays(loaded: LoadedModel, x: np.ndarray | torch.Tensor) -> np.ndarray:
    """Softmax probabilities N×K for a batch N×C×T×V×M in the runtime's input form."""
    logits = torch.from_numpy(loaded.logits(np.asarray(x, dtype=np.float32)))
    probs = torch.softmax(logits, dim=1).numpy()
    if not np.isfinite(probs).all():
        raise ValueError("the model produced NaN or infinite scores (non-finite input values?)")
    return probs


@dataclass
class Prediction:
    """Top-k classes of one file."""

    file: str
    kind: str
    frames: int
    top: list[tuple[int, str | None, float]]  # (label, name, probability), best first
    probabilities: np.ndarray | None = None  # all K, for callers that compare runs

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
    card: ModelCard
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


def describe_error(path: str, exc: BaseException) -> str:
    """One line naming the file and the problem."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text if path in text or Path(path).name in text else f"{path}: {text}"


def predict_files(
    loaded: LoadedModel,
    files: Sequence[str | os.PathLike[str]],
    *,
    top: int = TOP_K,
    lone_actor: str = "auto",
    batch_size: int = 16,
    cross_layout: bool = False,
) -> PredictionReport:
    """Classify every file; a file that fails is recorded (message names it) and the others go on."""
    if batch_size < 1:
        raise ValueError(f"batch size must be >= 1, got {batch_size}")
    card = loaded.card
    k = max(1, min(int(top), card.num_classes))
    ready: list[tuple[str, RawSkeleton, np.ndarray]] = []
    failures: list[tuple[str, str]] = []
    crossed = 0
    for f in files:
        name = os.fspath(f)
        try:
            raw = read_skeleton_file(name, pose=card.input.pose2d())
            x = model_input(raw, card, lone_actor=lone_actor, cross_layout=cross_layout, stream=not loaded.graph_takes_joints)
            crossed += int(raw.data.shape[2] != card.input.num_joints)
            ready.append((name, raw, x))
        except (ValueError, OSError) as exc:
            failures.append((name, describe_error(name, exc)))
    preds: list[Prediction] = []
    for i in range(0, len(ready), batch_size):  # every input has the model's window: batch them
        chunk = ready[i : i + batch_size]
        try:
            probs = predict_arrays(loaded, np.stack([x for _, _, x in chunk]))
        except ValueError as exc:
            failures += [(name, describe_error(name, exc)) for name, _, _ in chunk]
            continue
        for (name, raw, _), p in zip(chunk, probs):
            order = top_k_classes(p, k)
            top_k = [(int(j), loaded.label_name(int(j)), float(p[j])) for j in order]
            preds.append(Prediction(name, raw.kind, int(raw.data.shape[1]), top_k, p))
    notes = [f"{crossed} file(s): {CROSS_LAYOUT_NOTE}"] if crossed else []
    return PredictionReport(preds, failures, loaded.kind, card, notes)
