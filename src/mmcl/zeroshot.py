"""Zero-shot transfer of an NTU-120 model to Kinect-v1 datasets (``mmcl zero-shot``, REFERENCE §9).

The reference script (§9.1) evaluates an NTU-120 MMCL model on the UTD-MHAD samples of six
actions mapped to NTU classes (§9.2, shipped as ``resources/zero_shot/utd_to_ntu120.tsv``; any
file of the same form replaces it). Per sample: Kinect v1 (20 joints) -> NTU-25
(:func:`~mmcl.skeleton.interpolate.kinect20_to_ntu25`; the reference leaves this conversion out,
§9.3), then :func:`~mmcl.skeleton.transforms.zero_shot_preprocess` (zero second person, centring on
J2 of frame 0, centre crop p = 0.95, resize to 64), ``S = model(x)``; top-1 / top-5 hit against
the mapped NTU label. The script never prints its accuracies; here they are reported overall and
per mapped source action.

With text features of the target samples (``text_store``) and an MMCL checkpoint holding the FRM
weights (official ``PosMatrix``/``NegMatrix``/``mlp.*`` or mmcl ``heads.frm.*``), the refined
scores ``S_R`` (§7.4, §9.1 step 7) are ranked instead of ``S``.

Sample names (the key into a text store) are file stems, e.g. ``a3_s1_t1_skeleton``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mmcl.checkpoints.official_mmcl import FRM_MLP_PREFIX, NEG_KEY, POS_KEY, load_mmcl_checkpoint
from mmcl.colearning.frm import FeatureRefinement
from mmcl.colearning.objective import CoLearningHeads, FRMConfig
from mmcl.formats.kinect_v1 import load_kinect_v1, load_utd_skeleton, parse_utd_name
from mmcl.formats.skeleton_file import RawSkeleton
from mmcl.io import atomic_savez
from mmcl.modalities.store import FeatureStore
from mmcl.predict import TOP_K, LoadedModel, describe_error, load_model, model_input
from mmcl.results.metrics import top_k_classes, topk_hits
from mmcl.skeleton.layouts import KINECT20

__all__ = [
    "ZERO_SHOT_DATASETS",
    "ZeroShotSample",
    "ClassResult",
    "ZeroShotReport",
    "find_samples",
    "load_frm_head",
    "evaluate_zero_shot",
    "read_joint_order",
    "mapping_descriptions",
    "load_class_mapping",
]

ZERO_SHOT_DATASETS = ("utd-mhad", "kinect-v1")
KINECT_V1_SUFFIXES = (".npy", ".mat", ".json")  # what mmcl.formats.kinect_v1.load_kinect_v1 reads
_REPORT_FIRST = 5  # names shown when listing missing items


@dataclass
class ZeroShotSample:
    """One evaluated file: its source action id and the mapped NTU label."""

    name: str
    path: Path
    action: str
    label: int


@dataclass
class ClassResult:
    """Hits for one mapped source action."""

    action: str
    label: int
    action_name: str | None
    label_name: str | None
    samples: int = 0
    top1_hits: int = 0
    top5_hits: int = 0

    @property
    def top1(self) -> float | None:
        return self.top1_hits / self.samples if self.samples else None

    @property
    def top5(self) -> float | None:
        return self.top5_hits / self.samples if self.samples else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "action_name": self.action_name,
            "label": self.label,
            "label_name": self.label_name,
            "samples": self.samples,
            "top1_hits": self.top1_hits,
            "top5_hits": self.top5_hits,
            "top1": self.top1,
            "top5": self.top5,
        }


@dataclass
class ZeroShotReport:
    """Overall and per-class top-1 / top-5 plus the per-sample scores (names, labels, scores)."""

    dataset: str
    checkpoint: str
    checkpoint_kind: str
    refined: bool  # True: S_R (FRM) was ranked, False: S
    names: list[str]
    labels: np.ndarray  # int64 N, mapped NTU labels
    scores: np.ndarray  # float32 N×K (S or S_R)
    per_class: list[ClassResult]
    failures: list[tuple[str, str]] = field(default_factory=list)
    ignored: int = 0  # files of unmapped actions (or not named like samples)
    notes: list[str] = field(default_factory=list)

    @property
    def num_samples(self) -> int:
        return len(self.names)

    def hits(self, k: int) -> int:
        if not len(self.names):
            return 0
        return int(topk_hits(self.scores, self.labels, k).sum())

    def to_dict(self) -> dict[str, Any]:
        n = self.num_samples
        h1, h5 = self.hits(1), self.hits(TOP_K)
        return {
            "dataset": self.dataset,
            "checkpoint": self.checkpoint,
            "checkpoint_kind": self.checkpoint_kind,
            "scores": "S_R (FRM refined)" if self.refined else "S",
            "samples": n,
            "top1_hits": h1,
            "top5_hits": h5,
            "top1": h1 / n if n else None,
            "top5": h5 / n if n else None,
            "per_class": [c.to_dict() for c in self.per_class],
            "failures": [{"file": f, "error": e} for f, e in self.failures],
            "ignored_files": self.ignored,
        }

    def to_text(self) -> str:
        d = self.to_dict()
        n = d["samples"]

        def pct(hits: int, total: int) -> str:
            return f"{100 * hits / total:6.2f}% ({hits}/{total})" if total else "     - (0/0)"

        lines = [
            f"zero-shot {self.dataset} -> NTU labels, {n} samples, scores {d['scores']} ({self.checkpoint_kind} checkpoint)",
            f"top-1 {pct(d['top1_hits'], n)}   top-5 {pct(d['top5_hits'], n)}",
            "per mapped action:",
        ]
        width = max([len(self._action_label(c)) for c in self.per_class] + [10])
        for c in self.per_class:
            lines.append(f"  {self._action_label(c):<{width}}  top-1 {pct(c.top1_hits, c.samples)}   top-5 {pct(c.top5_hits, c.samples)}")
        if self.ignored:
            lines.append(f"({self.ignored} files of unmapped actions ignored)")
        if self.failures:
            lines.append(f"{len(self.failures)} files failed:")
            lines += [f"  {e}" for _, e in self.failures]
        return "\n".join(lines)

    @staticmethod
    def _action_label(c: ClassResult) -> str:
        src = f"{c.action} {c.action_name}" if c.action_name else c.action
        dst = f"{c.label} {c.label_name}" if c.label_name else str(c.label)
        return f"{src} -> {dst}"

    def save_scores(self, path: str | os.PathLike[str]) -> Path:
        """``scores.npz`` (names, labels, scores) in the project's score-file form."""
        return atomic_savez(path, names=np.asarray(self.names, dtype=str), labels=self.labels.astype(np.int64), scores=self.scores.astype(np.float32))


