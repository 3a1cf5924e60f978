"""Run a training job or an evaluation from a :class:`~mmcl.config.Config`.

A run directory holds everything about one run:

```
<work_dir>/
  config.yaml        resolved configuration
  env.json           versions, seed, machine
  checkpoints/       last.ckpt (every epoch, atomic) and best.ckpt
  tb/                TensorBoard events        csv/metrics.csv   CSV log
  scores.npz         per-sample test scores of the best checkpoint (names, labels, scores)
  test_metrics.json  test_per_class.csv  test_confusion.csv
  curves.png  confusion.png  per_class.png
  results.json       summary (best epoch, accuracies, times)
```
"""

from __future__ import annotations

import copy
import csv
import json
import logging
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from mmcl.checkpoints import OpenedCheckpoint, open_checkpoint, read_checkpoint
from mmcl.checkpoints.card import ModelCard
from mmcl.config import Config, config_to_dict
from mmcl.datasets.pipeline import eval_dataset
from mmcl.engine.metrics import atomic_write_bytes, compute_metrics, save_scores, write_metrics
from mmcl.io import LockedError, exclusive_lock

__all__ = ["train", "RunDirectoryError", "evaluate", "run_inference", "build_eval_dataset", "eval_loader", "build_backbone_from_config", "environment_info", "class_names_for"]

log = logging.getLogger("mmcl")


def environment_info(seed: int | None = None) -> dict[str, Any]:
    import lightning
    import torchvision

    import mmcl

    return {
        "mmcl": mmcl.__version__,
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "lightning": lightning.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "seed": seed,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def class_names_for(cfg: Config) -> list[str] | None:
    """Class names of the configured dataset when mmcl ships them."""
    try:
        from mmcl.datasets import class_names
    except ImportError:
        return None
    try:
        names = class_names(cfg.data.dataset)
    except (KeyError, ValueError, FileNotFoundError):
        return None
    return names[: cfg.data.num_classes] if names and len(names) >= cfg.data.num_classes else None


def build_backbone_from_config(cfg: Config) -> torch.nn.Module:
    from mmcl.models import build_backbone

    return build_backbone(
        cfg.model.backbone,
        num_classes=cfg.data.num_classes,
        layout=cfg.data.layout,
        num_persons=cfg.data.num_persons,
        in_channels=cfg.model.in_channels,
        drop_out=cfg.model.drop_out,
        **({"base_channels": cfg.model.base_channels} if cfg.model.base_channels != 64 else {}),
    )


def _write_run_header(cfg: Config, run_dir: Path) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(run_dir / "config.yaml", yaml.safe_dump(config_to_dict(cfg), sort_keys=False).encode())
    atomic_write_bytes(run_dir / "env.json", json.dumps(environment_info(cfg.trainer.seed), indent=2).encode())


def _trainer(cfg: Config, run_dir: Path, *, callbacks: list | None = None, loggers: Any = False):
    import lightning.pytorch as pl

    from mmcl.engine.checkpoint import atomic_checkpoint_io

    t = cfg.trainer
    kwargs: dict[str, Any] = dict(
        max_epochs=t.epochs,
        accelerator=t.accelerator,
        devices=t.devices,
        num_nodes=t.num_nodes,
        strategy=t.strategy,
        precision=t.precision,
        accumulate_grad_batches=t.accumulate_grad_batches,
        check_val_every_n_epoch=t.eval_every,
        log_every_n_steps=t.log_every_n_steps,
        enable_progress_bar=t.progress,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        use_distributed_sampler=False,
        default_root_dir=str(run_dir),
        plugins=[atomic_checkpoint_io()],
        callbacks=callbacks or [],
        logger=loggers,
        enable_checkpointing=bool(callbacks),
    )
    if t.limit_train_batches is not None:
        kwargs["limit_train_batches"] = t.limit_train_batches
    if t.limit_val_batches is not None:
        kwargs["limit_val_batches"] = t.limit_val_batches
    return pl.Trainer(**kwargs)


def _build_module(cfg: Config, backbone: torch.nn.Module, heads: torch.nn.Module | None):
    from mmcl.engine.module import ActionRecognitionModule

    if cfg.trainer.channels_last:
        backbone = backbone.to(memory_format=torch.channels_last)
    eval_split = "val" if cfg.data.val_fraction > 0 else "test"
    return ActionRecognitionModule(
        backbone,
        num_classes=cfg.data.num_classes,
        optim=cfg.optim,
        epochs=cfg.trainer.epochs,
        heads=heads,
        config=config_to_dict(cfg),
        compile_backbone=cfg.trainer.compile,
        card=ModelCard.from_config(cfg, training={"eval_split": eval_split}),
    )


def inference_device(cfg: Config) -> torch.device:
    if cfg.trainer.accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("cpu")


@torch.inference_mode()
def run_inference(backbone: torch.nn.Module, loader: Any, cfg: Config) -> dict[str, np.ndarray]:
    """Skeleton-only forward pass over a loader: scores, labels and dataset indices in order."""
    device = inference_device(cfg)
    backbone = backbone.to(device).eval()
    dtype = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}.get(str(cfg.trainer.precision))
    scores, labels, index = [], [], []
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


