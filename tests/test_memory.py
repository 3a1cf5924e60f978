"""mmcl.memory: after keep_freed_memory() a freed 64 MB tensor stays in the heap for reuse (glibc)."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow  # subprocesses: outside the fast loop (-m "not slow")

PROBE = r"""
import ctypes, sys
import torch
from mmcl.memory import keep_freed_memory

class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = MallInfo2
applied = keep_freed_memory() if sys.argv[1] == "tuned" else False
x = torch.ones(16 * 1024 * 1024)  # 64 MiB, above glibc's largest mmap threshold
during = libc.mallinfo2()
del x
after = libc.mallinfo2()
print(int(applied), during.hblkhd, during.arena, after.fordblks)
"""


def _probe(mode: str, env: dict[str, str] | None = None) -> tuple[int, int, int, int]:
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True, env=env, timeout=120)
    applied, mmapped, arena, free_in_heap = (int(v) for v in out.stdout.split())
    return applied, mmapped, arena, free_in_heap


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_large_blocks_come_from_the_heap_and_stay_for_reuse() -> None:
    import os

    applied, mmapped, arena, free_in_heap = _probe("default")
    assert applied == 0 and mmapped >= 64 << 20  # glibc default: a fresh mmap, returned to the OS on free
    applied, mmapped, arena, free_in_heap = _probe("tuned")
    assert applied == 1 and mmapped < 64 << 20 and arena >= 64 << 20
    assert free_in_heap >= 64 << 20  # freed, kept in the heap for the next activation
    applied, *_ = _probe("tuned", {**os.environ, "MMCL_DEFAULT_MALLOC": "1"})
    assert applied == 0
