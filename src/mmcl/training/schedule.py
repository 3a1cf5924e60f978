"""Learning-rate schedules, set once per epoch as in the reference (REFERENCE §6.2)."""

from __future__ import annotations

import math
from typing import Callable, Sequence

__all__ = ["lr_factor_fn"]


def lr_factor_fn(
    *,
    schedule: str,
    warmup_epochs: int,
    epochs: int,
    lr_steps: Sequence[int] = (),
    lr_decay: float = 0.1,
    min_factor: float = 0.0,
) -> Callable[[int], float]:
    """Return ``epoch -> lr / base_lr`` for a 0-based epoch.

    ``step`` is the reference: linear warm-up ``(e + 1) / warmup`` for ``e < warmup``, then
    ``decay ** (number of steps s with e >= s)``. ``cosine`` keeps the same warm-up and then
    anneals to ``min_factor`` at the last epoch (used by the fast CPU schedules).
    """
    steps = sorted(int(s) for s in lr_steps)

    def factor(epoch: int) -> float:
        if epoch < warmup_epochs:
            return (epoch + 1) / warmup_epochs
        if schedule == "step":
            return lr_decay ** sum(1 for s in steps if epoch >= s)
        if schedule == "cosine":
            span = max(1, epochs - warmup_epochs)
            progress = min(1.0, (epoch - warmup_epochs) / span)
            return min_factor + (1.0 - min_factor) * 0.5 * (1.0 + math.cos(math.pi * progress))
        raise ValueError(f"unknown schedule {schedule!r}")

    return factor