def _finish_test(
    cfg: Config, run_dir: Path, result: dict[str, np.ndarray], dataset: Any, prefix: str = "test", class_names: list[str] | None = None
) -> dict[str, Any]:
    """Write scores.npz, metrics files and plots of one evaluation pass."""
    from mmcl.engine.plots import plot_confusion, plot_per_class

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


def _quiet_lightning(resuming: bool = False) -> None:
    """Keep Lightning's banner lines (GPU/TPU availability, tips) and known-harmless warnings out of
    the console unless MMCL_LOGLEVEL asks for INFO; errors and real warnings still show."""
    import warnings

    level = os.environ.get("MMCL_LOGLEVEL", "WARNING").upper()
    if level not in ("INFO", "DEBUG"):
        for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
            logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
    if resuming:  # the run directory is expected to hold the interrupted run's checkpoints
        warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")


def _setup_threads(cfg: Config) -> None:
    if cfg.trainer.num_threads > 0:
        torch.set_num_threads(cfg.trainer.num_threads)


def _colearning(cfg: Config, backbone: torch.nn.Module):
    """Heads plus the training-set wrapper that joins extra modalities by sample name."""
    if not (cfg.colearning.fam or cfg.colearning.frm):
        return None, None, None
    from mmcl.colearning.setup import build_colearning

    return build_colearning(cfg, backbone)


class RunDirectoryError(RuntimeError):
    """The run directory already holds a run, or another training is writing it."""


RUN_LOCK = ".mmcl-train.lock"  # held by the training process while it writes the run directory


