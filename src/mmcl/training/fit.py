"""Train one stream from a :class:`~mmcl.config.Config`: Lightning Trainer assembly, the fit, and the
final skeleton-only test pass of the selected checkpoint (layout of the run directory:
:mod:`mmcl.training.run_dir`)."""

from __future__ import annotations

import copy
import json
import logging
import signal
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import TensorBoardLogger

from mmcl.checkpoints import open_checkpoint, read_checkpoint
from mmcl.checkpoints.card import ModelCard
from mmcl.checkpoints.official_mmcl import load_mmcl_checkpoint
from mmcl.colearning.wiring import build_colearning
from mmcl.config import Config, config_to_dict
from mmcl.device import usable_precision
from mmcl.io import atomic_write_bytes, check_output_folder
from mmcl.results.evaluation import eval_loader, inference_device, run_inference, set_threads, write_evaluation
from mmcl.results.metrics import compute_metrics
from mmcl.results.plots import plot_training_curves
from mmcl.training.checkpoint import atomic_checkpoint_io
from mmcl.training.console import EpochLines, NumberedProgressBar, check_batches, interactive
from mmcl.training.data import SkeletonDataModule
from mmcl.training.ema import RAW_STATE_KEY, ExponentialMovingAverage
from mmcl.training.interrupt import SaveInsideEpoch
from mmcl.training.loggers import DropRowsAfterCheckpoint, csv_logger, quiet_lightning
from mmcl.training.module import ActionRecognitionModule
from mmcl.training.run_dir import (
    guarded_run_directory,
    owns_run_directory,
    resolve_resume,
    resumed_config,
    write_run_header,
)

__all__ = ["train", "initialise_from"]

log = logging.getLogger("mmcl")


def _trainer(cfg: Config, run_dir: Path, *, callbacks: list | None = None, loggers: Any = False, progress_bar: bool = False) -> pl.Trainer:
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
        enable_progress_bar=progress_bar,
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


def _build_module(
    cfg: Config, card: ModelCard, backbone: torch.nn.Module, heads: torch.nn.Module | None, run_dir: Path | None = None
) -> ActionRecognitionModule:
    if cfg.trainer.channels_last:
        backbone = backbone.to(memory_format=torch.channels_last)
    return ActionRecognitionModule(
        backbone,
        num_classes=cfg.data.num_classes,
        optim=cfg.optim,
        epochs=cfg.trainer.epochs,
        heads=heads,
        config=config_to_dict(cfg),
        compile_backbone=cfg.trainer.compile,
        card=card,
        eval_scores_dir=run_dir / "eval_scores" if run_dir is not None and cfg.trainer.keep_eval_scores else None,
    )


def _colearning(cfg: Config, backbone: torch.nn.Module):
    """Heads plus the training-set wrapper that joins extra modalities by sample name."""
    if not (cfg.colearning.fam or cfg.colearning.frm):
        return None, None, None
    return build_colearning(cfg, backbone)


def train(cfg: Config, *, resume: str | Path | None = None, overwrite: bool = False) -> dict[str, Any]:
    """Train one stream; evaluate the best checkpoint on the test split; write the run directory.

    A run directory is never trained into twice by accident: a directory that already holds a
    run (a checkpoint or results) needs ``resume`` (continue it) or ``overwrite=True`` (start it
    again from scratch), and a second training of the same directory at the same time is
    refused while the first holds the directory's lock.
    """
    cfg.validate()
    run_dir = check_output_folder(cfg.trainer.work_dir, "trainer.work_dir")
    resume_path = resolve_resume(resume, run_dir) if resume else None
    if not owns_run_directory():
        return _train(cfg, run_dir, resume_path)
    with guarded_run_directory(run_dir, resuming=resume_path is not None, overwrite=overwrite):
        return _train(cfg, run_dir, resume_path)


