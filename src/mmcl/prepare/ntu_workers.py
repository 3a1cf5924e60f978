"""Parse + denoise of raw NTU files in worker processes, with a resumable per-chunk cache.

Workers process chunks of files and write each chunk's results (centred frames, colours, per-sample
info, and errors) as one ``.npz`` shard into the cache folder, atomically. A rerun reuses every shard
sample whose file size and mtime are unchanged (:func:`load_cache`). Workers die with the parent
(Linux ``PDEATHSIG``) and leave Ctrl-C to it.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import sys
import uuid
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from mmcl.formats.ntu import process_file, warm_up
from mmcl.formats.ntu_denoise import NTUDenoiseError
from mmcl.formats.ntu_parse import NTUParseError, NTUPrepareError
from mmcl.io import atomic_savez

__all__ = ["CACHE_FORMAT", "CachedResult", "process_chunk", "load_cache", "raise_cached", "run_chunks"]

CACHE_FORMAT = 1
_PR_SET_PDEATHSIG = 1  # linux/prctl.h

def process_chunk(
    shard: str, items: list[tuple[str, str, int, int]], fix_quirks: bool, on_file: Callable[[str], None] | None
) -> tuple[str, list[dict[str, Any]]]:
    """Process files and write one cache shard; returns the shard path and the errors."""
    names, sizes, mtimes, lengths, actors, infos = [], [], [], [], [], []
    joints: list[np.ndarray] = []
    colors: list[np.ndarray] = []
    errors: list[dict[str, Any]] = []
    for name, path, size, mtime in items:
        if on_file is not None:
            on_file(path)
        try:
            res = process_file(path, fix_quirks=fix_quirks)
        except NTUPrepareError as exc:
            errors.append(
                {"name": name, "path": path, "size": size, "mtime_ns": mtime, "line": exc.line,
                 "kind": type(exc).__name__, "reason": exc.reason, "message": str(exc)}
            )
            continue
        names.append(name)
        sizes.append(size)
        mtimes.append(mtime)
        lengths.append(len(res.joints))
        actors.append(res.num_actors)
        infos.append(res.info)
        joints.append(res.joints[:, : 75 * res.num_actors].reshape(-1))
        colors.append(res.colors[:, : res.num_actors].reshape(-1))
    atomic_savez(
        Path(shard),
        names=np.array(names, dtype="U20"),
        sizes=np.array(sizes, dtype=np.int64),
        mtimes=np.array(mtimes, dtype=np.int64),
        lengths=np.array(lengths, dtype=np.int64),
        actors=np.array(actors, dtype=np.int64),
        joints=np.concatenate(joints) if joints else np.zeros(0, np.float32),
        colors=np.concatenate(colors) if colors else np.zeros(0, np.float32),
        info=np.array(json.dumps(infos)),
        errors=np.array(json.dumps(errors)),
    )
    return shard, errors



@dataclass(frozen=True)
class CachedResult:
    shard: Path
    index: int  # row in the shard, -1 for a cached error
    ok: bool


def load_cache(cache: Path, files: dict[str, tuple[str, int, int]]) -> dict[str, CachedResult]:
    """Cached result of every file whose size and mtime are unchanged since it was processed."""
    done: dict[str, CachedResult] = {}
    for shard in sorted(cache.glob("shard-*.npz")):
        try:
            with np.load(shard) as z:
                names, sizes, mtimes = z["names"].tolist(), z["sizes"].tolist(), z["mtimes"].tolist()
                errors = json.loads(str(z["errors"]))
        except (OSError, ValueError, KeyError):  # a damaged shard is simply redone
            continue
        for i, (n, size, mtime) in enumerate(zip(names, sizes, mtimes)):
            if n in files and files[n][1:] == (size, mtime):
                done[n] = CachedResult(shard, i, True)
        for e in errors:
            n = e["name"]
            if n in files and files[n][1:] == (e["size"], e["mtime_ns"]):
                done[n] = CachedResult(shard, -1, False)
    return done



def raise_cached(shard: Path, name: str) -> None:
    with np.load(shard) as z:
        for e in json.loads(str(z["errors"])):
            if e["name"] == name:
                cls = NTUParseError if e["kind"] == "NTUParseError" else NTUDenoiseError
                raise cls(e["path"], e["reason"], e["line"])


def run_chunks(
    todo: list[tuple[str, str, int, int]], cache: Path, fix_quirks: bool, workers: int, strict: bool,
    progress: bool, chunk_size: int, on_file: Callable[[str], None] | None,
) -> None:
    chunks = [todo[i : i + chunk_size] for i in range(0, len(todo), chunk_size)]
    bar = _progress(len(todo), progress)

    def shard_path() -> str:
        return str(cache / f"shard-{uuid.uuid4().hex}.npz")

    def check(errors: list[dict[str, Any]]) -> None:
        if strict and errors:
            e = errors[0]
            cls = NTUParseError if e["kind"] == "NTUParseError" else NTUDenoiseError
            raise cls(e["path"], e["reason"], e["line"])

    if chunks:
        # compile / load the compiled parser once, before any file is timed or forked: forked workers
        # inherit it, spawned ones load numba's on-disk cache in their initializer
        warm_up()
    try:
        if workers <= 1 or len(chunks) <= 1:
            for ch in chunks:
                _, errors = process_chunk(shard_path(), ch, fix_quirks, on_file)
                bar.update(len(ch))
                check(errors)
            return
        with ProcessPoolExecutor(max_workers=workers, initializer=init_worker, initargs=(os.getpid(),)) as pool:
            pending = {pool.submit(process_chunk, shard_path(), ch, fix_quirks, on_file): len(ch) for ch in chunks}
            try:
                while pending:
                    finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for fut in finished:
                        n = pending.pop(fut)
                        _, errors = fut.result()
                        bar.update(n)
                        check(errors)
            except BaseException:
                pool.shutdown(wait=False, cancel_futures=True)
                raise
    finally:
        bar.close()


def init_worker(parent: int) -> None:
    """Worker start: die with the parent (a SIGKILLed prepare must not leave ~350 MB workers behind,
    Linux ``prctl(PR_SET_PDEATHSIG)``), leave Ctrl-C to the parent, load the compiled parser."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: workers end when they find the call queue closed
        pass
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    warm_up()


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(total: int, enabled: bool) -> Any:
    if not enabled or total == 0:
        return _NoBar()
    return tqdm(total=total, unit="file", desc="parse+denoise", file=sys.stderr)
