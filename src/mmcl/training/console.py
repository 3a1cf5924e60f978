"""What a training prints: a start banner, then a progress bar on a terminal or one plain line per
epoch in a log file or pipe (no escape codes), epochs counted from 1 as in the summary and the plots."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from lightning.pytorch.callbacks import Callback, TQDMProgressBar

__all__ = ["interactive", "NumberedProgressBar", "EpochLines", "TooFewSamplesError", "check_batches"]


def interactive() -> bool:
    """True when the console is a terminal (progress bars), False for a file or a pipe (plain lines)."""
    return sys.stderr.isatty()


class TooFewSamplesError(ValueError):
    """The training split cannot fill one batch (batches drop their remainder)."""


def check_batches(samples: int, batch_size: int, world_size: int = 1) -> None:
    """Refuse a training split that gives zero batches, in one line, before Lightning starts."""
    if samples // max(1, world_size) < batch_size:
        raise TooFewSamplesError(
            f"the training split has {samples} sample(s), fewer than one batch of data.batch_size={batch_size}"
            + (f" per process ({world_size} processes)" if world_size > 1 else "")
            + " (the last partial batch is dropped): lower data.batch_size or add data"
        )


class NumberedProgressBar(TQDMProgressBar):
    """Lightning's bar with the epoch counted from 1 and out of the total ("epoch 3/12")."""

    def on_train_epoch_start(self, trainer: Any, *args: Any) -> None:
        super().on_train_epoch_start(trainer, *args)
        self.train_progress_bar.set_description(f"epoch {trainer.current_epoch + 1}/{trainer.max_epochs}")


def _fmt(metrics: dict[str, Any], key: str, percent: bool = False) -> str | None:
    value = metrics.get(key)
    if value is None:
        return None
    value = float(value)
    return f"{100 * value:.1f}%" if percent else f"{value:.4f}"


class EpochLines(Callback):
    """The start banner (run directory, samples, steps per epoch, device, precision) and, with
    ``lines=True``, one line per epoch with the losses, the evaluation and an estimate of the time left."""

    def __init__(self, run_dir: Path, *, lines: bool, stream: Any = None) -> None:
        self.run_dir = Path(run_dir)
        self.lines = lines
        self.stream = stream
        self._start = 0.0
        self._first_epoch = 0

    def _print(self, text: str) -> None:
        print(text, file=self.stream or sys.stdout, flush=True)

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        if not trainer.is_global_zero:
            return
        dm = trainer.datamodule
        sizes = [f"train {len(dm.train_set)}"]
        if getattr(dm, "val_set", None) is not None:
            sizes.append(f"validation {len(dm.val_set)}")
        sizes.append(f"test {len(dm.test_set)}")
        steps = trainer.num_training_batches
        self._start = time.time()
        self._first_epoch = trainer.current_epoch
        resumed = f", resuming at epoch {trainer.current_epoch + 1}" if trainer.current_epoch else ""
        self._print(
            f"[mmcl] training {pl_module.card.describe()} -> {self.run_dir}\n"
            f"[mmcl] samples: {', '.join(sizes)}; {steps} steps per epoch x {trainer.max_epochs} epochs{resumed}; "
            f"device {trainer.strategy.root_device}, precision {trainer.precision}"
        )

    def _line(self, trainer: Any) -> None:
        if not (self.lines and trainer.is_global_zero) or trainer.sanity_checking:
            return
        m = trainer.callback_metrics
        parts = [f"epoch {trainer.current_epoch + 1}/{trainer.max_epochs}"]
        for key, label, pct in (("train/loss_epoch", "loss", False), ("train/top1_epoch", "train top-1", True),
                                ("val/top1", "eval top-1", True)):
            text = _fmt(m, key, pct)
            if text is not None:
                parts.append(f"{label} {text}")
        done = trainer.current_epoch + 1 - self._first_epoch
        elapsed = time.time() - self._start
        left = (trainer.max_epochs - trainer.current_epoch - 1) * elapsed / max(done, 1)
        parts.append(f"{elapsed / max(done, 1):.0f} s/epoch, ~{left / 60:.1f} min left")
        self._print("  ".join(parts))

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        self._line(trainer)
