"""The compiled scanner of NTU RGB+D ``.skeleton`` files (numba; see :mod:`mmcl.formats.ntu_parse`).

One pass over the bytes of a file that walks the frame/body/joint structure and converts only the
used joint fields, exactly as ``float()`` does (Clinger's fast path). It returns arrays and a status;
:func:`mmcl.formats.ntu_parse.parse_skeleton` turns them into a ``ParsedSkeleton`` or hands the file
to its careful path when the status is not :data:`E_OK`. Without numba, :func:`kernel` returns None
(once with a warning) and the numpy path is used.
"""

from __future__ import annotations

import warnings

import numpy as np

__all__ = ["kernel", "warm_up", "E_OK", "E_NUMBER"]

# Error codes of the compiled scanner (the byte offset of the problem comes with them). Any non-zero
# code hands the file to the careful path, which accepts it or explains the problem precisely.
_E_OK, _E_TRUNCATED, _E_INT, _E_BODY, _E_JOINTS, _E_FIELDS, _E_NUMBER, _E_TRAILING, _E_EMPTY, _E_CAPACITY = range(10)
E_OK, E_NUMBER = _E_OK, _E_NUMBER  # the codes other modules name
_POW10_EXACT = np.array([float(10**k) for k in range(23)])  # 1e0 .. 1e22, all exact doubles
_MANT_MAX = 2**53  # mantissas up to this are exact doubles
_IS_SPACE = np.zeros(256, dtype=np.bool_)  # whitespace inside a line for bytes.split: \t \v \f \r space
_IS_SPACE[[9, 11, 12, 13, 32]] = True
_IS_TOKEN = ~_IS_SPACE  # bytes belonging to a field (not whitespace, not the newline)
_IS_TOKEN[10] = False
_U = np.uint64  # indexing with unsigned integers spares numba's negative-index wraparound (~25% faster)
_DIGIT = np.full(256, 255, dtype=np.uint8)  # value of an ASCII digit, 255 otherwise
_DIGIT[48:58] = np.arange(10)


