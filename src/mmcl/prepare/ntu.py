"""NTU RGB+D 60/120: raw ``.skeleton`` folders -> prepared benchmark folders (REFERENCE §2).

Pipeline: scan the folders, drop the samples of the shipped missing-skeleton lists (§2.1), parse and
denoise every file in worker processes (:mod:`mmcl.formats.ntu`), then pad to
``T = 300`` and write every benchmark split in the reference row order (§2.7).

Padding length: the reference pads to the dataset maximum of denoised frame counts, which is 300 on
the full datasets (its source comment says 300). mmcl always uses ``NTU_MAX_FRAMES = 300`` so small
subsets get the same shape; a longer sample raises ``T`` to its length (recorded in the report).

Lone actors (§2.6.2): NTU-60 zero-fills actor 2, NTU-120 duplicates actor 1 into it (as the two
reference scripts do). With ``fix_quirks=True`` both zero-fill, so the same recording yields the
same array in both datasets. Colours follow ``x`` (duplicated where ``x`` is).

Resume: workers process chunks of files and write each chunk's results (centred frames, colours,
per-sample info, and errors) as one ``.npz`` shard into ``<out>/.cache/<variant>/``, atomically
(temporary file + ``os.replace``). A rerun reuses every shard sample whose file size and mtime are
unchanged, so an interrupted run only redoes unfinished chunks. The cache is removed after a
successful run unless ``keep_cache=True``.

Outputs as a set: the benchmark folders, npz files and report are written into a temporary folder
inside ``<out>`` and moved into place together under a journal (:func:`mmcl.io.commit_set`), so
``<out>`` never holds new ``xsub`` beside old ``xview``; a kill during the move is finished by the
next run. A lock (``<out>/.mmcl-prepare.lock``) refuses a second run into the same folder; temporary
files a killed run left are removed; worker processes die with the parent (Linux ``PDEATHSIG``).

Errors: a file that fails (:class:`NTUPrepareError`: bad syntax with file and line, or a sample the
reference would crash on) is skipped and listed in ``<out>/prepare_report.json`` and ``.txt``;
``strict=True`` raises the first one instead.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import numpy as np

import mmcl
from mmcl.datasets.prepared import write_prepared
from mmcl.io import (
    LockedError, atomic_savez, atomic_write_text, check_output_folder, commit_set, exclusive_lock, finish_commit,
    printable, remove_stale_temporaries,
)
from mmcl.formats.ntu import parse_name, process_file, warm_up
from mmcl.formats.ntu_denoise import NTUDenoiseError
from mmcl.formats.ntu_parse import NTU_NUM_JOINTS, NTUParseError, NTUPrepareError

__all__ = [
    "prepare_ntu",
    "PrepareReport",
    "benchmark_splits",
    "missing_skeletons",
    "NTU_MAX_FRAMES",
    "BENCHMARKS",
]

NTU_MAX_FRAMES = 300  # padded length (REFERENCE §2.6.2: dataset maximum, "300" in the source comment)
NUM_PERSONS = 2
NUM_CLASSES = {"ntu60": 60, "ntu120": 120}
# Valid ranges of the name fields (REFERENCE §1.1): setup, camera, performer, replication, action.
NAME_RANGES = {"ntu60": (17, 3, 40, 2, 60), "ntu120": (32, 3, 106, 2, 120)}
BENCHMARKS = {"ntu60": ("xsub", "xview"), "ntu120": ("xsub", "xset")}
NPZ_NAMES = {
    ("ntu60", "xsub"): "NTU60_CS.npz",
    ("ntu60", "xview"): "NTU60_CV.npz",
    ("ntu120", "xsub"): "NTU120_CSub.npz",
    ("ntu120", "xset"): "NTU120_CSet.npz",
}
# Training subjects (REFERENCE §2.7, TS60 and TS120).
TRAIN_SUBJECTS_60 = (1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38)
TRAIN_SUBJECTS_120 = TRAIN_SUBJECTS_60 + (
    45, 46, 47, 49, 50, 52, 53, 54, 55, 56, 57, 58, 59, 70, 74, 78, 80, 81, 82, 83, 84, 85, 86, 89,
    91, 92, 93, 94, 95, 97, 98, 100, 103,
)
TRAIN_CAMERAS = (2, 3)  # X-View (REFERENCE §2.7)
TEST_CAMERAS = (1,)
# Two-person classes (REFERENCE §10.1), used to flag denoising results that look wrong (fixes §12.22).
TWO_PERSON_CLASSES = frozenset(range(50, 61)) | frozenset(range(106, 121))

_CACHE_FORMAT = 1
REPORT_FILES = ("prepare_report.json", "prepare_report.txt")
PREPARE_LOCK = ".mmcl-prepare.lock"
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def missing_skeletons(dataset: str) -> frozenset[str]:
    """The shipped list of samples excluded for missing skeletons (REFERENCE §2.1)."""
    fname = f"{dataset}_samples_with_missing_skeletons.txt"
    text = resources.files("mmcl").joinpath("resources", "ntu", fname).read_text(encoding="utf-8")
    return frozenset(line.strip() for line in text.splitlines() if line.strip())


def benchmark_splits(names: Sequence[str], dataset: str, benchmark: str) -> tuple[list[int], list[int]]:
    """Row indices (into ``names``, in sample order) of the train and test split, in reference order.

    For each ID of the rule in ascending order, all matching samples in ``names`` order are appended
    (REFERENCE §2.7): X-Sub grouped by performer, X-View by camera, X-Set by setup.
    """
    fields = [parse_name(n) for n in names]
    if benchmark == "xsub":
        key, top = 2, NAME_RANGES[dataset][2]
        train_ids = list(TRAIN_SUBJECTS_60 if dataset == "ntu60" else TRAIN_SUBJECTS_120)
        test_ids = [i for i in range(1, top + 1) if i not in train_ids]
    elif benchmark == "xview" and dataset == "ntu60":
        key, train_ids, test_ids = 1, list(TRAIN_CAMERAS), list(TEST_CAMERAS)
    elif benchmark == "xset" and dataset == "ntu120":
        key, train_ids, test_ids = 0, list(range(2, 33, 2)), list(range(1, 32, 2))
    else:
        raise ValueError(f"unknown benchmark {benchmark!r} for {dataset}")
    by_id: dict[int, list[int]] = {}
    for i, f in enumerate(fields):
        by_id.setdefault(f[key], []).append(i)
    train = [i for k in sorted(train_ids) for i in by_id.get(k, [])]
    test = [i for k in sorted(test_ids) for i in by_id.get(k, [])]
    return train, test


# --- per-file work (runs in worker processes) ---------------------------------------------------


def _process_chunk(
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


# --- report -------------------------------------------------------------------------------------


@dataclass
class PrepareReport:
    """What a :func:`prepare_ntu` run did; written to ``<out>/prepare_report.json`` and ``.txt``."""

    dataset: str
    out: str
    fix_quirks: bool
    files_found: int = 0
    excluded_missing_skeletons: int = 0
    ignored: list[str] = field(default_factory=list)  # files outside the dataset / bad names / duplicates
    samples: int = 0  # successfully prepared
    parsed: int = 0  # processed in this run
    reused: int = 0  # taken from the resume cache
    failed: list[dict[str, Any]] = field(default_factory=list)
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    max_frames: int = NTU_MAX_FRAMES
    longest_sample: int = 0
    two_person_class_with_one_actor: int = 0
    one_person_class_with_two_actors: int = 0
    seconds: float = 0.0
    mmcl_version: str = mmcl.__version__

    def to_text(self) -> str:
        lines = [
            f"mmcl {self.mmcl_version} prepare ntu: {self.dataset} -> {self.out}",
            f"fix_quirks={self.fix_quirks}  files found={self.files_found}  "
            f"excluded (missing skeletons)={self.excluded_missing_skeletons}  ignored={len(self.ignored)}",
            f"prepared={self.samples}  processed now={self.parsed}  reused from cache={self.reused}  "
            f"failed={len(self.failed)}  T={self.max_frames}  longest={self.longest_sample}  "
            f"time={self.seconds:.1f}s",
            f"two-person classes left with one actor={self.two_person_class_with_one_actor}  "
            f"one-person classes with two actors={self.one_person_class_with_two_actors}",
        ]
        for bench, c in self.counts.items():
            lines.append(f"  {bench}: train={c.get('train', 0)} test={c.get('test', 0)}")
        if self.failed:
            lines.append("failed samples (skipped):")
            lines += [f"  {e['name']}: {e['message']}" for e in self.failed]
        if self.ignored:
            lines.append("ignored files:")
            lines += [f"  {x}" for x in self.ignored]
        return "\n".join(lines) + "\n"

    def write(self, out: Path) -> None:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / REPORT_FILES[0], json.dumps(asdict(self), indent=1))
        atomic_write_text(out / REPORT_FILES[1], self.to_text())


# --- main entry ---------------------------------------------------------------------------------


def _scan(dirs: Sequence[Path], dataset: str, report: PrepareReport) -> dict[str, tuple[str, int, int]]:
    """name -> (path, size, mtime_ns) of the files belonging to the dataset, minus excluded ones."""
    limits = NAME_RANGES[dataset]
    missing = missing_skeletons(dataset)
    found: dict[str, tuple[str, int, int]] = {}
    for d in dirs:
        d = Path(d)
        if not d.is_dir():
            raise FileNotFoundError(f"skeleton folder not found: {d}")
        for p in sorted(d.glob("*.skeleton")):
            name = p.name[: -len(".skeleton")]
            report.files_found += 1
            try:
                fields = parse_name(name)
            except ValueError:
                report.ignored.append(f"{printable(p)}: not an NTU sample name")
                continue
            if any(v < 1 or v > lim for v, lim in zip(fields, limits)):
                report.ignored.append(f"{printable(p)}: outside {dataset}")
                continue
            if name in missing:
                report.excluded_missing_skeletons += 1
                continue
            if name in found:
                report.ignored.append(f"{printable(p)}: duplicate of {printable(found[name][0])}")
                continue
            st = p.stat()
            found[name] = (str(p), st.st_size, st.st_mtime_ns)
    return dict(sorted(found.items()))


@dataclass(frozen=True)
class _Cached:
    shard: Path
    index: int  # row in the shard, -1 for a cached error
    ok: bool


def _load_cache(cache: Path, files: dict[str, tuple[str, int, int]]) -> dict[str, _Cached]:
    """Cached result of every file whose size and mtime are unchanged since it was processed."""
    done: dict[str, _Cached] = {}
    for shard in sorted(cache.glob("shard-*.npz")):
        try:
            with np.load(shard) as z:
                names, sizes, mtimes = z["names"].tolist(), z["sizes"].tolist(), z["mtimes"].tolist()
                errors = json.loads(str(z["errors"]))
        except (OSError, ValueError, KeyError):  # a damaged shard is simply redone
            continue
        for i, (n, size, mtime) in enumerate(zip(names, sizes, mtimes)):
            if n in files and files[n][1:] == (size, mtime):
                done[n] = _Cached(shard, i, True)
        for e in errors:
            n = e["name"]
            if n in files and files[n][1:] == (e["size"], e["mtime_ns"]):
                done[n] = _Cached(shard, -1, False)
    return done


def prepare_ntu(
    skeleton_dirs: Sequence[str | os.PathLike[str]],
    dataset: Literal["ntu60", "ntu120"],
    out: str | os.PathLike[str],
    *,
    workers: int = 2,
    strict: bool = False,
    fix_quirks: bool = False,
    progress: bool = True,
    npz: bool = False,
    colors: bool = True,
    keep_cache: bool = False,
    chunk_size: int = 128,
    on_file: Callable[[str], None] | None = None,
) -> PrepareReport:
    """Prepare every benchmark of NTU RGB+D 60 or 120 from raw ``.skeleton`` folders.

    Writes ``<out>/<benchmark>/`` prepared folders (``xsub``/``xview`` or ``xsub``/``xset``), the
    report ``<out>/prepare_report.{json,txt}`` and, with ``npz=True``, the reference npz files
    (``<out>/NTU60_CS.npz`` ...). ``on_file`` is called with each file path before it is parsed
    (progress hooks, tests); with ``workers > 1`` it must be picklable.
    """
    if dataset not in NUM_CLASSES:
        raise ValueError(f"dataset must be 'ntu60' or 'ntu120', got {dataset!r}")
    out = check_output_folder(out)
    out.mkdir(parents=True, exist_ok=True)
    try:
        with exclusive_lock(out / PREPARE_LOCK):
            return _prepare_locked(
                skeleton_dirs, dataset, out, workers=workers, strict=strict, fix_quirks=fix_quirks,
                progress=progress, npz=npz, colors=colors, keep_cache=keep_cache, chunk_size=chunk_size, on_file=on_file,
            )
    except LockedError as err:
        raise LockedError(f"--out {out} is being written by another mmcl prepare ({err}); wait for it or choose another --out") from None


def _prepare_locked(
    skeleton_dirs: Sequence[str | os.PathLike[str]], dataset: str, out: Path, *, workers: int, strict: bool,
    fix_quirks: bool, progress: bool, npz: bool, colors: bool, keep_cache: bool, chunk_size: int,
    on_file: Callable[[str], None] | None,
) -> PrepareReport:
    t0 = time.perf_counter()
    finish_commit(out)  # a run killed while moving its outputs into place: complete that first
    remove_stale_temporaries(out)
    report = PrepareReport(dataset=dataset, out=str(out), fix_quirks=fix_quirks)
    files = _scan([Path(d) for d in skeleton_dirs], dataset, report)

    cache = out / ".cache" / f"ntu-f{_CACHE_FORMAT}-{'fixed' if fix_quirks else 'reference'}"
    cache.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(cache)  # shards a killed worker was writing
    shutil.rmtree(out / ".cache" / "assemble", ignore_errors=True)
    cached = _load_cache(cache, files)
    todo = [(n, p, s, m) for n, (p, s, m) in files.items() if n not in cached]
    report.reused = len(files) - len(todo)
    if strict:
        for n, c in cached.items():
            if not c.ok:
                _raise_cached(c.shard, n)
    _run_chunks(todo, cache, fix_quirks, workers, strict, progress, chunk_size, on_file)
    report.parsed = len(todo)

    # gather cached results for the current file set
    cached = _load_cache(cache, files)
    shards: dict[Path, list[tuple[str, int]]] = {}
    for n in files:
        c = cached[n]
        shards.setdefault(c.shard, []).append((n, c.index))
    failed_names = set()
    for shard, items in shards.items():
        if any(i < 0 for _, i in items):
            with np.load(shard) as z:
                errs = {e["name"]: e for e in json.loads(str(z["errors"]))}
            for n, i in items:
                if i < 0:
                    report.failed.append(errs[n])
                    failed_names.add(n)
    names = [n for n in files if n not in failed_names]
    report.samples = len(names)
    stage = Path(tempfile.mkdtemp(prefix=".staging.", suffix=".tmp", dir=out))
    try:
        _assemble(names, files, cached, dataset, stage, out / ".cache", report, fix_quirks, npz, colors, skeleton_dirs)
        report.seconds = time.perf_counter() - t0
        report.write(stage)
        outputs = [*BENCHMARKS[dataset], *(NPZ_NAMES[(dataset, b)] for b in BENCHMARKS[dataset]), *REPORT_FILES]
        commit_set(stage, out, remove=outputs)  # npz files of an older run with --npz go too
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    if not keep_cache:
        shutil.rmtree(out / ".cache", ignore_errors=True)
    return report


def _raise_cached(shard: Path, name: str) -> None:
    with np.load(shard) as z:
        for e in json.loads(str(z["errors"])):
            if e["name"] == name:
                cls = NTUParseError if e["kind"] == "NTUParseError" else NTUDenoiseError
                raise cls(e["path"], e["reason"], e["line"])


def _run_chunks(
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
                _, errors = _process_chunk(shard_path(), ch, fix_quirks, on_file)
                bar.update(len(ch))
                check(errors)
            return
        with ProcessPoolExecutor(max_workers=workers, initializer=_init_worker, initargs=(os.getpid(),)) as pool:
            pending = {pool.submit(_process_chunk, shard_path(), ch, fix_quirks, on_file): len(ch) for ch in chunks}
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


def _init_worker(parent: int) -> None:
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
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover
        return _NoBar()
    return tqdm(total=total, unit="file", desc="parse+denoise", file=sys.stderr)


def _assemble(
    names: list[str], files: dict[str, tuple[str, int, int]], cached: dict[str, _Cached], dataset: str,
    out: Path, cache_root: Path, report: PrepareReport, fix_quirks: bool, npz: bool, want_colors: bool,
    skeleton_dirs: Iterable[Any],
) -> None:
    """Pad every sample and write all benchmark splits into ``out`` (reading each cache shard once)."""
    lengths = {}
    by_shard: dict[Path, list[str]] = {}
    for n in names:
        by_shard.setdefault(cached[n].shard, []).append(n)
    for shard, ns in by_shard.items():
        with np.load(shard) as z:
            lens = z["lengths"]
        for n in ns:
            lengths[n] = int(lens[cached[n].index])
    longest = max(lengths.values(), default=0)
    report.longest_sample = longest
    T = max(NTU_MAX_FRAMES, longest)
    report.max_frames = T
    duplicate = dataset == "ntu120" and not fix_quirks
    labels_all = np.array([parse_name(n)[4] - 1 for n in names], dtype=np.int64)
    pos = {n: i for i, n in enumerate(names)}

    # destinations: (benchmark, split) -> ordered row indices into names
    dests: dict[tuple[str, str], list[int]] = {}
    for bench in BENCHMARKS[dataset]:
        train, test = benchmark_splits(names, dataset, bench)
        dests[(bench, "train")] = train
        dests[(bench, "test")] = test
        report.counts[bench] = {"train": len(train), "test": len(test)}
    tmpdir = cache_root / "assemble"
    tmpdir.mkdir(parents=True, exist_ok=True)
    xs, cs, rows_of = {}, {}, {}
    for key, idx in dests.items():
        xs[key] = np.lib.format.open_memmap(tmpdir / f"x_{key[0]}_{key[1]}.npy", "w+", np.float32, (len(idx), T, 150))
        if want_colors:
            cs[key] = np.lib.format.open_memmap(
                tmpdir / f"c_{key[0]}_{key[1]}.npy", "w+", np.float32, (len(idx), T, NUM_PERSONS, NTU_NUM_JOINTS, 2)
            )
        for r, i in enumerate(idx):
            rows_of.setdefault(i, []).append((key, r))
    two_one = one_two = 0
    for shard, ns in by_shard.items():
        with np.load(shard) as z:
            lens, actors = z["lengths"], z["actors"]
            joints, colors = z["joints"], z["colors"]
        joff = np.concatenate(([0], np.cumsum(lens * actors * 75)))
        coff = np.concatenate(([0], np.cumsum(lens * actors * 50)))
        for n in ns:
            k = cached[n].index
            t, m = int(lens[k]), int(actors[k])
            j = joints[joff[k] : joff[k + 1]].reshape(t, 75 * m)
            c = colors[coff[k] : coff[k + 1]].reshape(t, m, NTU_NUM_JOINTS, 2)
            a = parse_name(n)[4]
            two_one += int(m == 1 and a in TWO_PERSON_CLASSES)
            one_two += int(m == 2 and a not in TWO_PERSON_CLASSES)
            for key, r in rows_of.get(pos[n], []):
                xs[key][r, :t, : 75 * m] = j
                if m == 1 and duplicate:
                    xs[key][r, :t, 75:] = j
                if want_colors:
                    cs[key][r, :t, :m] = c
                    if m == 1 and duplicate:
                        cs[key][r, :t, 1] = c[:, 0]
    report.two_person_class_with_one_actor = two_one
    report.one_person_class_with_two_actors = one_two

    sources = {"skeleton_dirs": [printable(Path(d).resolve()) for d in skeleton_dirs], "files": [printable(files[n][0]) for n in names]}
    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    k = NUM_CLASSES[dataset]
    for bench in BENCHMARKS[dataset]:
        meta = {
            "dataset": dataset, "benchmark": bench, "layout": "ntu25", "num_classes": k,
            "num_persons": NUM_PERSONS, "max_frames": T, "counts": report.counts[bench],
            "mmcl_version": mmcl.__version__, "created": created, "sources": sources,
            "preprocessing": {
                "reference": "CTR-GCN data/ntu(120) scripts, REFERENCE §2", "fix_quirks": fix_quirks,
                "lone_actor": "duplicate" if duplicate else "zero",
            },
        }
        for split in ("train", "test"):
            key = (bench, split)
            idx = dests[key]
            xs[key].flush()
            write_prepared(
                out / bench, split, xs[key], labels_all[idx], [names[i] for i in idx], meta=meta,
                lengths=np.array([lengths[names[i]] for i in idx], dtype=np.int32),
                colors=cs.get(key),
            )
        if npz:
            tr, te = (bench, "train"), (bench, "test")
            eye = np.eye(k, dtype=np.float64)
            atomic_savez(
                out / NPZ_NAMES[(dataset, bench)],
                x_train=xs[tr], y_train=eye[labels_all[dests[tr]]],
                x_test=xs[te], y_test=eye[labels_all[dests[te]]],
            )
    del xs, cs
    shutil.rmtree(tmpdir, ignore_errors=True)
