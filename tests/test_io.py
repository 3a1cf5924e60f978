"""mmcl.io: atomic writes keep the old file on failure; the run lock is exclusive and never stale."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mmcl.io import LockedError, atomic_write_text, exclusive_lock

pytestmark = pytest.mark.skipif(os.name != "posix", reason="flock locking is POSIX-only")


def test_atomic_write_keeps_the_old_file_when_the_writer_fails(tmp_path: Path) -> None:
    target = tmp_path / "a.txt"
    atomic_write_text(target, "good")
    from mmcl.io import atomic_write

    def broken(fh) -> None:
        fh.write(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, broken)
    assert target.read_text() == "good" and [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_lock_is_exclusive_across_processes_and_released_when_the_holder_dies(tmp_path: Path) -> None:
    lock = tmp_path / "run" / ".lock"
    holder = subprocess.Popen(
        [sys.executable, "-c", f"from mmcl.io import exclusive_lock\nimport time\nwith exclusive_lock({str(lock)!r}):\n"
         "    print('held', flush=True)\n    time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(LockedError, match=rf"{lock.name} is locked by another process \(pid {holder.pid}\)"):
            with exclusive_lock(lock):
                pass
    finally:
        holder.send_signal(signal.SIGKILL)  # no clean-up code runs: the kernel drops the lock
        holder.wait()
    deadline = time.time() + 10
    while True:
        try:
            with exclusive_lock(lock):
                assert lock.read_text() == str(os.getpid())
            break
        except LockedError:
            assert time.time() < deadline, "lock not released after the holder died"
            time.sleep(0.1)
