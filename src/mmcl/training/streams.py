"""Train the streams of one recipe to the end, across interruptions, N side by side (``mmcl streams``).

A stream is a label, an input stream and config overrides (:class:`StreamSpec`): ``joint``, or
``HDJ21:joint:model.backbone=hdgcn:model.com=21``. :data:`RECIPES` name the usual sets: CTR-GCN's
four streams, the paper's six (those four + HD-GCN joint and bone) and HD-GCN's own six-way
(joint/bone × three centres of mass). Each stream is one ``mmcl train`` process with run
directory ``<work_dir>_<label>`` (:func:`mmcl.config.stream_work_dir`):

- finished (``results.json`` present): left alone;
- interrupted (``checkpoints/last.ckpt`` present): continued with ``--resume`` (exact, issue 17);
- not started: started.

Why processes, not threads: each run owns its Lightning trainer, its log file
(``<run_dir>.log``, appended) and its torch thread count. ``parallel=2, threads=1`` on a 2-core CPU
trains ~20 % more samples per second in all than one stream on both cores
(``benchmarks/train_throughput.py --threads 1``). Children die with this process (Linux
``PR_SET_PDEATHSIG``); Ctrl-C or SIGTERM asks each to stop (SIGTERM), so each saves a checkpoint
where it is, inside its epoch, and the next call continues them. Without ``threads``, runs side by
side share the CPUs (:func:`threads_per_run`): two runs of torch's default thread count on two
cores oversubscribe them (a tiny training beside two busy one-thread runs: 61 s at 2 threads, 9 s at 1).
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from mmcl.config import load_config, stream_work_dir
from mmcl.skeleton.layouts import com_choices
from mmcl.skeleton.streams import STREAMS

__all__ = ["stream_state", "train_command", "train_streams", "StreamsResult", "StreamSpec", "parse_stream_spec",
           "RECIPES", "recipe_streams"]

_PR_SET_PDEATHSIG = 1  # linux/prctl.h
POLL_SECONDS = 5.0  # how often the running children are checked
STOP_GRACE_SECONDS = 120.0  # how long a child gets to write its checkpoint after Ctrl-C


@dataclass(frozen=True)
class StreamSpec:
    """One stream of a recipe: run-directory / ensemble label, input stream, its own config overrides."""

    label: str
    stream: str
    overrides: tuple[str, ...] = ()

    def __str__(self) -> str:
        return ":".join((self.label, self.stream, *self.overrides)) if self.label != self.stream or self.overrides else self.stream


def parse_stream_spec(text: str | StreamSpec) -> StreamSpec:
    """``joint`` or ``LABEL:STREAM[:KEY=VALUE...]`` (e.g. ``HDB:bone:model.backbone=hdgcn``)."""
    if isinstance(text, StreamSpec):
        return text
    label, *rest = str(text).split(":")
    stream, overrides = (rest[0], tuple(rest[1:])) if rest else (label, ())
    if stream not in STREAMS:
        hint = " (an override for every run goes before --streams)" if not rest and "=" in label else ""
        raise ValueError(f"stream {text!r}: unknown input stream {stream!r}; choose from {', '.join(STREAMS)}{hint}")
    if not label or any(c in label for c in "/\\ ") or label.startswith("."):
        raise ValueError(f"stream {text!r}: the label names a run directory; use letters, digits, - and _")
    bad = [o for o in overrides if "=" not in o]
    if bad:
        raise ValueError(f"stream {text!r}: overrides look like KEY=VALUE, got {bad[0]!r}")
    return StreamSpec(label, stream, overrides)


def _hdgcn(label: str, stream: str, com: int | None = None) -> StreamSpec:
    extra = () if com is None else (f"model.com={com}",)
    return StreamSpec(label, stream, ("model.backbone=hdgcn", *extra))


#: recipe -> streams for a layout (HD-GCN's six-way uses the layout's three centres of mass)
RECIPES: dict[str, Callable[[str], list[StreamSpec]]] = {
    # CTR-GCN ensemble.py: joint, bone, joint motion, bone motion of the config's backbone
    "ctrgcn-4s": lambda layout: [StreamSpec(s, s) for s in STREAMS],
    # MMCL Ensemble/ensemble.py: those four + HD-GCN joint and bone (CoM 21 on NTU), labels J B JM BM HDJ HDB
    "mmcl-6s": lambda layout: [StreamSpec(s, s) for s in STREAMS] + [_hdgcn("HDJ", "joint"), _hdgcn("HDB", "bone")],
    # HD-GCN ensemble.py: joint and bone with each of three centres of mass, L2-normalised scores, equal weights
    "hdgcn-6way": lambda layout: [
        _hdgcn(f"HD{kind}{com}", stream, com) for com in sorted(com_choices(layout)) for kind, stream in (("J", "joint"), ("B", "bone"))
    ],
}


def recipe_streams(recipe: str, layout: str) -> list[StreamSpec]:
    if recipe not in RECIPES:
        raise ValueError(f"unknown recipe {recipe!r}; choose from {', '.join(RECIPES)}")
    return RECIPES[recipe](layout)


def stream_state(run_dir: str | Path) -> str:
    """"finished", "interrupted" or "new"."""
    run_dir = Path(run_dir)
    if (run_dir / "results.json").is_file():
        return "finished"
    if (run_dir / "checkpoints" / "last.ckpt").is_file():
        return "interrupted"
    return "new"


def train_command(
    config: str, data: str | None, stream: str | StreamSpec, run_dir: Path, threads: int, overrides: Sequence[str]
) -> list[str]:
    """The ``mmcl train`` command of one stream (with ``--resume`` when it was interrupted)."""
    spec = parse_stream_spec(stream)
    cmd = [sys.executable, "-m", "mmcl", "train", "-c", config, *(["--data", data] if data else []), "--stream", spec.stream,
           "--work-dir", str(run_dir), "trainer.progress=false"]
    if threads > 0:  # before the overrides: a trainer.num_threads among them wins
        cmd.append(f"trainer.num_threads={threads}")
    cmd += [*overrides, *spec.overrides]
    if stream_state(run_dir) == "interrupted":
        cmd += ["--resume", str(run_dir)]
    return cmd


def _die_with_parent() -> None:  # runs in the child between fork and exec
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the child outlives a SIGKILLed parent
        pass
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # a background parent may ignore SIGINT; the child must not


@dataclass
class StreamsResult:
    """Run directory and final state of every stream, and the top-1 of the finished ones."""

    runs: dict[str, Path]
    states: dict[str, str] = field(default_factory=dict)
    top1: dict[str, float] = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)


def threads_per_run(parallel: int, runs: int) -> int:
    """Torch threads for each of ``min(parallel, runs)`` runs side by side: the usable CPUs shared
    out (at least one each); 0 (torch's choice) when one run at a time."""
    side_by_side = min(max(1, parallel), max(1, runs))
    if side_by_side == 1:
        return 0
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cpus // side_by_side)


def train_streams(
    config: str,
    data: str | None,
    streams: Sequence[str | StreamSpec] = STREAMS,
    *,
    parallel: int = 1,
    threads: int = 0,
    overrides: Sequence[str] = (),
    poll_seconds: float | None = None,
    echo: Callable[[str], None] = print,
) -> StreamsResult:
    """Bring every stream of ``config`` to "finished" (see the module docstring); results keyed by label."""
    specs = {spec.label: spec for spec in map(parse_stream_spec, streams)}
    if len(specs) != len(streams):
        raise ValueError("stream labels must be distinct (they name the run directories)")
    work_dir = load_config(config, list(overrides)).trainer.work_dir
    for spec in specs.values():  # a bad per-stream override fails here, not in a child's log
        load_config(config, [*overrides, *spec.overrides])
    res = StreamsResult({s: Path(stream_work_dir(work_dir, s)) for s in specs})
    pending = [s for s in specs if stream_state(res.runs[s]) != "finished"]
    for s in specs:
        echo(f"{s:13s} {stream_state(res.runs[s]):11s} {res.runs[s]}")
    if threads <= 0 and load_config(config, list(overrides)).trainer.num_threads <= 0:
        threads = threads_per_run(parallel, len(pending))
        if threads:
            echo(f"{min(parallel, len(pending))} runs side by side: {threads} torch thread(s) each (--threads to choose)")
    active: dict[str, tuple[subprocess.Popen, IO[str]]] = {}
    try:
        while pending or active:
            while pending and len(active) < max(1, parallel):
                s = pending.pop(0)
                cmd = train_command(config, data, specs[s], res.runs[s], threads, overrides)
                res.runs[s].parent.mkdir(parents=True, exist_ok=True)
                log = open(f"{res.runs[s]}.log", "a", encoding="utf-8")  # noqa: SIM115 - closed when the process ends
                log.write(f"\n# {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(cmd)}\n")
                log.flush()
                env = {**os.environ, "PYTHONUNBUFFERED": "1"}
                active[s] = (subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, preexec_fn=_die_with_parent), log)
                echo(f"started {s}: {' '.join(cmd)}")
            time.sleep(POLL_SECONDS if poll_seconds is None else poll_seconds)
            for s, (proc, log) in list(active.items()):
                if proc.poll() is None:
                    continue
                log.close()
                del active[s]
                if proc.returncode != 0 or stream_state(res.runs[s]) != "finished":
                    res.failed.append(s)
                    echo(f"{s}: exited with {proc.returncode}; see {res.runs[s]}.log")
                else:
                    res.top1[s] = float(json.loads((res.runs[s] / "results.json").read_text())["test"]["top1"])
                    echo(f"{s}: finished, test top-1 {100 * res.top1[s]:.2f} %")
    except BaseException:
        _stop(active, echo)
        raise
    res.states = {s: stream_state(r) for s, r in res.runs.items()}
    return res


def _stop(active: dict[str, tuple[subprocess.Popen, Any]], echo: Callable[[str], None]) -> None:
    """Ask the running children to stop (SIGTERM: they finish their step and save a checkpoint; unlike a
    second Ctrl-C it does not cut that short when a terminal's Ctrl-C reached them too); kill what has
    not stopped in time."""
    for proc, _ in active.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for s, (proc, log) in active.items():
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        echo(f"{s}: stopped; run the same command again to continue it")
