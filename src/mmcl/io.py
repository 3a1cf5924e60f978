"""Atomic file writes: a crash or a kill never leaves a half-written file where a good one was.

Every file mmcl writes (prepared arrays, stores, composites, checkpoints, scores, reports) goes
through :func:`atomic_path`: the content is written to a temporary file in the target folder,
flushed to disk, and only then renamed over the target (``os.replace`` is atomic on POSIX and
Windows). Readers see the old file or the new one, never a partial one.

Outputs made of several files are replaced as a whole: :func:`staged_folder` fills a temporary
folder beside the target and swaps it in (one atomic exchange on Linux); :func:`commit_set` moves a
staged set of entries into a folder under a journal, which :func:`finish_commit` completes after a
kill, so the set is never left half old and half new.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

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
    "check_output_folder",
    "remove_stale_temporaries",
    "staged_folder",
    "commit_set",
    "pending_commit",
    "finish_commit",
    "COMMIT_JOURNAL",
    "printable",
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
    except OSError as exc:
        raise _naming(exc, final) from exc
    finally:
        if tmp.exists():
            tmp.unlink()


def _naming(exc: OSError, target: Path) -> OSError:
    """The same error, naming the output being written when the OS named none or only a temporary."""
    if exc.errno is None or (exc.filename is not None and TMP_SUFFIX not in str(exc.filename)):
        return exc
    return type(exc)(exc.errno, f"{exc.strerror or exc} while writing", str(target))


def atomic_write(final: str | os.PathLike[str], writer: Callable[[Any], Any], mode: str = "wb") -> Path:
    """Open a temporary file beside ``final`` with ``mode``, let ``writer(fh)`` fill it, then rename."""
    with atomic_path(final) as tmp:
        with open(tmp, mode) as fh:
            writer(fh)
    return Path(final)


def atomic_write_bytes(final: str | os.PathLike[str], data: bytes) -> Path:
    return atomic_write(final, lambda fh: fh.write(data))


def atomic_write_text(final: str | os.PathLike[str], text: str) -> Path:
    """UTF-8; a file name holding undecodable bytes (surrogate escapes) is written as ``\\udcNN``
    instead of failing after the real work is done."""
    return atomic_write_bytes(final, text.encode("utf-8", "backslashreplace"))


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


# --------------------------------------------------------------------------- output folders


def check_output_folder(path: str | os.PathLike[str], what: str = "--out") -> Path:
    """Fail before any long work when ``path`` cannot become an output folder: it names a file, or
    the folder (or the nearest existing parent it would be created in) refuses a test file."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"{what} {path} is a file, not a folder; give a folder")
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        raise NotADirectoryError(f"{what} {path}: {probe} is a file, so the folder cannot be created")
    try:
        fd, name = tempfile.mkstemp(prefix=".mmcl-write-test.", suffix=TMP_SUFFIX, dir=probe)
    except OSError as exc:
        raise PermissionError(f"{what} {path}: cannot write in {probe} ({exc.strerror or exc})") from None
    os.close(fd)
    os.unlink(name)
    return path


