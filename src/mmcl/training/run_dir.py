"""Run directories: what a training run writes, the guard against training into one twice, resume paths.

Layout of ``<work_dir>/`` (written by :func:`mmcl.training.fit.train`)::

    config.yaml        resolved configuration
    env.json           versions, seed, machine
    checkpoints/       last.ckpt (every epoch, atomic) and best.ckpt, each with the model card
    tb/                TensorBoard events        csv/metrics.csv   CSV log
    scores.npz         per-sample test scores of the selected checkpoint (names, labels, scores)
    test_metrics.json  test_per_class.csv  test_confusion.csv
    curves.png  confusion.png  per_class.png
    results.json       summary (best epoch, accuracies, times)
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import lightning
import numpy as np
import torch
import torchvision
import yaml

import mmcl
from mmcl.config import Config, config_to_dict
from mmcl.device import cpu_has_native_bf16
from mmcl.io import LockedError, atomic_write_bytes, exclusive_lock

__all__ = [
    "RunDirectoryError",
    "RUN_LOCK",
    "environment_info",
    "write_run_header",
    "owns_run_directory",
    "guarded_run_directory",
    "resolve_resume",
]


def environment_info(seed: int | None = None) -> dict[str, Any]:
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
        "cpu_native_bf16": cpu_has_native_bf16(),
        "seed": seed,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def write_run_header(cfg: Config, run_dir: Path) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(run_dir / "config.yaml", yaml.safe_dump(config_to_dict(cfg), sort_keys=False).encode())
    atomic_write_bytes(run_dir / "env.json", json.dumps(environment_info(cfg.trainer.seed), indent=2).encode())


class RunDirectoryError(RuntimeError):
    """The run directory already holds a run, or another training is writing it."""


RUN_LOCK = ".mmcl-train.lock"  # held by the training process while it writes the run directory


def owns_run_directory() -> bool:
    """False in the extra DDP processes (torchrun, SLURM or Lightning's launcher set their rank
    variables); only the first process guards and locks the run directory."""
    return all(os.environ.get(k, "0") == "0" for k in ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID"))


def existing_run(run_dir: Path) -> list[str]:
    return [name for name in ("checkpoints/last.ckpt", "results.json") if (run_dir / name).is_file()]


RUN_OUTPUTS = ("checkpoints", "tb", "csv", "results.json", "config.yaml", "env.json", "curves.png")
EVAL_OUTPUTS = ("scores.npz", "metrics.json", "per_class.csv", "confusion.csv", "confusion.png", "per_class.png")


def clear_run(run_dir: Path) -> None:
    """Remove what a training run writes (module docstring), nothing else of the folder."""
    names = [*RUN_OUTPUTS, *EVAL_OUTPUTS, *(f"{p}_{n}" for p in ("test", "val") for n in EVAL_OUTPUTS)]
    for name in names:
        path = run_dir / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.is_file():
            path.unlink()


def resolve_resume(resume: str | Path, run_dir: Path) -> Path:
    """The checkpoint ``--resume`` means: a file, a run directory's last.ckpt, or (bare ``--resume``)
    the configured run directory's."""
    fallback = run_dir / "checkpoints" / "last.ckpt"
    if str(resume) in ("auto", "last"):
        if fallback.is_file():
            return fallback
        raise FileNotFoundError(f"nothing to resume in {run_dir}: it holds no checkpoints/last.ckpt (start the run without --resume)")
    path = Path(resume)
    if path.is_dir():
        path = path / "checkpoints" / "last.ckpt"
    if not path.is_file():
        raise FileNotFoundError(f"cannot resume: checkpoint not found: {path}")
    return path




@contextmanager
def guarded_run_directory(run_dir: Path, *, resuming: bool, overwrite: bool) -> Iterator[None]:
    """Hold the run directory's lock while training writes it; refuse a directory that already holds
    a run unless resuming or ``overwrite`` (which first removes the old run's outputs). A start that
    fails before writing anything leaves no folder behind."""
    created = not run_dir.exists()
    try:
        with exclusive_lock(run_dir / RUN_LOCK):
            found = existing_run(run_dir)
            if found and not resuming and not overwrite:
                raise RunDirectoryError(
                    f"{run_dir} already holds a run ({', '.join(found)}): continue it with --resume {run_dir}, "
                    "train into another --work-dir, or pass --overwrite to start it again from scratch"
                )
            if found and not resuming:  # overwrite: the old run goes first, so the two never mix
                clear_run(run_dir)
            yield
    except LockedError as err:
        raise RunDirectoryError(
            f"{run_dir} is being written by another training ({err}); wait for it or choose another --work-dir"
        ) from None
    finally:
        if created and run_dir.is_dir() and [p.name for p in run_dir.iterdir()] == [RUN_LOCK]:
            (run_dir / RUN_LOCK).unlink()
            run_dir.rmdir()
