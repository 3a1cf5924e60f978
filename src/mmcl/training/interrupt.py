"""Stopping a training without losing the epoch in progress: Ctrl-C / SIGTERM and timed saves.

Checkpoints at epoch ends alone lose up to a whole epoch on an interruption; on a CPU that is
10-20 minutes for NW-UCLA and hours for NTU-120. :class:`SaveInsideEpoch` writes ``last.ckpt``
between two optimiser steps instead:

- on the first Ctrl-C (SIGINT) or SIGTERM it lets the current step finish, saves, and stops the
  run as interrupted; a second Ctrl-C stops at once (Python's usual KeyboardInterrupt), a second
  SIGTERM changes nothing (``mmcl streams`` sends one to each child while a terminal's Ctrl-C may
  have reached them too);
- every ``minutes`` of training it saves as well, so even a SIGKILL or a power cut loses at most
  that much.

The checkpoint holds the fit loop's progress and the training loader's place in the epoch
(:class:`~mmcl.training.data.ResumableLoader`), so ``--resume`` continues with the very next batch,
bit for bit as if nothing had happened. It saves only after a full optimiser step (never between
accumulated gradients, which are not in a checkpoint) and never after an epoch's last batch: the
epoch's evaluation and scheduler step come after that batch, and the epoch-end checkpoint
(``ModelCheckpoint``, which runs before this callback) covers it.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.callbacks import Checkpoint

__all__ = ["SaveInsideEpoch"]


class SaveInsideEpoch(Checkpoint):
    """Mid-epoch ``last.ckpt`` on Ctrl-C / SIGTERM (then stop) and every ``minutes`` (0: never timed).

    A :class:`~lightning.pytorch.callbacks.Checkpoint`, so Lightning runs it after the other
    callbacks of a batch end (the weight average is updated before it saves).
    """

    def __init__(self, path: Path, minutes: float = 0.0) -> None:
        self.path = Path(path)
        self.seconds = float(minutes) * 60.0
        self.requested: str | None = None  # the signal that asked for a stop
        self._last_save = time.monotonic()
        self._previous: dict[int, Any] = {}
        self._stop_before_next = False

    # ------------------------------------------------------------------ signals
    def _on_signal(self, signum: int, frame: Any) -> None:
        if self.requested is not None:  # already stopping: a second Ctrl-C stops at once, a SIGTERM waits
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            return
        self.requested = signal.Signals(signum).name
        print(f"[mmcl] {self.requested}: saving after this step, then stopping (Ctrl-C again to stop at once)",
              file=sys.stderr, flush=True)

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        self._last_save = time.monotonic()
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}

    def _restore(self) -> None:
        if threading.current_thread() is threading.main_thread():
            for s, handler in self._previous.items():
                if signal.getsignal(s) == self._on_signal:
                    signal.signal(s, handler)
        self._previous = {}

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        self._restore()

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        self._restore()

    # ------------------------------------------------------------------ saving
    def _decide(self, trainer: Any, due: bool = False) -> tuple[bool, bool]:
        """(stop, save now); under DDP every rank takes both decisions after the same step (a signal
        may reach the ranks a step apart, their clocks differ): one collective per step, on every rank."""
        stop = self.requested is not None
        if trainer.world_size > 1:
            flags = trainer.strategy.reduce(torch.tensor([float(stop), float(due)], device=trainer.strategy.root_device), reduce_op="sum")
            stop, due = bool(flags[0] > 0), bool(flags[1] > 0)
        return stop, due

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        stop, due = self._decide(trainer, self.seconds > 0 and time.monotonic() - self._last_save >= self.seconds)
        if not (stop or due):
            return
        loop = trainer.fit_loop.epoch_loop
        last_batch = batch_idx + 1 >= trainer.num_training_batches
        if loop._should_accumulate() or last_batch:
            return  # not a step boundary, or the epoch-end checkpoint is about to be written: stop there
        trainer.save_checkpoint(self.path)
        self._last_save = time.monotonic()
        self._stop_before_next = stop  # after this step's log row is written, which follows this hook

    def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
        if self._stop_before_next:
            raise KeyboardInterrupt

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        self._last_save = time.monotonic()  # ModelCheckpoint("last") has just saved
        if self._decide(trainer)[0]:
            raise KeyboardInterrupt

    def state_dict(self) -> dict[str, Any]:
        return {}