def remove_stale_temporaries(folder: str | os.PathLike[str], name: str | None = None) -> list[Path]:
    """Remove the ``.<name>.<random>.tmp`` files and folders a killed writer left in ``folder`` (any
    name when ``name`` is None). Call it only while holding the lock that guards ``folder``."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    prefix = f".{name}." if name is not None else "."
    removed = []
    for entry in folder.iterdir():
        if entry.name.startswith(prefix) and entry.name.endswith(TMP_SUFFIX):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            removed.append(entry)
    return removed


def _sync_tree(root: Path) -> None:
    """Flush every file below ``root`` to disk (writers such as ``torch.jit.save`` do not fsync)."""
    for dirpath, _, filenames in os.walk(root):
        for fname in filenames:
            fd = os.open(os.path.join(dirpath, fname), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


_RENAME_EXCHANGE = 2  # linux/fs.h
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one atomic step (Linux ``renameat2(RENAME_EXCHANGE)``); False where unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    ok = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0
    return ok


def _swap_in(staged: Path, final: Path) -> None:
    """Put the folder ``staged`` at ``final``; the old ``final`` ends up at ``staged`` (then removed)."""
    if not final.exists():
        os.rename(staged, final)
        return
    if not _exchange(staged, final):  # two renames: a reader may briefly find no folder, never a mix
        old = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=TMP_SUFFIX, dir=final.parent))
        os.rmdir(old)
        os.rename(final, old)
        os.rename(staged, final)
        os.rename(old, staged)


@contextmanager
def staged_folder(final: str | os.PathLike[str], what: str = "--out") -> Iterator[Path]:
    """Yield an empty temporary folder beside ``final``; when the block succeeds it replaces
    ``final`` as a whole, so a reader sees the complete old set or the complete new one.

    A lock (``.<name>.lock`` beside ``final``) refuses a second writer at once, and the
    temporaries a killed writer left beside ``final`` are removed first. On an exception the
    staged folder is removed and ``final`` is untouched.
    """
    final = Path(final)
    check_output_folder(final, what)
    final.parent.mkdir(parents=True, exist_ok=True)
    try:
        with exclusive_lock(final.parent / f".{final.name}.lock"):
            remove_stale_temporaries(final.parent, final.name)
            staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=TMP_SUFFIX, dir=final.parent))
            try:
                yield staging
                _sync_tree(staging)
                os.chmod(staging, 0o777 & ~_umask())
                _swap_in(staging, final)
            except OSError as exc:
                raise _naming(exc, final) from exc
            finally:
                shutil.rmtree(staging, ignore_errors=True)
    except LockedError as err:
        raise LockedError(f"{what} {final} is being written by another process ({err})") from None


COMMIT_JOURNAL = ".mmcl-commit.json"  # in a folder whose entries are being replaced as a set


def commit_set(staging: str | os.PathLike[str], folder: str | os.PathLike[str], remove: Sequence[str] = ()) -> None:
    """Move every entry of ``staging`` into ``folder`` (replacing same-named ones) and remove the
    entries named in ``remove``, as one set.

    The plan is written to ``folder/COMMIT_JOURNAL`` first; if the process dies part-way,
    :func:`finish_commit` (run by the next writer) completes it, and readers that check
    :func:`pending_commit` refuse the folder meanwhile. The caller holds the folder's lock.
    """
    staging, folder = Path(staging), Path(folder)
    _sync_tree(staging)
    entries = sorted(p.name for p in staging.iterdir())
    plan = {"staging": staging.name, "entries": entries, "remove": sorted(set(remove) - set(entries))}
    atomic_write_json(folder / COMMIT_JOURNAL, plan)
    finish_commit(folder)


def pending_commit(folder: str | os.PathLike[str]) -> bool:
    """True while ``folder`` holds a set replacement that a killed writer did not finish."""
    return (Path(folder) / COMMIT_JOURNAL).is_file()


def finish_commit(folder: str | os.PathLike[str]) -> bool:
    """Complete an interrupted :func:`commit_set` in ``folder`` (idempotent); True if there was one."""
    folder = Path(folder)
    journal = folder / COMMIT_JOURNAL
    if not journal.is_file():
        return False
    plan = json.loads(journal.read_text(encoding="utf-8"))
    staging = folder / plan["staging"]
    trash = folder / f".replaced{TMP_SUFFIX}"
    trash.mkdir(exist_ok=True)
    for name in plan["entries"]:
        if (staging / name).exists() or (staging / name).is_symlink():  # not moved in yet
            if (folder / name).exists() or (folder / name).is_symlink():
                os.rename(folder / name, trash / f"{name}.{os.urandom(4).hex()}")
            os.rename(staging / name, folder / name)
    for name in plan["remove"]:
        if (folder / name).exists() or (folder / name).is_symlink():
            os.rename(folder / name, trash / f"{name}.{os.urandom(4).hex()}")
    journal.unlink()
    shutil.rmtree(trash, ignore_errors=True)
    shutil.rmtree(staging, ignore_errors=True)
    return True


def printable(name: str | os.PathLike[str]) -> str:
    """A file name as text that can be printed and written to UTF-8 reports: bytes the file system
    holds in another encoding (surrogate escapes) become ``\\xNN``."""
    text = os.fspath(name)
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