# ----------------------------------------------------------------------------- inputs
def load_class_mapping(path: str | os.PathLike[str] | None = None) -> dict[str, int]:
    """Source action id -> NTU-120 0-based label; default: the UTD-MHAD table of REFERENCE §9.2."""
    if path is None:
        text = resources.files("mmcl").joinpath("resources", "zero_shot", "utd_to_ntu120.tsv").read_text("utf-8")
        where = "utd_to_ntu120.tsv"
    else:
        text, where = Path(path).read_text(encoding="utf-8"), str(path)
    mapping: dict[str, int] = {}
    rows = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    for i, line in enumerate(rows[1:], start=2):
        fields = line.split("\t")
        try:
            label = int(fields[1])
        except (IndexError, ValueError):
            raise ValueError(f"{where}: data row {i}: expected '<action>\\t<0-based label>', got {line!r}") from None
        if not 0 <= label < 120:
            raise ValueError(f"{where}: data row {i}: label {label} outside 0..119")
        mapping[fields[0].strip()] = label
    return mapping


def mapping_descriptions(path: str | os.PathLike[str] | None = None) -> dict[str, str]:
    """Optional third column (source action name) of a mapping TSV, by action id."""
    if path is None:
        text = resources.files("mmcl").joinpath("resources", "zero_shot", "utd_to_ntu120.tsv").read_text("utf-8")
    else:
        text = Path(path).read_text(encoding="utf-8")
    rows = [ln.split("\t") for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    return {r[0].strip(): r[2].strip() for r in rows[1:] if len(r) > 2 and r[2].strip()}


def read_joint_order(path: str | os.PathLike[str]) -> list[str]:
    """20 Kinect-v1 joint names (``KINECT20`` spelling), one per line, in the files' joint order."""

    p = Path(path)
    names = [ln.strip() for ln in p.read_text(encoding="utf-8").splitlines() if ln.strip() and not ln.startswith("#")]
    unknown = sorted(set(names) - set(KINECT20.joint_names))
    if len(names) != 20 or sorted(names) != sorted(KINECT20.joint_names):
        raise ValueError(
            f"{p}: expected the 20 Kinect-v1 joint names of KINECT20 once each, one per line; "
            f"got {len(names)} names{f', unknown {unknown[:3]}' if unknown else ''}"
        )
    return names


def _action_of(path: Path, dataset: str) -> str | None:
    if dataset == "utd-mhad":
        try:
            a, _, _ = parse_utd_name(path)
        except ValueError:
            return None
        return f"a{a}"
    stem = path.stem
    return stem.split("_", 1)[0] if "_" in stem else None  # REFERENCE §9.1 step 2: text before the first "_"


def find_samples(data: str | os.PathLike[str], dataset: str, mapping: Mapping[str, int]) -> tuple[list[ZeroShotSample], int]:
    """Files under ``data`` (recursive) whose action is mapped; also the number of other files ignored."""
    root = Path(data)
    if not root.is_dir():
        raise FileNotFoundError(f"data folder not found: {root}")
    suffixes = (".mat",) if dataset == "utd-mhad" else KINECT_V1_SUFFIXES
    samples: list[ZeroShotSample] = []
    ignored = 0
    for p in sorted(root.rglob("*")):
        if not p.is_file() or p.suffix.lower() not in suffixes:
            continue
        action = _action_of(p, dataset)
        if action is None or action not in mapping:
            ignored += 1
            continue
        samples.append(ZeroShotSample(p.stem, p, action, int(mapping[action])))
    if not samples:
        raise ValueError(
            f"{root}: no {dataset} files of the mapped actions {sorted(mapping)} "
            f"(looked for {'/'.join(suffixes)} files named <action>_...)"
        )
    names = [s.name for s in samples]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"{root}: sample names (file stems) must be unique; repeated: {dup[:_REPORT_FIRST]}")
    return samples, ignored


