"""Console and file logging of a training run: Lightning kept quiet, a CSV log that survives resume."""

from __future__ import annotations

import csv
import logging
import os
import warnings
from pathlib import Path
from typing import Any

__all__ = ["quiet_lightning", "csv_logger"]


def quiet_lightning(resuming: bool = False) -> None:
    """Keep Lightning's banner lines (GPU/TPU availability, tips) and known-harmless warnings out of
    the console unless MMCL_LOGLEVEL asks for INFO; errors and real warnings still show."""
    level = os.environ.get("MMCL_LOGLEVEL", "WARNING").upper()
    if level not in ("INFO", "DEBUG"):
        for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
            logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
    if resuming:  # the run directory is expected to hold the interrupted run's checkpoints
        warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")


def csv_logger(run_dir: Path, *, append: bool) -> Any:
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