def _scan_kernel(buf):  # pragma: no cover - compiled by numba
    r"""Walk one ``.skeleton`` file (``buf``: its bytes as uint8) and convert its used joint fields.

    Accepts a subset of what :func:`_parse_careful` accepts, with the same result: lines are split
    on ``\n`` only, fields on the other whitespace bytes of ``bytes.split`` (``\t \v \f \r`` and
    space), each byte is read once. Returns ``(status, joints, colors, app_body, app_frame,
    uid_span, dropped)`` with ``status = [code, byte offset, F, appearances, distinct ids, dropped
    frames]``; ``code != 0`` means "use the careful path" (the offset says where the scan stopped).
    """
    n = buf.size
    cap = n // 600 + 1  # an appearance takes >= 600 bytes (25 joint lines of >= 24 bytes)
    joints = np.empty((cap, 25, 3), np.float32)
    colors = np.empty((cap, 25, 2), np.float32)
    app_body = np.empty(cap, np.int64)
    app_frame = np.empty(cap, np.int64)
    uid_span = np.empty((cap, 2), np.int64)
    status = np.zeros(6, np.int64)
    n_app = 0
    n_uid = 0
    n_drop = 0
    valid = -1
    n_frames = -1
    dropped = np.empty(0, np.int64)
    f = 0
    # records: 0 frame count, 1 body count, 2 body line, 3 joint count, 4 joint line
    state = 0
    bodies_left = 0
    joint = 0
    code = _E_OK
    p = 0  # start of the current line; > n once the last line (no final newline) was consumed
    k = 0
    while True:
        if state == 1 and f == n_frames:
            break
        if p > n:
            code = _E_TRUNCATED
            break
        k = p
        if state == 4:
            # joint line: exactly 12 fields; 0, 1, 2 (x, y, z) and 5, 6 (colorX, colorY) are numbers
            ntok = 0
            while True:
                while k < n and _IS_SPACE[buf[_U(k)]]:
                    k += 1
                if k >= n or buf[_U(k)] == 10:
                    break
                if ntok < 3 or ntok == 5 or ntok == 6:
                    # [+-] digits [. digits] [(e|E) [+-] digits] -> exact float64 (module doc) -> float32
                    ts = k
                    neg = buf[_U(k)] == 45
                    if neg or buf[_U(k)] == 43:
                        k += 1
                    m = 0  # all digits as one integer (wraps past 18 digits, which are refused below)
                    ds = k
                    while k < n:
                        d = _DIGIT[buf[_U(k)]]
                        if d > 9:
                            break
                        m = m * 10 + d
                        k += 1
                    nd = k - ds
                    frac = 0
                    if k < n and buf[_U(k)] == 46:
                        k += 1
                        ds = k
                        while k < n:
                            d = _DIGIT[buf[_U(k)]]
                            if d > 9:
                                break
                            m = m * 10 + d
                            k += 1
                        frac = k - ds
                        nd += frac
                    ex = 0
                    good = nd > 0 and nd <= 18
                    if good and k < n and (buf[_U(k)] == 101 or buf[_U(k)] == 69):
                        k += 1
                        eneg = False
                        if k < n and (buf[_U(k)] == 45 or buf[_U(k)] == 43):
                            eneg = buf[_U(k)] == 45
                            k += 1
                        ds = k
                        while k < n and _DIGIT[buf[_U(k)]] <= 9 and k - ds <= 6:
                            ex = ex * 10 + _DIGIT[buf[_U(k)]]
                            k += 1
                        good = k > ds and k - ds <= 6
                        if eneg:
                            ex = -ex
                    if not good or (k < n and _IS_TOKEN[buf[_U(k)]]):
                        code = _E_NUMBER
                        k = ts
                        break
                    if m == 0:
                        v = 0.0
                    else:
                        e10 = ex - frac
                        if m > _MANT_MAX or e10 < -22 or e10 > 22:
                            code = _E_NUMBER
                            k = ts
                            break
                        if e10 < 0:
                            v = m / _POW10_EXACT[-e10]
                        else:
                            v = m * _POW10_EXACT[e10]
                    if neg:
                        v = -v
                    if ntok < 3:
                        joints[n_app, joint, ntok] = np.float32(v)
                    else:
                        colors[n_app, joint, ntok - 5] = np.float32(v)
                else:
                    while k < n and _IS_TOKEN[buf[_U(k)]]:
                        k += 1
                ntok += 1
            if code != _E_OK:
                break
            if ntok != 12:
                code = _E_FIELDS
                break
            joint += 1
            if joint == 25:
                n_app += 1
                bodies_left -= 1
                if bodies_left == 0:
                    f += 1
                    state = 1
                else:
                    state = 2
        elif state == 2:
            # body line: exactly 10 fields, the first all digits (the body id, compared as bytes)
            ntok = 0
            id_s = 0
            id_e = 0
            while True:
                while k < n and _IS_SPACE[buf[_U(k)]]:
                    k += 1
                if k >= n or buf[_U(k)] == 10:
                    break
                if ntok == 0:
                    id_s = k
                    while k < n and buf[_U(k)] >= 48 and buf[_U(k)] <= 57:
                        k += 1
                    id_e = k
                    if k < n and _IS_TOKEN[buf[_U(k)]]:
                        break  # a non-digit in the id
                else:
                    while k < n and _IS_TOKEN[buf[_U(k)]]:
                        k += 1
                ntok += 1
            if ntok != 10:
                code = _E_BODY
                break
            if n_app >= cap:
                code = _E_CAPACITY
                break
            b = -1
            for u in range(n_uid):
                us = uid_span[u, 0]
                if uid_span[u, 1] - us == id_e - id_s:
                    same = True
                    for q in range(id_e - id_s):
                        if buf[_U(us + q)] != buf[_U(id_s + q)]:
                            same = False
                            break
                    if same:
                        b = u
                        break
            if b < 0:
                b = n_uid
                uid_span[b, 0] = id_s
                uid_span[b, 1] = id_e
                n_uid += 1
            app_body[n_app] = b
            app_frame[n_app] = valid
            state = 3
        else:
            # frame count, body count or joint count: one integer, optionally surrounded by whitespace
            while k < n and _IS_SPACE[buf[_U(k)]]:
                k += 1
            value = 0
            nd = 0
            while k < n and buf[_U(k)] >= 48 and buf[_U(k)] <= 57 and nd <= 18:
                value = value * 10 + (buf[_U(k)] - 48)
                nd += 1
                k += 1
            while k < n and _IS_SPACE[buf[_U(k)]]:
                k += 1
            if nd == 0 or nd > 18 or (k < n and buf[_U(k)] != 10):
                code = _E_INT
                break
            if state == 0:
                n_frames = value
                # a dropped frame takes >= 2 bytes ("0\n")
                dropped = np.empty(min(value, n // 2 + 1), np.int64)
                state = 1
            elif state == 1:
                if value == 0:
                    dropped[n_drop] = f
                    n_drop += 1
                    f += 1
                else:
                    valid += 1
                    bodies_left = value
                    state = 2
            else:
                if value != 25:
                    code = _E_JOINTS
                    break
                joint = 0
                state = 4
        # k is at the newline ending the line, or at n
        p = k + 1
    if code == _E_OK:
        k = p
        while k < n and (_IS_SPACE[buf[_U(k)]] or buf[_U(k)] == 10):  # nothing but whitespace after the last frame
            k += 1
        if k < n:
            code = _E_TRAILING
        elif valid < 0:
            code = _E_EMPTY
    status[0] = code
    status[1] = min(k, n)
    status[2] = n_frames
    status[3] = n_app
    status[4] = n_uid
    status[5] = n_drop
    return status, joints, colors, app_body, app_frame, uid_span, dropped


_KERNEL = None  # the compiled scanner, or False when numba is unavailable
_NUMBA_WARNED = False


def kernel():
    """The compiled scanner (compiled on first use, cached on disk by numba), or None without numba."""
    global _KERNEL, _NUMBA_WARNED
    if _KERNEL is None:
        try:
            from numba import njit
        except ImportError:
            _KERNEL = False
        else:
            _KERNEL = njit(cache=True, nogil=True)(_scan_kernel)
    if _KERNEL is False:
        if not _NUMBA_WARNED:
            _NUMBA_WARNED = True
            warnings.warn(
                "numba is not installed: NTU .skeleton parsing uses the slower numpy path",
                RuntimeWarning, stacklevel=3,
            )
        return None
    return _KERNEL


def warm_up() -> bool:
    """Compile (or load from numba's on-disk cache) the compiled parser; call once per process.

    Returns whether the compiled path is available.
    """
    compiled = kernel()
    if compiled is None:
        return False
    compiled(np.frombuffer(b"1\n0\n", dtype=np.uint8))
    return True
