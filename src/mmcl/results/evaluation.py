"""Skeleton-only evaluation: a model over an evaluation split, and the files that record it.

Used by ``mmcl test`` (:func:`evaluate`: any checkpoint, its model card deciding the input) and by
training's final test pass. Writes ``scores.npz`` (per-sample scores by name), the metrics files and
the confusion / per-class plots; ``test_results.json`` for ``mmcl test``.
"""

from __future__ import annotations

import copy
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from mmcl.checkpoints import OpenedCheckpoint, open_checkpoint
from mmcl.config import Config
from mmcl.datasets import class_names
from mmcl.datasets.base import EpochSampler
from mmcl.datasets.pipeline import InputSpec, eval_dataset
from mmcl.datasets.sources import open_source
from mmcl.device import resolve_device, usable_precision
from mmcl.io import atomic_write_bytes, check_output_folder
from mmcl.results.metrics import compute_metrics, write_metrics
from mmcl.results.plots import plot_confusion, plot_per_class
from mmcl.results.scores import save_scores

__all__ = [
    "class_names_for",
    "set_threads",
    "inference_device",
    "run_inference",
    "write_evaluation",
    "eval_loader",
    "build_eval_dataset",
    "evaluate",
]


def class_names_for(cfg: Config) -> list[str] | None:
    """Class names of the configured dataset when mmcl ships them."""
    try:
        names = class_names(cfg.data.dataset)
    except (KeyError, ValueError, FileNotFoundError):
        return None
    return names[: cfg.data.num_classes] if names and len(names) >= cfg.data.num_classes else None


def set_threads(cfg: Config) -> None:
    if cfg.trainer.num_threads > 0:
        torch.set_num_threads(cfg.trainer.num_threads)


def inference_device(cfg: Config) -> torch.device:
    """The run's accelerator for evaluation: a GPU when asked for (or auto) and present, else the CPU."""
    return resolve_device("auto" if cfg.trainer.accelerator in ("auto", "gpu", "cuda") else "cpu")


def run_inference(backbone: torch.nn.Module, loader: Any, cfg: Config) -> dict[str, np.ndarray]:
    """Skeleton-only forward pass over a loader: scores, labels and dataset indices in order.

    The model moves to the device before inference mode starts: weights copied to a GPU inside it
    would be inference tensors, which a later ``load_state_dict`` (the raw-weights evaluation after
    training) may not write into.
    """
    device = inference_device(cfg)
    backbone = backbone.to(device).eval()
    precision, _ = usable_precision(cfg.trainer.precision, device)
    dtype = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}.get(precision)
    scores, labels, index = [], [], []
    with torch.inference_mode():
        for batch in loader:
            x = batch["x"].to(device)
            with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                out = backbone(x)
            scores.append(out.float().cpu().numpy())
            labels.append(batch["label"].numpy())
            index.append(batch["index"].numpy())
    if not scores:
        raise RuntimeError("evaluation produced no outputs (empty test split?)")
    return {"scores": np.concatenate(scores), "labels": np.concatenate(labels), "index": np.concatenate(index)}


def write_evaluation(
    cfg: Config, run_dir: Path, result: dict[str, np.ndarray], dataset: Any, prefix: str = "test", class_names: list[str] | None = None
) -> dict[str, Any]:
    """Write scores.npz, metrics files and plots of one evaluation pass."""
    names = [dataset.names[i] for i in result["index"]] if hasattr(dataset, "names") else [str(i) for i in result["index"]]
    scores_name = "scores.npz" if prefix == "test" else f"{prefix}_scores.npz"
    save_scores(run_dir / scores_name, names, result["labels"], result["scores"])
    metrics = compute_metrics(result["scores"], result["labels"], cfg.data.num_classes)
    class_names = class_names or class_names_for(cfg)
    write_metrics(run_dir, metrics, class_names, prefix=prefix)
    stem = "" if prefix == "test" else f"{prefix}_"
    plot_confusion(metrics.confusion, run_dir / f"{stem}confusion.png", class_names)
    plot_per_class(metrics.per_class_accuracy, run_dir / f"{stem}per_class.png", class_names)
    return metrics.summary()


def eval_loader(cfg: Config, dataset: Any):
    """Ordered evaluation loader for one process (no distributed sampler), ``data.test_batch_size``."""
    return DataLoader(
        dataset,
        batch_size=cfg.data.test_batch_size,
        sampler=EpochSampler(len(dataset), shuffle=False, seed=cfg.trainer.seed),
        num_workers=cfg.data.num_workers,
    )


def build_eval_dataset(cfg: Config, split: str | None = None) -> Any:
    """The configured dataset's evaluation split (default ``data.test_split``), deterministic transform."""
    if not cfg.data.path:
        raise FileNotFoundError("no dataset path given: set data.path (or pass --data PATH)")
    return eval_dataset(open_source(cfg.data.path, split or cfg.data.test_split), InputSpec.from_config(cfg), cfg.trainer.seed)


def evaluate(cfg: Config, checkpoint: str | Path | OpenedCheckpoint, *, out_dir: str | Path | None = None, split: str | None = None) -> dict[str, Any]:
    """Evaluate a checkpoint (ours or official) on the data at ``cfg.data.path``; skeleton only.

    The model and its input (layout, persons, stream, test transform) come from the checkpoint's
    card; ``cfg`` supplies the data path, loaders, precision and output folder (and, for official
    weights that carry no card, the input). Data that does not fit the model is refused in one line.
    """
    if not cfg.data.path:  # before reading the model: the cheapest mistake to report
        raise FileNotFoundError("no dataset path given: set data.path (or pass --data PATH)")
    run_dir = check_output_folder(out_dir or cfg.trainer.work_dir)  # not after the whole evaluation
    opened = checkpoint if isinstance(checkpoint, OpenedCheckpoint) else open_checkpoint(checkpoint, config=cfg)
    cfg = opened.card.apply_to_config(copy.deepcopy(cfg)).validate()
    set_threads(cfg)
    source = open_source(cfg.data.path, split or cfg.data.test_split, progress=sys.stderr.isatty())
    opened.card.check_data(layout=source.layout, num_classes=source.num_classes, num_persons=source.num_persons, where=str(cfg.data.path))
    dataset = eval_dataset(source, opened.card.input, cfg.trainer.seed)
    backbone = opened.build_model()
    run_dir.mkdir(parents=True, exist_ok=True)
    start = time.time()
    result = run_inference(backbone, eval_loader(cfg, dataset), cfg)
    summary = write_evaluation(cfg, run_dir, result, dataset, class_names=opened.card.class_names)
    summary.update({
        "checkpoint": str(opened.path),
        "checkpoint_kind": opened.kind,
        "model": opened.card.describe(),
        "seconds": round(time.time() - start, 1),
    })
    atomic_write_bytes(run_dir / "test_results.json", json.dumps(summary, indent=2).encode())
    return summary
