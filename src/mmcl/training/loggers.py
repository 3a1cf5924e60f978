"""Console and file logging of a training run: Lightning kept quiet, a CSV log that survives resume."""

from __future__ import annotations

import csv
import io
import logging
import os
import warnings
from pathlib import Path
from typing import Any

from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter

from mmcl.io import atomic_write_text

__all__ = ["quiet_lightning", "csv_logger", "DropRowsAfterCheckpoint"]


def quiet_lightning(resuming: bool = False) -> None:
    """Keep Lightning's banner lines (GPU/TPU availability, tips) and known-harmless warnings out of
    the console unless MMCL_LOGLEVEL asks for INFO; errors and real warnings still show."""
    level = os.environ.get("MMCL_LOGLEVEL", "WARNING").upper()
    if level not in ("INFO", "DEBUG"):
        for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
            logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
    # a short epoch logs at its end anyway (mmcl prints one line per epoch)
    warnings.filterwarnings("ignore", message=r"The number of training batches .* is smaller than the logging interval")
    if resuming:  # the run directory is expected to hold the interrupted run's checkpoints
        warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")


def csv_logger(run_dir: Path, *, append: bool, flush_every: int = 100) -> Any:
    """Lightning's CSV logger, written to disk every ``flush_every`` steps (so ``tail -f`` follows the
    run); on --resume it appends to the existing metrics.csv instead of deleting it."""

    logger = CSVLogger(str(run_dir), name="", version="csv", flush_logs_every_n_steps=max(1, flush_every))
    if append:
        class AppendingWriter(ExperimentWriter):
            def _check_log_dir_exists(self) -> None:  # keep the rows of the interrupted run
                return None

        writer = AppendingWriter(log_dir=logger.log_dir)
        if os.path.isfile(writer.metrics_file_path):  # continue with the existing columns
            with open(writer.metrics_file_path, newline="") as fh:
                writer.metrics_keys = next(csv.reader(fh), [])
        logger._experiment = writer
    return logger


class DropRowsAfterCheckpoint(Callback):
    """On --resume, remove the ``metrics.csv`` rows logged after the checkpoint being resumed (of the
    killed epoch, or of its part after a mid-epoch checkpoint), which the resumed run logs again:
    every step appears once. A row belongs to the checkpoint when its epoch is not later and its
    step is below the checkpoint's ``global_step`` (steps are counted from 0; an epoch's summary
    row carries its last step)."""

    def __init__(self, metrics_file: Path) -> None:
        self.metrics_file = Path(metrics_file)
        self.dropped = 0

    def on_load_checkpoint(self, trainer: Any, pl_module: Any, checkpoint: dict[str, Any]) -> None:
        epoch, step = checkpoint.get("epoch"), checkpoint.get("global_step")
        if epoch is None or step is None or not self.metrics_file.is_file():
            return
        with open(self.metrics_file, newline="") as fh:
            reader = csv.DictReader(fh)
            header, rows = reader.fieldnames or [], list(reader)
        kept = [r for r in rows if not r.get("epoch") or (int(float(r["epoch"])) <= int(epoch)
                                                           and (not r.get("step") or int(float(r["step"])) < int(step)))]
        self.dropped = len(rows) - len(kept)
        if self.dropped:
            buffer = io.StringIO(newline="")
            writer = csv.DictWriter(buffer, fieldnames=header)
            writer.writeheader()
            writer.writerows(kept)
            atomic_write_text(self.metrics_file, buffer.getvalue())