def _read_sequence(sample: ZeroShotSample, dataset: str, joint_order: Sequence[str] | None) -> np.ndarray:
    if dataset == "utd-mhad":
        return load_utd_skeleton(sample.path)
    if joint_order is None:
        return load_kinect_v1(sample.path)
    return load_kinect_v1(sample.path, joint_order)


# ----------------------------------------------------------------------------- FRM
def load_frm_head(loaded: LoadedModel, kind: str) -> torch.nn.Module:
    """The FRM head (phi + Pos/Neg class weights) of an MMCL checkpoint, for S_R at evaluation.

    Official MMCL files hold ``PosMatrix``/``NegMatrix``/``mlp.*`` (loaded with
    :func:`mmcl.checkpoints.official_mmcl.load_mmcl_checkpoint`), mmcl training checkpoints
    ``heads.frm.*``; ``kind`` is the text feature kind (from the text store). Raises ValueError when
    the checkpoint has no FRM weights. Uses the weights already read by :func:`load_model`.
    """

    opened = loaded.opened
    path = opened.path
    no_frm = ValueError(
        f"{path}: the checkpoint has no FRM weights (official PosMatrix/NegMatrix/mlp.* or mmcl heads.frm.*); "
        "FRM refinement needs a checkpoint of an MMCL run with FRM — drop --text-store to rank S"
    )
    n = loaded.card.num_classes
    frm_sd = {k[len("frm."):]: v for k, v in opened.heads_state.items() if k.startswith("frm.")}
    if frm_sd:
        w0, cw = frm_sd.get("mlp.0.weight"), frm_sd.get("class_weights")
        if w0 is None or cw is None:
            raise ValueError(f"{path}: incomplete FRM weights (need heads.frm.mlp.* and heads.frm.class_weights)")
        frm = FeatureRefinement(int(w0.shape[1]), n, int(cw.shape[0]), hidden=int(w0.shape[0]), kind=kind)
        try:
            frm.load_state_dict(frm_sd, strict=True)
        except RuntimeError as exc:
            raise ValueError(f"{path}: FRM weights do not fit ({str(exc).splitlines()[0]})") from None
        return frm.to(loaded.device).eval()
    sd = opened.official_state
    if POS_KEY not in sd or NEG_KEY not in sd or f"{FRM_MLP_PREFIX}0.weight" not in sd:
        raise no_frm
    w0 = sd[f"{FRM_MLP_PREFIX}0.weight"]
    backbone = loaded.card.build()  # scratch copy: the import is all-or-nothing over backbone + FRM
    heads = CoLearningHeads(backbone.feature_dim, n, fam=None, frm=FRMConfig(text_dim=int(w0.shape[1]), kind=kind, hidden=int(w0.shape[0])))
    load_mmcl_checkpoint(backbone, heads, sd, load_encoder=False)
    assert heads.frm is not None
    return heads.frm.to(loaded.device).eval()


