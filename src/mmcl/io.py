"""Atomic file writes: a crash or a kill never leaves a half-written file where a good one was.

Every file mmcl writes (prepared arrays, stores, composites, checkpoints, scores, reports) goes
through :func:`atomic_path`: the content is written to a temporary file in the target folder,
flushed to disk, and only then renamed over the target (``os.replace`` is atomic on POSIX and
Windows). Readers see the old file or the new one, never a partial one.
"""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

__all__ = [
    "atomic_path",
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_text",
    "atomic_write_json",
    "atomic_save_npy",
    "atomic_savez",
    "exclusive_lock",
    "LockedError",
    "TMP_SUFFIX",
]

TMP_SUFFIX = ".tmp"  # temporary files are ".<name>.<random>.tmp" beside the target


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(final: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``final``; when the block succeeds, move it over ``final``.

    The caller writes the temporary path by any means (``np.save``, ``PIL.Image.save``,
    ``torch.save``, ``onnx`` export ...). On an exception the temporary file is removed and
    ``final`` is untouched. The file gets the usual permissions (0666 minus the umask), not
    ``mkstemp``'s private 0600.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=TMP_SUFFIX, dir=final.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:  # the content must be on disk before the rename makes it visible
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write(final: str | os.PathLike[str], writer: Callable[[Any], Any], mode: str = "wb") -> Path:
    """Open a temporary file beside ``final`` with ``mode``, let ``writer(fh)`` fill it, then rename."""
    with atomic_path(final) as tmp:
        with open(tmp, mode) as fh:
            writer(fh)
    return Path(final)


def atomic_write_bytes(final: str | os.PathLike[str], data: bytes) -> Path:
    return atomic_write(final, lambda fh: fh.write(data))


def atomic_write_text(final: str | os.PathLike[str], text: str) -> Path:
    return atomic_write_bytes(final, text.encode("utf-8"))


def atomic_write_json(final: str | os.PathLike[str], obj: Any, *, indent: int | None = 2) -> Path:
    return atomic_write_text(final, json.dumps(obj, indent=indent, default=str) + "\n")


def atomic_save_npy(final: str | os.PathLike[str], array: np.ndarray) -> Path:
    return atomic_write(final, lambda fh: np.save(fh, array, allow_pickle=False))


def atomic_savez(final: str | os.PathLike[str], **arrays: Any) -> Path:
    return atomic_write(final, lambda fh: np.savez(fh, **arrays))


class LockedError(RuntimeError):
    """Another process holds the lock (the message names the lock file and that process)."""


@contextmanager
def exclusive_lock(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Hold an exclusive, non-blocking OS lock on ``path`` for the block; raise :class:`LockedError`
    at once if another process holds it.

    The lock is ``flock`` on POSIX, so the kernel drops it when the holder exits or is killed:
    a crashed run never leaves a stale lock behind. The file keeps the holder's PID for the
    error message. Where ``fcntl`` does not exist (Windows) the block runs unlocked.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield path
        return
    fh = open(path, "a+")
    try:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "unknown"
            raise LockedError(f"{path} is locked by another process (pid {holder})") from None
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        try:
            yield path
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
    finally:
        fh.close()