def _owns_run_directory() -> bool:
    """False in the extra DDP processes (torchrun, SLURM or Lightning's launcher set their rank
    variables); only the first process guards and locks the run directory."""
    return all(os.environ.get(k, "0") == "0" for k in ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID"))


def _existing_run(run_dir: Path) -> list[str]:
    return [name for name in ("checkpoints/last.ckpt", "results.json") if (run_dir / name).is_file()]


def train(cfg: Config, *, resume: str | Path | None = None, overwrite: bool = False) -> dict[str, Any]:
    """Train one stream; evaluate the best checkpoint on the test split; write the run directory.

    A run directory is never trained into twice by accident: a directory that already holds a
    run (a checkpoint or results) needs ``resume`` (continue it) or ``overwrite=True`` (start it
    again from scratch), and a second training of the same directory at the same time is
    refused while the first holds the directory's lock.
    """
    cfg.validate()
    run_dir = Path(cfg.trainer.work_dir)
    resume_path = _resolve_resume(resume, run_dir) if resume else None
    if not _owns_run_directory():
        return _train(cfg, run_dir, resume_path)
    created = not run_dir.exists()
    try:
        with exclusive_lock(run_dir / RUN_LOCK):
            found = _existing_run(run_dir)
            if found and resume_path is None and not overwrite:
                raise RunDirectoryError(
                    f"{run_dir} already holds a run ({', '.join(found)}): continue it with --resume {run_dir}, "
                    "train into another --work-dir, or pass --overwrite to start it again from scratch"
                )
            if found and resume_path is None:  # overwrite: the old run goes first, so the two never mix
                _clear_run(run_dir)
            return _train(cfg, run_dir, resume_path)
    except LockedError as err:
        raise RunDirectoryError(
            f"{run_dir} is being written by another training ({err}); wait for it or choose another --work-dir"
        ) from None
    finally:
        if created and run_dir.is_dir() and [p.name for p in run_dir.iterdir()] == [RUN_LOCK]:
            (run_dir / RUN_LOCK).unlink()  # a start that failed before writing anything leaves no folder
            run_dir.rmdir()


RUN_OUTPUTS = ("checkpoints", "tb", "csv", "results.json", "config.yaml", "env.json", "curves.png")
EVAL_OUTPUTS = ("scores.npz", "metrics.json", "per_class.csv", "confusion.csv", "confusion.png", "per_class.png")


def _clear_run(run_dir: Path) -> None:
    """Remove what a training run writes (module docstring), nothing else of the folder."""
    import shutil

    names = [*RUN_OUTPUTS, *EVAL_OUTPUTS, *(f"{p}_{n}" for p in ("test", "val") for n in EVAL_OUTPUTS)]
    for name in names:
        path = run_dir / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.is_file():
            path.unlink()


def _train(cfg: Config, run_dir: Path, resume_path: Path | None) -> dict[str, Any]:
    import lightning.pytorch as pl
    from lightning.pytorch.callbacks import ModelCheckpoint, TQDMProgressBar
    from lightning.pytorch.loggers import TensorBoardLogger

    from mmcl.engine.data import SkeletonDataModule
    from mmcl.engine.plots import plot_training_curves

    wall_start = time.time()
    _setup_threads(cfg)
    _quiet_lightning(resuming=resume_path is not None)
    pl.seed_everything(cfg.trainer.seed, workers=False, verbose=False)
    backbone = build_backbone_from_config(cfg)
    heads, wrap_train, collate = _colearning(cfg, backbone)
    if cfg.model.init_from and resume_path is None:
        _initialise_from(cfg.model.init_from, backbone, heads)
    module = _build_module(cfg, backbone, heads)
    datamodule = SkeletonDataModule(cfg, wrap_train=wrap_train, collate_fn=collate)
    datamodule.setup("fit")  # fail fast on a bad data path, before any file is written
    _write_run_header(cfg, run_dir)
    select = "val" if cfg.data.val_fraction > 0 else "test"
    # "best" follows the eval split's top-1 (validation when carved, else test: reference behaviour);
    # "last" is rewritten after every epoch whatever the score, so --resume never loses an epoch.
    checkpoint_cb = ModelCheckpoint(
        dirpath=run_dir / "checkpoints",
        filename="best",
        monitor="val/top1",
        mode="max",
        save_top_k=1,
        enable_version_counter=False,
        auto_insert_metric_name=False,
    )
    last_cb = ModelCheckpoint(
        dirpath=run_dir / "checkpoints",
        filename="last",
        monitor=None,
        save_top_k=1,
        every_n_epochs=1,
        save_on_train_epoch_end=True,  # else Lightning saves only after evaluations (trainer.eval_every > 1)
        enable_version_counter=False,
        auto_insert_metric_name=False,
    )
    callbacks: list[Any] = [checkpoint_cb, last_cb]
    if cfg.trainer.ema_decay > 0:
        from mmcl.engine.ema import ExponentialMovingAverage

        callbacks.insert(0, ExponentialMovingAverage(cfg.trainer.ema_decay))
    if cfg.trainer.progress:
        callbacks.append(TQDMProgressBar(refresh_rate=max(1, cfg.trainer.log_every_n_steps // 4)))
    loggers = [
        TensorBoardLogger(str(run_dir), name="", version="tb", default_hp_metric=False),
        _csv_logger(run_dir, append=resume_path is not None),
    ]
    trainer = _trainer(cfg, run_dir, callbacks=callbacks, loggers=loggers)
    start = time.time()
    trainer.fit(module, datamodule=datamodule, ckpt_path=str(resume_path) if resume_path else None)
    process_seconds = time.time() - start
    train_seconds = module.train_seconds()  # includes the interrupted run(s) when resumed
    last_path = str(run_dir / "checkpoints" / "last.ckpt")
    if cfg.trainer.final_checkpoint == "last":  # no selection at all: the final epoch is reported
        best_path, best_score = last_path, None
    else:
        best_path = checkpoint_cb.best_model_path or last_path
        best_score = checkpoint_cb.best_model_score
    # Final evaluation of the selected checkpoint on the test split (single process, skeleton only).
    if cfg.trainer.final_checkpoint == "last":
        select = "none (last epoch)"
    results: dict[str, Any] = {"selection_split": select, "train_seconds": round(train_seconds, 1), "best_checkpoint": best_path}
    if resume_path:  # train_seconds sums the interrupted run(s) up to their last checkpoint and this process
        results["resumed_from"] = str(resume_path)
        results["train_seconds_this_process"] = round(process_seconds, 1)
    if trainer.is_global_zero:
        ckpt = read_checkpoint(best_path)
        module.load_state_dict(ckpt["state_dict"])
        results["best_epoch"] = int(ckpt.get("epoch", -1)) + 1
        results["best_selection_top1"] = float(best_score) if best_score is not None else None
        eval_start = time.time()
        eval_result = run_inference(backbone, eval_loader(cfg, datamodule.test_set), cfg)
        results["test"] = _finish_test(cfg, run_dir, eval_result, datamodule.test_set)
        if cfg.trainer.ema_decay > 0:  # the same checkpoint's raw (non-averaged) weights, for comparison
            results["test_raw_weights"] = _evaluate_raw_weights(cfg, module, ckpt, datamodule.test_set)
        if datamodule.val_set is not None:  # validation scores of the selected checkpoint, for ensemble weights
            val_result = run_inference(backbone, eval_loader(cfg, datamodule.val_set), cfg)
            results["val"] = _finish_test(cfg, run_dir, val_result, datamodule.val_set, prefix="val")
        results["test_seconds"] = round(time.time() - eval_start, 1)
        results["parameters"] = sum(p.numel() for p in backbone.parameters() if p.requires_grad)
        csv_path = run_dir / "csv" / "metrics.csv"
        if csv_path.is_file():
            plot_training_curves(csv_path, run_dir / "curves.png", title=cfg.name)
        # this process, data loading to final plots (a resumed run: the resumed part only)
        results["wall_seconds"] = round(time.time() - wall_start, 1)
        atomic_write_bytes(run_dir / "results.json", json.dumps(results, indent=2).encode())
    return results


def _evaluate_raw_weights(cfg: Config, module: Any, ckpt: dict[str, Any], dataset: Any) -> dict[str, Any] | None:
    """Test metrics of the non-averaged weights stored beside the EMA in a checkpoint (scores not written)."""
    from mmcl.engine.ema import RAW_STATE_KEY

    raw = ckpt.get(RAW_STATE_KEY)
    if raw is None:
        return None
    averaged = {k: v.clone() for k, v in module.state_dict().items()}
    module.load_state_dict(raw)
    try:
        result = run_inference(module.backbone, eval_loader(cfg, dataset), cfg)
    finally:
        module.load_state_dict(averaged)
    return compute_metrics(result["scores"], result["labels"], cfg.data.num_classes).summary()


def _csv_logger(run_dir: Path, *, append: bool) -> Any:
    """Lightning's CSV logger; on --resume it appends to the existing metrics.csv instead of deleting it."""
    from lightning.pytorch.loggers import CSVLogger

    logger = CSVLogger(str(run_dir), name="", version="csv")
    if append:
        from lightning.pytorch.loggers.csv_logs import ExperimentWriter

        class AppendingWriter(ExperimentWriter):
            def _check_log_dir_exists(self) -> None:  # keep the rows of the interrupted run
                return None

        writer = AppendingWriter(log_dir=logger.log_dir)
        if os.path.isfile(writer.metrics_file_path):  # continue with the existing columns
            with open(writer.metrics_file_path, newline="") as fh:
                writer.metrics_keys = next(csv.reader(fh), [])
        logger._experiment = writer
    return logger


def _initialise_from(path: str | Path, backbone: torch.nn.Module, heads: torch.nn.Module | None) -> None:
    """Fine-tuning start point: mmcl checkpoints, exports, official CTR-GCN or official MMCL files.

    The file is read once (:func:`mmcl.checkpoints.open_checkpoint`); a misfit is explained from its
    card. An official MMCL checkpoint also initialises the FAM/FRM heads that are switched on.
    """
    opened = open_checkpoint(path)
    opened.load_into(backbone)
    if heads is not None and opened.kind == "official-mmcl":
        from mmcl.checkpoints.official_mmcl import load_mmcl_checkpoint

        report = load_mmcl_checkpoint(backbone, heads, opened.official_state, load_encoder=True)
        log.warning("initialised from %s: %s", path, report.summary())
    elif heads is not None and opened.kind == "mmcl-train" and opened.heads_state:
        heads.load_state_dict(opened.heads_state)
    log.warning("initialised %s weights from %s (%s)", opened.kind, path, opened.card.describe())


def eval_loader(cfg: Config, dataset: Any):
    """Ordered evaluation loader for one process (no distributed sampler), ``data.test_batch_size``."""
    from torch.utils.data import DataLoader

    from mmcl.datasets.base import EpochSampler

    return DataLoader(
        dataset,
        batch_size=cfg.data.test_batch_size,
        sampler=EpochSampler(len(dataset), shuffle=False, seed=cfg.trainer.seed),
        num_workers=cfg.data.num_workers,
    )


def _resolve_resume(resume: str | Path, run_dir: Path) -> Path:
    path = Path(resume)
    if path.is_dir():
        path = path / "checkpoints" / "last.ckpt"
    if not path.is_file():
        fallback = run_dir / "checkpoints" / "last.ckpt"
        if str(resume) in ("auto", "last") and fallback.is_file():
            return fallback
        raise FileNotFoundError(f"cannot resume: checkpoint not found: {path}")
    return path


def build_eval_dataset(cfg: Config, split: str | None = None) -> Any:
    """The configured dataset's evaluation split (default ``data.test_split``), deterministic transform."""
    from mmcl.datasets.pipeline import InputSpec
    from mmcl.datasets.prepared import open_source

    if not cfg.data.path:
        raise FileNotFoundError("no dataset path given: set data.path (or pass --data PATH)")
    return eval_dataset(open_source(cfg.data.path, split or cfg.data.test_split), InputSpec.from_config(cfg), cfg.trainer.seed)


def evaluate(cfg: Config, checkpoint: str | Path | OpenedCheckpoint, *, out_dir: str | Path | None = None, split: str | None = None) -> dict[str, Any]:
    """Evaluate a checkpoint (ours or official) on the data at ``cfg.data.path``; skeleton only.

    The model and its input (layout, persons, stream, test transform) come from the checkpoint's
    card; ``cfg`` supplies the data path, loaders, precision and output folder (and, for official
    weights that carry no card, the input). Data that does not fit the model is refused in one line.
    """
    from mmcl.datasets.prepared import open_source

    if not cfg.data.path:  # before reading the model: the cheapest mistake to report
        raise FileNotFoundError("no dataset path given: set data.path (or pass --data PATH)")
    opened = checkpoint if isinstance(checkpoint, OpenedCheckpoint) else open_checkpoint(checkpoint, config=cfg)
    cfg = opened.card.apply_to_config(copy.deepcopy(cfg)).validate()
    _setup_threads(cfg)
    source = open_source(cfg.data.path, split or cfg.data.test_split)
    opened.card.check_data(layout=source.layout, num_classes=source.num_classes, num_persons=source.num_persons, where=str(cfg.data.path))
    dataset = eval_dataset(source, opened.card.input, cfg.trainer.seed)
    backbone = opened.build_model()
    run_dir = Path(out_dir or cfg.trainer.work_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    start = time.time()
    result = run_inference(backbone, eval_loader(cfg, dataset), cfg)
    summary = _finish_test(cfg, run_dir, result, dataset, class_names=opened.card.class_names)
    summary.update({
        "checkpoint": str(opened.path),
        "checkpoint_kind": opened.kind,
        "model": opened.card.describe(),
        "seconds": round(time.time() - start, 1),
    })
    atomic_write_bytes(run_dir / "test_results.json", json.dumps(summary, indent=2).encode())
    return summary