def _train(cfg: Config, run_dir: Path, resume_path: Path | None) -> dict[str, Any]:
    wall_start = time.time()
    set_threads(cfg)
    precision, changed = usable_precision(cfg.trainer.precision, inference_device(cfg))
    if changed:  # before the run header: config.yaml records the precision the run used
        log.warning("%s", changed)
        cfg = copy.deepcopy(cfg)
        cfg.trainer.precision = precision
    if resume_path is not None:  # the run's own settings, whatever this machine would choose
        cfg, kept = resumed_config(cfg, resume_path)
        if kept:
            log.warning("resuming with %s", kept)
    quiet_lightning(resuming=resume_path is not None)
    pl.seed_everything(cfg.trainer.seed, workers=False, verbose=False)
    select = "val" if cfg.data.val_fraction > 0 else "test"
    card = ModelCard.from_config(cfg, training={"eval_split": select})  # written into every checkpoint
    backbone = card.build()
    heads, wrap_train, collate = _colearning(cfg, backbone)
    if cfg.model.init_from and resume_path is None:
        initialise_from(cfg.model.init_from, backbone, heads)
    module = _build_module(cfg, card, backbone, heads, run_dir)
    datamodule = SkeletonDataModule(cfg, wrap_train=wrap_train, collate_fn=collate)
    datamodule.setup("fit")  # fail fast on a bad data path, before any file is written
    check_batches(len(datamodule.train_set), cfg.data.batch_size)  # ... and on too few samples for one batch
    stored_names = datamodule.class_names()  # names stored with the data (e.g. the demo world)
    if card.class_names is None and stored_names:
        card = module.card = replace(card, class_names=stored_names)
    write_run_header(cfg, run_dir, resumed=resume_path is not None)
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
    # after "last": on Ctrl-C/SIGTERM (and every trainer.checkpoint_minutes) last.ckpt is also written
    # between two steps, so --resume continues inside the epoch
    inside = SaveInsideEpoch(run_dir / "checkpoints" / "last.ckpt", cfg.trainer.checkpoint_minutes)
    callbacks: list[Any] = [checkpoint_cb, last_cb, inside]
    if cfg.trainer.ema_decay > 0:
        callbacks.insert(0, ExponentialMovingAverage(cfg.trainer.ema_decay))
    if resume_path is not None:
        callbacks.append(DropRowsAfterCheckpoint(run_dir / "csv" / "metrics.csv"))
    bar = cfg.trainer.progress and interactive()  # a bar on a terminal; plain epoch lines in a log file
    if bar:
        callbacks.append(NumberedProgressBar(refresh_rate=max(1, cfg.trainer.log_every_n_steps // 4)))
    if cfg.trainer.progress:
        callbacks.append(EpochLines(run_dir, lines=not bar))
    loggers = [
        TensorBoardLogger(str(run_dir), name="", version="tb", default_hp_metric=False),
        csv_logger(run_dir, append=resume_path is not None, flush_every=cfg.trainer.log_every_n_steps),
    ]
    trainer = _trainer(cfg, run_dir, callbacks=callbacks, loggers=loggers, progress_bar=bar)
    check_batches(len(datamodule.train_set), cfg.data.batch_size, trainer.world_size)
    start = time.time()
    sigint = signal.getsignal(signal.SIGINT)
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=str(resume_path) if resume_path else None)
    except SystemExit:
        if trainer.interrupted:  # Lightning turns Ctrl-C into exit(1) after its own shutdown
            raise KeyboardInterrupt from None
        raise
    finally:  # Lightning ignores Ctrl-C from an interruption on; a notebook or caller keeps its own handler
        if threading.current_thread() is threading.main_thread() and sigint is not None:
            signal.signal(signal.SIGINT, sigint)
    if trainer.interrupted:  # a Lightning that shuts down gracefully and returns: still an interruption
        raise KeyboardInterrupt
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
        results["test"] = write_evaluation(cfg, run_dir, eval_result, datamodule.test_set, class_names=card.class_names)
        if cfg.trainer.ema_decay > 0:  # the same checkpoint's raw (non-averaged) weights, for comparison
            results["test_raw_weights"] = _evaluate_raw_weights(cfg, module, ckpt, datamodule.test_set)
        if datamodule.val_set is not None:  # validation scores of the selected checkpoint, for ensemble weights
            val_result = run_inference(backbone, eval_loader(cfg, datamodule.val_set), cfg)
            results["val"] = write_evaluation(cfg, run_dir, val_result, datamodule.val_set, prefix="val", class_names=card.class_names)
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


def initialise_from(path: str | Path, backbone: torch.nn.Module, heads: torch.nn.Module | None) -> None:
    """Fine-tuning start point: mmcl checkpoints, exports, official CTR-GCN or official MMCL files.

    The file is read once (:func:`mmcl.checkpoints.open_checkpoint`); a misfit is explained from its
    card. An official MMCL checkpoint also initialises the FAM/FRM heads that are switched on.
    """
    opened = open_checkpoint(path)
    opened.load_into(backbone)
    if heads is not None and opened.kind == "official-mmcl":
        report = load_mmcl_checkpoint(backbone, heads, opened.official_state, load_encoder=True)
        log.warning("initialised from %s: %s", path, report.summary())
    elif heads is not None and opened.kind == "mmcl-train" and opened.heads_state:
        heads.load_state_dict(opened.heads_state)
    log.warning("initialised %s weights from %s (%s)", opened.kind, path, opened.card.describe())


