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

Resume: the worker pool (:mod:`.ntu_workers`) writes each chunk's results as one shard into
``<out>/.cache/<variant>/``; a rerun reuses every file whose size and mtime are unchanged, so an
interrupted run only redoes unfinished chunks. The cache is removed after a successful run unless
``keep_cache=True``. The benchmark rules live in :mod:`.ntu_protocol`.

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

import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

import mmcl
from mmcl.formats.ntu import parse_name
from mmcl.formats.ntu_parse import NTU_NUM_JOINTS
from mmcl.formats.sample_store import STORE_DIR, SampleStore, StoreWriter, write_split_index
from mmcl.io import (
    LockedError,
    atomic_savez,
    atomic_write_text,
    check_output_folder,
    commit_set,
    exclusive_lock,
    finish_commit,
    printable,
    remove_stale_temporaries,
)
from mmcl.prepare.ntu_protocol import (
    BENCHMARKS,
    NAME_RANGES,
    NPZ_NAMES,
    NTU_MAX_FRAMES,
    NUM_CLASSES,
    NUM_PERSONS,
    TWO_PERSON_CLASSES,
    benchmark_splits,
    missing_skeletons,
)
from mmcl.prepare.ntu_workers import CACHE_FORMAT, CachedResult, load_cache, raise_cached, run_chunks

__all__ = ["prepare_ntu", "PrepareReport", "PREPARE_LOCK", "REPORT_FILES"]

REPORT_FILES = ("prepare_report.json", "prepare_report.txt")
PREPARE_LOCK = ".mmcl-prepare.lock"




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

    cache = out / ".cache" / f"ntu-f{CACHE_FORMAT}-{'fixed' if fix_quirks else 'reference'}"
    cache.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(cache)  # shards a killed worker was writing
    shutil.rmtree(out / ".cache" / "assemble", ignore_errors=True)
    cached = load_cache(cache, files)
    todo = [(n, p, s, m) for n, (p, s, m) in files.items() if n not in cached]
    report.reused = len(files) - len(todo)
    if strict:
        for n, c in cached.items():
            if not c.ok:
                raise_cached(c.shard, n)
    run_chunks(todo, cache, fix_quirks, workers, strict, progress, chunk_size, on_file)
    report.parsed = len(todo)

    # gather cached results for the current file set
    cached = load_cache(cache, files)
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



def _assemble(
    names: list[str], files: dict[str, tuple[str, int, int]], cached: dict[str, CachedResult], dataset: str,
    out: Path, cache_root: Path, report: PrepareReport, fix_quirks: bool, npz: bool, want_colors: bool,
    skeleton_dirs: Iterable[Any],
) -> None:
    """Write the store (each sample once, valid frames only) and every benchmark's split index into
    ``out``, reading each cache shard once; with ``npz`` also the padded reference files."""
    by_shard: dict[Path, list[str]] = {}
    for n in names:
        by_shard.setdefault(cached[n].shard, []).append(n)
    lengths = {}
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
    pos = {n: i for i, n in enumerate(names)}
    offsets = np.concatenate(([0], np.cumsum([lengths[n] for n in names], dtype=np.int64)))
    sources = {"skeleton_dirs": [printable(Path(d).resolve()) for d in skeleton_dirs], "files": [printable(files[n][0]) for n in names]}
    preprocessing = {
        "reference": "CTR-GCN data/ntu(120) scripts, REFERENCE §2", "fix_quirks": fix_quirks,
        "lone_actor": "duplicate" if duplicate else "zero",
    }
    writer = StoreWriter(out / STORE_DIR, frames=int(offsets[-1]), layout="ntu25", num_persons=NUM_PERSONS, colors=want_colors)
    two_one = one_two = 0
    rows: dict[str, int] = {}
    # shards are read in order; rows follow ``names`` so the store is sorted by sample name
    order = sorted(((pos[n], n, shard) for shard, ns in by_shard.items() for n in ns))
    opened: dict[Path, tuple[np.ndarray, ...]] = {}
    for _, n, shard in order:
        if shard not in opened:
            opened.clear()  # one shard in memory at a time (names in a shard are contiguous in name order)
            with np.load(shard) as z:
                lens, actors, joints, colors = z["lengths"], z["actors"], z["joints"], z["colors"]
            opened[shard] = (lens, actors, np.concatenate(([0], np.cumsum(lens * actors * 75))),
                             np.concatenate(([0], np.cumsum(lens * actors * 50))), joints, colors)
        lens, actors, joff, coff, joints, colors = opened[shard]
        k = cached[n].index
        t, m = int(lens[k]), int(actors[k])
        x = np.zeros((t, NUM_PERSONS, NTU_NUM_JOINTS, 3), dtype=np.float32)
        x[:, :m] = joints[joff[k] : joff[k + 1]].reshape(t, m, NTU_NUM_JOINTS, 3)
        c = None
        if want_colors:
            c = np.zeros((t, NUM_PERSONS, NTU_NUM_JOINTS, 2), dtype=np.float32)
            c[:, :m] = colors[coff[k] : coff[k + 1]].reshape(t, m, NTU_NUM_JOINTS, 2)
        if m == 1 and duplicate:
            x[:, 1] = x[:, 0]
            if c is not None:
                c[:, 1] = c[:, 0]
        a = parse_name(n)[4]
        two_one += int(m == 1 and a in TWO_PERSON_CLASSES)
        one_two += int(m == 2 and a not in TWO_PERSON_CLASSES)
        rows[n] = writer.add(n, a - 1, x, colors=c, group=f"P{parse_name(n)[2]:03d}")
    report.two_person_class_with_one_actor = two_one
    report.one_person_class_with_two_actors = one_two
    k = NUM_CLASSES[dataset]
    writer.close(dataset=dataset, num_classes=k, max_frames=T, sources=sources, preprocessing=preprocessing)
    store = SampleStore(out / STORE_DIR)
    for bench in BENCHMARKS[dataset]:
        train, test = benchmark_splits(names, dataset, bench)
        report.counts[bench] = {"train": len(train), "test": len(test)}
        write_split_index(out / bench, {"train": train, "test": test}, {
            "dataset": dataset, "benchmark": bench, "layout": "ntu25", "num_classes": k,
            "num_persons": NUM_PERSONS, "max_frames": T, "preprocessing": preprocessing,
        })
        if npz:
            eye = np.eye(k, dtype=np.float64)
            arrays = {}
            for split, idx in (("train", train), ("test", test)):
                arrays[f"x_{split}"] = _padded_frames(store, idx, T, cache_root / f"npz_x_{split}.npy")
                arrays[f"y_{split}"] = eye[store.labels[idx]]
            atomic_savez(out / NPZ_NAMES[(dataset, bench)], **arrays)
            del arrays
            for split in ("train", "test"):
                (cache_root / f"npz_x_{split}.npy").unlink(missing_ok=True)


def _padded_frames(store: SampleStore, rows: Sequence[int], frames: int, path: Path) -> np.ndarray:
    """The reference N×T×150 array of ``rows`` (REFERENCE §2.8 frame layout), zero-padded to ``frames``,
    memory-mapped at ``path`` (NTU-120's is 11 GB)."""
    x = np.lib.format.open_memmap(path, "w+", np.float32, (len(rows), frames, NUM_PERSONS * NTU_NUM_JOINTS * 3))
    for r, i in enumerate(rows):
        f = store.frames(int(i))
        x[r, : len(f)] = f.reshape(len(f), -1)
    return x