def _text_tensors(store: Any, name: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    arr = np.array(store.get(name), dtype=np.float32)
    if arr.ndim == 1:
        return torch.from_numpy(arr[None]), None
    if arr.ndim == 3 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 2:
        raise ValueError(f"text feature of {name} must be D or L×d, got shape {arr.shape}")
    return torch.from_numpy(arr[None]), torch.ones(1, arr.shape[0], dtype=torch.bool)


# ----------------------------------------------------------------------------- evaluation
def evaluate_zero_shot(
    checkpoint: str | os.PathLike[str],
    data: str | os.PathLike[str],
    *,
    dataset: str = "utd-mhad",
    mapping: str | os.PathLike[str] | None = None,
    joint_order: str | os.PathLike[str] | Sequence[str] | None = None,
    text_store: str | os.PathLike[str] | None = None,
    num_persons: int | None = None,
    stream: str | None = None,
    device: str | torch.device | None = "cpu",
    batch_size: int = 32,
) -> ZeroShotReport:
    """Top-1 / top-5 of an NTU-25 model on the mapped files of a Kinect-v1 dataset (REFERENCE §9.1).

    ``mapping``: TSV ``<action>\\t<0-based NTU label>[\\t<action name>...]`` with a header row
    (default: the UTD-MHAD table of §9.2; required for ``kinect-v1``). ``joint_order``: for
    ``kinect-v1``, a file of 20 ``KINECT20`` joint names in the files' order (default: ``KINECT20``).
    Files that fail to load are reported in ``failures``; the others are evaluated. The model's
    stream (from its card, or ``stream`` for official weights) is applied after the preprocessing.
    """

    if dataset not in ZERO_SHOT_DATASETS:
        raise ValueError(f"unknown zero-shot dataset {dataset!r}; choose from {list(ZERO_SHOT_DATASETS)}")
    if dataset == "kinect-v1" and mapping is None:
        raise ValueError("--dataset kinect-v1 needs --mapping (TSV: <action id>\\t<0-based NTU label>, with a header row)")
    if dataset == "utd-mhad" and joint_order is not None:
        raise ValueError("--joint-order applies to --dataset kinect-v1 (UTD-MHAD files have a fixed joint order)")
    if mapping is not None and not Path(mapping).is_file():
        raise FileNotFoundError(f"mapping file not found: {mapping}")
    label_of = load_class_mapping(mapping)
    described = mapping_descriptions(mapping)
    order: Sequence[str] | None = read_joint_order(joint_order) if isinstance(joint_order, (str, os.PathLike)) else joint_order

    loaded = load_model(checkpoint, num_persons=num_persons, stream=stream, device=device)
    card = loaded.card
    if card.input.layout != "ntu25":
        raise ValueError(f"{checkpoint}: zero-shot transfer needs an NTU-25 model (20 -> 25 joints); this one is {card.describe()}")
    too_big = sorted(a for a, lab in label_of.items() if lab >= card.num_classes)
    if too_big:
        raise ValueError(f"mapping labels of {too_big} exceed the model's {card.num_classes} classes")

    store = frm = None
    if text_store is not None:
        store = FeatureStore.open(text_store)
        frm = load_frm_head(loaded, str(store.kind))

    samples, ignored = find_samples(data, dataset, label_of)
    if store is not None:
        missing = [s.name for s in samples if s.name not in store]
        if missing:
            raise ValueError(
                f"{text_store}: no text features for {len(missing)} of {len(samples)} samples "
                f"(first: {missing[:_REPORT_FIRST]}); FRM needs one per sample, keyed by file stem"
            )

    inputs: list[np.ndarray] = []
    kept: list[ZeroShotSample] = []
    failures: list[tuple[str, str]] = []
    for s in samples:
        try:
            seq = _read_sequence(s, dataset, order)  # T×20×3 Kinect v1
            raw = RawSkeleton("kinect-v1", np.ascontiguousarray(seq.transpose(2, 0, 1)[..., None]), 1, False)
            inputs.append(model_input(raw, card, cross_layout=True))  # 20 -> 25 joints, REFERENCE §9.1, then the stream
            kept.append(s)
        except (ValueError, OSError) as exc:
            failures.append((str(s.path), describe_error(str(s.path), exc)))

    chunks = []  # raw scores S (or S_R) are ranked, as the reference; a softmax would not change the ranks
    for i in range(0, len(inputs), batch_size):
        batch = np.stack(inputs[i : i + batch_size])
        if frm is None:
            with torch.no_grad():
                chunks.append(loaded.model(torch.from_numpy(batch).to(loaded.device)).float().cpu().numpy())
        else:
            with torch.no_grad():
                logits = loaded.model(torch.from_numpy(batch).to(loaded.device)).float()
                refined = []
                for j, s in enumerate(kept[i : i + batch_size]):
                    text, mask = _text_tensors(store, s.name)
                    refined.append(frm(logits[j : j + 1], text.to(loaded.device), None if mask is None else mask.to(loaded.device)))
                chunks.append(torch.cat(refined).float().cpu().numpy())
    scores = np.concatenate(chunks) if chunks else np.zeros((0, card.num_classes), np.float32)
    labels = np.asarray([s.label for s in kept], dtype=np.int64)

    per_class = {
        a: ClassResult(a, lab, described.get(a), loaded.label_name(lab)) for a, lab in sorted(label_of.items(), key=lambda kv: _action_key(kv[0]))
    }
    if len(kept):
        ranks = top_k_classes(scores, TOP_K)
        for s, row in zip(kept, ranks):
            c = per_class[s.action]
            c.samples += 1
            c.top1_hits += int(row[0] == s.label)
            c.top5_hits += int(s.label in row[:TOP_K])
    return ZeroShotReport(
        dataset=dataset,
        checkpoint=os.fspath(checkpoint),
        checkpoint_kind=loaded.kind,
        refined=frm is not None,
        names=[s.name for s in kept],
        labels=labels,
        scores=scores.astype(np.float32),
        per_class=list(per_class.values()),
        failures=failures,
        ignored=ignored,
        notes=list(loaded.opened.notes),
    )


def _action_key(action: str) -> tuple[str, int, str]:
    """Natural order of action ids: a3 before a24."""
    head = action.rstrip("0123456789")
    tail = action[len(head):]
    return (head, int(tail) if tail else -1, action)
