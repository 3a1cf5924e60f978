"""NTU RGB+D: sample names and one raw ``.skeleton`` file -> the reference's denoised, centred sample.

Names are ``SsssCcccPpppRrrrAaaa`` (setup, camera, performer, replication, action; REFERENCE §1.1).
:func:`process_file` is the reference per-file pipeline: parse (:mod:`.ntu_parse`), denoise and
centre (:mod:`.ntu_denoise`, REFERENCE §2.2-2.6); ``mmcl prepare ntu`` runs it in worker processes,
``mmcl predict`` on a single file.
"""

from __future__ import annotations

import os
import re

from mmcl.formats import ntu_denoise, ntu_scan
from mmcl.formats.ntu_denoise import DenoisedSample, process_parsed
from mmcl.formats.ntu_parse import parse_skeleton_file

__all__ = ["NTU_NAME", "parse_name", "is_ntu_name", "process_file", "warm_up"]

NTU_NAME = re.compile(r"^S(\d{3})C(\d{3})P(\d{3})R(\d{3})A(\d{3})$")


def parse_name(name: str) -> tuple[int, int, int, int, int]:
    """(setup, camera, performer, replication, action) of ``SsssCcccPpppRrrrAaaa``, 1-based."""
    m = NTU_NAME.match(name)
    if not m:
        raise ValueError(f"not an NTU sample name: {name!r}")
    s, c, p, r, a = (int(g) for g in m.groups())
    return s, c, p, r, a


def is_ntu_name(name: str) -> bool:
    """True for an ``SsssCcccPpppRrrrAaaa`` sample name."""
    return NTU_NAME.match(name) is not None


def process_file(path: str | os.PathLike[str], *, fix_quirks: bool = False) -> DenoisedSample:
    """Parse and denoise one ``.skeleton`` file; raises :class:`~mmcl.formats.ntu_parse.NTUPrepareError` on bad input."""
    parsed = parse_skeleton_file(path)
    return process_parsed(parsed, fix_quirks=fix_quirks, path=os.fspath(path))


def warm_up() -> bool:
    """Compile (or load from numba's on-disk cache) the compiled parser and denoiser helpers.

    Called once per process before files are processed, so compile time is never counted per
    file. Returns whether the compiled (numba) path is available.
    """
    compiled = ntu_scan.warm_up()
    ntu_denoise.warm_up()
    return compiled
