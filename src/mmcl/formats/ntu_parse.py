"""Parser for NTU RGB+D ``.skeleton`` text files (REFERENCE §1.2, §2.2).

Three paths produce the same result, bit for bit:

* the compiled path (numba, used when numba is installed; :mod:`.ntu_scan`): one pass over the bytes of the file
  that walks the frame/body/joint structure and converts only the used fields (x, y, z, colorX,
  colorY). Decimals are converted exactly: the digits are read as an integer mantissa ``m``
  (< 2**53) and the result is ``m / 10**k`` (or ``m * 10**k``, ``k <= 22``) in float64, one
  correctly rounded IEEE operation on two exact doubles (Clinger's fast path), so it equals
  ``float(token)``, the conversion the reference parser uses; it is then rounded to float32 as the
  reference does. Anything outside that (more than 18 digits, large exponents, ``nan``, ``1_0``,
  damaged structure) makes it hand over to the careful path;
* a numpy path (used when numba is unavailable, with a one-time warning): splits the file into
  lines, walks the structure in Python and converts the joint fields of the whole file at once with
  a vectorised version of the same exact decimal conversion;
* a careful line-by-line path that is only run when a fast path meets anything unusual; it either
  parses the file (same result) or raises :class:`NTUParseError` naming the file and 1-based line.

Accepted format (stricter than the reference, which silently mis-reads damaged lines): integer
frame/body/joint-count lines, body lines of exactly 10 fields whose first is the integer body id,
joint count exactly 25, joint lines of exactly 12 fields whose used fields (x, y, z, colorX, colorY)
are finite numbers, and nothing but whitespace after the last frame. Unused fields are not checked.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mmcl.formats import ntu_scan

__all__ = [
    "NTUPrepareError",
    "NTUParseError",
    "ParsedBody",
    "ParsedSkeleton",
    "parse_skeleton",
    "parse_skeleton_file",
    "NTU_NUM_JOINTS",
]

NTU_NUM_JOINTS = 25  # Kinect v2 joints per body (REFERENCE §1.3)
BODY_LINE_FIELDS = 10  # bodyID + 9 body attributes (REFERENCE §1.2)
JOINT_LINE_FIELDS = 12  # x y z depthX depthY colorX colorY orientation(4) trackingState (REFERENCE §1.2)
USED_JOINT_COLUMNS = (0, 1, 2, 5, 6)  # x, y, z, colorX, colorY: what the reference parser keeps


_FLOAT32_MAX = float(np.finfo(np.float32).max)


class NTUPrepareError(ValueError):
    """A sample cannot be prepared (base class; carries the file path)."""

    def __init__(self, path: str | os.PathLike[str] | None, message: str, line: int | None = None) -> None:
        self.path = str(path) if path is not None else "<bytes>"
        self.line = line
        self.reason = message
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {message}")


class NTUParseError(NTUPrepareError):
    """A ``.skeleton`` file is malformed; ``line`` is the 1-based line number of the problem."""


@dataclass
class ParsedBody:
    """All appearances of one bodyID, in file order.

    ``frames`` holds the true 0-based index among kept (non-empty) frames of each appearance; the
    reference's "interval" is derived from it later (it differs for re-appearing bodies, §2.2).
    """

    body_id: str
    joints: np.ndarray  # n x 25 x 3 float32 (camera-space metres)
    colors: np.ndarray  # n x 25 x 2 float32 (colour-image pixels)
    frames: np.ndarray  # n int64


@dataclass
class ParsedSkeleton:
    """One parsed file: bodies in order of first appearance (the reference's dict order)."""

    num_frames: int  # F minus dropped (body-less) frames
    bodies: list[ParsedBody]
    dropped_frames: list[int] = field(default_factory=list)  # 0-based original frame indices


class _Fallback(Exception):
    """Internal: the fast path met something it does not handle; use the careful path.

    The compiled path sets ``code`` (one of the ``_E_*`` codes) and the byte ``offset`` where it
    stopped; :func:`_line_of` turns the offset into a 1-based line number.
    """

    def __init__(self, code: int = -1, offset: int | None = None) -> None:
        super().__init__(code, offset)
        self.code = code
        self.offset = offset


def _line_of(data: bytes, offset: int) -> int:
    """1-based line number of byte ``offset`` (lines end with ``\n``)."""
    return data.count(b"\n", 0, offset) + 1


# --- vectorised decimal conversion ------------------------------------------------------------

_W = 12  # widest token handled vectorised ("-0.01234567" is 11); longer ones are converted one by one
_COLS = np.arange(_W)
_PLACE = 10.0 ** (_W - 1 - _COLS)  # place value of window column j when nothing is left of a dot
_POW10 = 10.0 ** np.arange(24)  # exact in float64 up to 1e22
_ONES = np.ones(_W, dtype=np.float32)
_ONES_COLS = np.stack([_ONES, _COLS.astype(np.float32)], axis=1)


def _decimals(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Convert plain decimal tokens ``[-+]digits[.digits]`` to float64, exactly like ``float()``.

    Every token is right-aligned in a window of ``_W`` bytes, so a column has a fixed place value and
    the digits reduce to one matrix-vector product. The mantissa (<= 15 digits, so < 2**53) and the
    power of ten (<= 1e22) are exact doubles, so the final IEEE division is correctly rounded
    (Clinger's fast path): the result equals ``strtod``/``float``. Returns ``(values, ok)``; tokens
    with ``ok == False`` (exponents, nan, too long, garbage) must be converted by the caller.
    ``buf`` must have a whitespace byte before every token.
    """
    length = ends - starts
    idx = (ends[:, None] - _W) + _COLS
    np.maximum(idx, (starts - 1)[:, None], out=idx)  # columns left of the token read its separator
    ch = buf[idx]
    dig = ch - np.uint8(48)
    isdig = dig < 10
    isdot = ch == 46
    first = buf[starts]
    neg = first == 45
    signed = neg | (first == 43)
    ndig = isdig.view(np.uint8).astype(np.float32) @ _ONES
    dots = isdot.view(np.uint8).astype(np.float32) @ _ONES_COLS  # (count, column) of the dot
    ndot = dots[:, 0]
    has_dot = ndot == 1
    ok = (length <= _W) & (ndig >= 1) & (ndig <= 15) & (ndot <= 1) & (ndig + ndot + signed == length)
    # r = all digits read as one integer with the dot as a 0 digit = int_part * 10**(frac+1) + frac_part
    r = (dig * isdig).astype(np.float64) @ _PLACE
    frac = np.where(has_dot, (_W - 1) - dots[:, 1], 0).astype(np.int64)
    np.clip(frac, 0, 22, out=frac)
    p = _POW10[frac]
    int_part = np.floor(r / (p * 10.0))  # exact: the fraction adds < 0.1 to the quotient
    mant = np.where(has_dot, r - 9.0 * int_part * p, r)
    val = mant / p
    return np.where(neg, -val, val), ok


def _to_int(token: bytes) -> int | None:
    t = token.strip()
    return int(t) if t.isdigit() else None


# --- numpy path (used without numba) ------------------------------------------------------------


def _parse_numpy(data: bytes) -> ParsedSkeleton:
    lines = data.split(b"\n")
    nlines = len(lines)
    n_frames = _to_int(lines[0])
    if n_frames is None:
        raise _Fallback
    i = 1
    valid = -1
    dropped: list[int] = []
    order: dict[bytes, int] = {}  # body id -> body number (first appearance)
    app_body: list[int] = []  # per appearance: body number
    app_frame: list[int] = []  # per appearance: valid-frame index
    app_line: list[int] = []  # per appearance: 0-based line index of its first joint line
    for f in range(n_frames):
        if i >= nlines:
            raise _Fallback
        nb = _to_int(lines[i])
        if nb is None:
            raise _Fallback
        i += 1
        if nb == 0:
            dropped.append(f)
            continue
        valid += 1
        for _ in range(nb):
            if i + 2 + NTU_NUM_JOINTS > nlines:
                raise _Fallback
            parts = lines[i].split()
            if len(parts) != BODY_LINE_FIELDS or not parts[0].isdigit():
                raise _Fallback
            if lines[i + 1].strip() != b"25":
                raise _Fallback
            app_body.append(order.setdefault(parts[0], len(order)))
            app_frame.append(valid)
            app_line.append(i + 2)
            i += 2 + NTU_NUM_JOINTS
    if valid < 0 or i > nlines or any(ln.strip() for ln in lines[i:]):
        raise _Fallback

    # tokenise the whole file once, vectorised (a space is put before and after the data)
    buf = np.frombuffer(b" " + data + b" ", dtype=np.uint8)
    ws = buf <= 32
    ctrl = buf[buf < 32]
    if ctrl.size and not np.all((ctrl >= 9) & (ctrl <= 13)):
        raise _Fallback  # other control bytes are not whitespace for bytes.split()
    edges = np.flatnonzero(ws[1:] != ws[:-1]) + 1
    starts, ends = edges[0::2], edges[1::2]
    line_start = np.concatenate(([1], np.flatnonzero(buf == 10) + 1))
    line_end = np.concatenate((line_start[1:] - 1, [len(buf) - 1]))
    jl = (np.asarray(app_line, dtype=np.int64)[:, None] + np.arange(NTU_NUM_JOINTS)).ravel()
    first_tok = np.searchsorted(starts, line_start[jl])
    if not np.all(np.searchsorted(starts, line_end[jl]) - first_tok == JOINT_LINE_FIELDS):
        raise _Fallback
    tok = (first_tok[:, None] + np.asarray(USED_JOINT_COLUMNS)).ravel()
    s, e = starts[tok], ends[tok]
    vals, ok = _decimals(buf, s, e)
    if not ok.all():
        for k in np.flatnonzero(~ok):
            try:
                vals[k] = float(buf[s[k] : e[k]].tobytes())
            except ValueError:
                raise _Fallback from None
    if not np.isfinite(vals).all():
        raise _Fallback
    vals32 = vals.astype(np.float32).reshape(-1, NTU_NUM_JOINTS, len(USED_JOINT_COLUMNS))

    ab = np.asarray(app_body, dtype=np.int64)
    af = np.asarray(app_frame, dtype=np.int64)
    ids = list(order)
    bodies = []
    for b, bid in enumerate(ids):
        sel = np.flatnonzero(ab == b) if len(ids) > 1 else slice(None)
        v = vals32[sel]
        bodies.append(
            ParsedBody(
                body_id=bid.decode("ascii"),
                joints=np.ascontiguousarray(v[..., :3]),
                colors=np.ascontiguousarray(v[..., 3:]),
                frames=af[sel],
            )
        )
    return ParsedSkeleton(num_frames=n_frames - len(dropped), bodies=bodies, dropped_frames=dropped)


# --- compiled path (numba: mmcl.formats.ntu_scan) ------------------------------------------------


def _parse_numba(data: bytes, kernel=None) -> ParsedSkeleton:
    kernel = kernel or ntu_scan.kernel()
    if kernel is None:
        raise _Fallback
    status, joints, colors, app_body, app_frame, uid_span, dropped = kernel(np.frombuffer(data, dtype=np.uint8))
    code, offset, n_frames, n_app, n_uid, n_drop = status.tolist()
    if code != ntu_scan.E_OK:
        raise _Fallback(code, offset)
    frames = app_frame[:n_app]
    if n_uid == 1:
        bodies = [
            ParsedBody(
                body_id=data[uid_span[0, 0] : uid_span[0, 1]].decode("ascii"),
                joints=joints[:n_app],
                colors=colors[:n_app],
                frames=frames,
            )
        ]
    else:
        which = app_body[:n_app]
        bodies = []
        for b in range(n_uid):
            sel = np.flatnonzero(which == b)
            bodies.append(
                ParsedBody(
                    body_id=data[uid_span[b, 0] : uid_span[b, 1]].decode("ascii"),
                    joints=joints[sel],
                    colors=colors[sel],
                    frames=frames[sel],
                )
            )
    return ParsedSkeleton(num_frames=n_frames - n_drop, bodies=bodies, dropped_frames=dropped[:n_drop].tolist())


def _parse_fast(data: bytes) -> ParsedSkeleton:
    """The fastest available path (compiled, else numpy); raises ``_Fallback`` on anything unusual."""
    kernel = ntu_scan.kernel()
    if kernel is not None:
        return _parse_numba(data, kernel)
    return _parse_numpy(data)


# --- careful path -------------------------------------------------------------------------------


def _parse_careful(data: bytes, path: str | None) -> ParsedSkeleton:
    """Line-by-line parse with precise error messages (1-based line numbers)."""
    lines = data.split(b"\n")
    nlines = len(lines)
    pos = 0

    def err(msg: str, line: int | None = None) -> NTUParseError:
        return NTUParseError(path, msg, (pos + 1) if line is None else line)

    def take(what: str) -> bytes:
        nonlocal pos
        if pos >= nlines or (pos == nlines - 1 and not lines[pos].strip()):
            raise err(f"file truncated: expected {what}, reached end of file", min(pos, nlines - 1) + 1)
        line = lines[pos]
        pos += 1
        return line

    def take_int(what: str) -> int:
        line = take(what)
        value = _to_int(line)
        if value is None or len(line.split()) != 1:
            raise err(f"expected {what} (one non-negative integer), got {_show(line)}", pos)
        return value

    n_frames = take_int("the frame count")
    valid = -1
    dropped: list[int] = []
    acc: dict[str, tuple[list[np.ndarray], list[np.ndarray], list[int]]] = {}
    for f in range(n_frames):
        nb = take_int(f"the body count of frame {f + 1}/{n_frames}")
        if nb == 0:
            dropped.append(f)
            continue
        valid += 1
        for b in range(nb):
            parts = take(f"body line {b + 1} of frame {f + 1}").split()
            if len(parts) != BODY_LINE_FIELDS:
                raise err(f"body line has {len(parts)} fields, expected {BODY_LINE_FIELDS}", pos)
            if not parts[0].isdigit():
                raise err(f"body id {_show(parts[0])} is not an integer", pos)
            body_id = parts[0].decode("ascii")
            nj = take_int(f"the joint count of body {b + 1} in frame {f + 1}")
            if nj != NTU_NUM_JOINTS:
                raise err(f"joint count {nj} != {NTU_NUM_JOINTS}", pos)
            rows = np.empty((NTU_NUM_JOINTS, len(USED_JOINT_COLUMNS)), dtype=np.float64)
            for j in range(NTU_NUM_JOINTS):
                fields = take(f"joint line {j + 1} of body {b + 1} in frame {f + 1}").split()
                if len(fields) != JOINT_LINE_FIELDS:
                    raise err(f"joint line has {len(fields)} fields, expected {JOINT_LINE_FIELDS}", pos)
                for c, col in enumerate(USED_JOINT_COLUMNS):
                    try:
                        v = float(fields[col])
                    except ValueError:
                        raise err(f"field {col + 1} {_show(fields[col])} is not a number", pos) from None
                    if not np.isfinite(v):
                        raise err(f"field {col + 1} {_show(fields[col])} is not finite", pos)
                    if abs(v) > _FLOAT32_MAX:  # stored as float32: it would become inf
                        raise err(f"field {col + 1} {_show(fields[col])} is beyond float32", pos)
                    rows[j, c] = v
            rows32 = rows.astype(np.float32)
            entry = acc.setdefault(body_id, ([], [], []))
            entry[0].append(rows32[:, :3])
            entry[1].append(rows32[:, 3:])
            entry[2].append(valid)
    for k in range(pos, nlines):
        if lines[k].strip():
            raise err(f"unexpected content after the last frame: {_show(lines[k])}", k + 1)
    if valid < 0:
        raise err("every frame is empty (no body in any frame)", 1)
    bodies = [
        ParsedBody(
            body_id=bid,
            joints=np.stack(j).astype(np.float32),
            colors=np.stack(c).astype(np.float32),
            frames=np.asarray(fr, dtype=np.int64),
        )
        for bid, (j, c, fr) in acc.items()
    ]
    return ParsedSkeleton(num_frames=n_frames - len(dropped), bodies=bodies, dropped_frames=dropped)


def _show(token: bytes, limit: int = 40) -> str:
    text = token.decode("utf-8", "replace").strip()
    return repr(text if len(text) <= limit else text[:limit] + "...")


def parse_skeleton(data: bytes, path: str | os.PathLike[str] | None = None) -> ParsedSkeleton:
    """Parse the bytes of a ``.skeleton`` file; raises only :class:`NTUParseError` on bad input."""
    where: int | None = None  # 1-based line where the fast path stopped, if it says
    try:
        parsed = _parse_fast(data)
        if all(np.isfinite(b.joints).all() and np.isfinite(b.colors).all() for b in parsed.bodies):
            return parsed  # else a value overflowed float32: the careful path names its line
    except _Fallback as fb:
        if fb.offset is not None:
            where = _line_of(data, fb.offset)
    except (ValueError, IndexError, UnicodeDecodeError):  # defensive: let the careful path explain
        pass
    try:
        return _parse_careful(data, None if path is None else os.fspath(path))
    except NTUParseError:
        raise
    except (ValueError, IndexError, UnicodeDecodeError) as exc:  # pragma: no cover - safety net
        raise NTUParseError(path, f"unreadable: {exc}", where) from None


def parse_skeleton_file(path: str | os.PathLike[str]) -> ParsedSkeleton:
    """Read and parse one ``.skeleton`` file (see :func:`parse_skeleton`)."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise NTUParseError(path, f"cannot read: {exc.strerror or exc}") from None
    return parse_skeleton(data, path)
