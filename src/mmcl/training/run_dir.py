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

import copy
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
from mmcl.config import Config, ConfigError, config_from_dict, config_to_dict, flat_keys
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
    "RESUME_FREE_KEYS",
    "resumed_config",
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


def write_run_header(cfg: Config, run_dir: Path, *, resumed: bool = False) -> None:
    """config.yaml and env.json; a resumed run keeps the machines of its earlier parts in env.json
    (``earlier_parts``, oldest first), since one run may begin on one machine and end on another."""
    run_dir.mkdir(parents=True, exist_ok=True)
    env = environment_info(cfg.trainer.seed)
    old_path = run_dir / "env.json"
    if resumed and old_path.is_file():
        try:
            old = json.loads(old_path.read_text())
        except (OSError, ValueError):
            old = None
        if isinstance(old, dict):
            env["earlier_parts"] = [*old.pop("earlier_parts", []), old]
    atomic_write_bytes(run_dir / "config.yaml", yaml.safe_dump(config_to_dict(cfg), sort_keys=False).encode())
    atomic_write_bytes(old_path, json.dumps(env, indent=2).encode())


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



# Settings a resumed run may change: where the files are, how fast it runs, what it prints, where it
# runs, and the epoch count (to extend a finished run). Any other difference (model, data pipeline,
# optimiser, schedule, seed, precision, devices) would silently continue the checkpoint as a different
# run than the one it began.
RESUME_FREE_KEYS = frozenset({
    "name", "data.path", "data.num_workers", "data.test_batch_size", "model.init_from", "trainer.epochs",
    "trainer.work_dir", "trainer.accelerator", "trainer.compile", "trainer.channels_last",
    "trainer.keep_eval_scores", "trainer.log_every_n_steps", "trainer.progress", "trainer.num_threads",
    "trainer.checkpoint_minutes",
})


def recorded_config(resume_path: Path) -> tuple[Path, Config] | None:
    """The ``config.yaml`` of the run a checkpoint belongs to (``<run>/checkpoints/x.ckpt``), if any."""
    path = resume_path.parent.parent / "config.yaml" if resume_path.parent.name == "checkpoints" else None
    if path is None or not path.is_file():
        return None
    try:
        return path, config_from_dict(yaml.safe_load(path.read_text()) or {})
    except (ConfigError, yaml.YAMLError, AttributeError) as err:  # AttributeError: not a mapping
        raise RunDirectoryError(
            f"cannot resume {resume_path}: its run's {path} is not a configuration this mmcl reads "
            f"({str(err).splitlines()[0]}); start a new run, or resume with the mmcl version that began it"
        ) from None


def resumed_config(cfg: Config, resume_path: Path) -> tuple[Config, str | None]:
    """``cfg`` as the run being resumed trained it, and a note on what differs (precision kept,
    epoch count changed).

    The precision is the run's own (``config.yaml`` records the one it used, e.g. float32 after a
    CPU without native bf16), so a run started on one machine continues with the same arithmetic on
    another. Any other difference outside :data:`RESUME_FREE_KEYS` is refused, naming each key.
    """
    found = recorded_config(resume_path)
    if found is None:  # a bare checkpoint file: nothing recorded to compare with
        return cfg, None
    path, run = found
    old, new = flat_keys(config_to_dict(run)), flat_keys(config_to_dict(cfg))
    changed = [
        f"{key}: {old.get(key)!r} -> {new.get(key)!r}"
        for key in sorted(set(old) | set(new))
        if key not in RESUME_FREE_KEYS and key != "trainer.precision" and old.get(key) != new.get(key)
    ]
    if changed:
        raise RunDirectoryError(
            f"cannot resume {resume_path}: its run ({path}) was trained with other settings ("
            + "; ".join(changed)
            + "). Resume with the run's own settings, or start a new run (another --work-dir, or --overwrite)"
        )
    notes = []
    if run.trainer.epochs != cfg.trainer.epochs:
        notes.append(
            f"trainer.epochs {run.trainer.epochs} -> {cfg.trainer.epochs}"
            + (" (the cosine schedule is recomputed for the new length)" if cfg.optim.schedule == "cosine" else "")
        )
    if run.trainer.precision != cfg.trainer.precision:
        notes.append(f"trainer.precision {run.trainer.precision} (as the run began; the recipe now gives {cfg.trainer.precision})")
        cfg = copy.deepcopy(cfg)
        cfg.trainer.precision = run.trainer.precision
    return cfg, "; ".join(notes) or None


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
