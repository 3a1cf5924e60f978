"""Fuzz the NTU parser.

* damaged files and random bytes may only raise NTUParseError;
* whatever a fast path (compiled or numpy) accepts, the careful path accepts with a bit-identical result;
* valid files with numbers written in any float() syntax parse bit-identically on every path.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from mmcl.formats import ntu_scan
from mmcl.formats.ntu_denoise import process_parsed
from mmcl.formats.ntu_parse import (
    NTUParseError,
    NTUPrepareError,
    _Fallback,
    _parse_careful,
    _parse_numba,
    _parse_numpy,
    parse_skeleton,
)
from mmcl.prepare.ntu_synth import format_skeleton, random_sample

pytestmark = pytest.mark.slow  # multi-process / long: outside the fast loop (-m "not slow")

VALID = format_skeleton(random_sample(np.random.default_rng(0), 14, 2)).encode()
SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
HAVE_NUMBA = ntu_scan.kernel() is not None


def _same(a, b) -> None:
    assert a.num_frames == b.num_frames and a.dropped_frames == b.dropped_frames
    assert [x.body_id for x in a.bodies] == [x.body_id for x in b.bodies]
    for x, y in zip(a.bodies, b.bodies):
        assert x.joints.tobytes() == y.joints.tobytes() and x.joints.shape == y.joints.shape
        assert x.colors.tobytes() == y.colors.tobytes() and x.colors.shape == y.colors.shape
        assert x.frames.tolist() == y.frames.tolist()


def _fast_results(data: bytes) -> list:
    """Results of the fast paths that accept ``data`` (they may only decline with _Fallback)."""
    out = []
    for fn in (_parse_numba, _parse_numpy) if HAVE_NUMBA else (_parse_numpy,):
        try:
            out.append(fn(data))
        except _Fallback:
            pass
    return out


def _check(data: bytes) -> None:
    fast = _fast_results(data)
    try:
        parsed = parse_skeleton(data, "fuzz.skeleton")
    except NTUParseError as exc:
        assert "fuzz.skeleton" in str(exc)
        assert not fast, "a fast path accepted a file the careful path rejects"
        return
    # whatever a fast path accepts, the careful path accepts identically
    careful = _parse_careful(data, None)
    _same(parsed, careful)
    for r in fast:
        _same(r, careful)
    try:
        process_parsed(parsed, fix_quirks=False)
    except NTUPrepareError:
        pass


@SETTINGS
@given(st.integers(0, len(VALID)))
def test_truncations(n: int) -> None:
    _check(VALID[:n])


@SETTINGS
@given(st.lists(st.tuples(st.integers(0, len(VALID) - 1), st.binary(min_size=0, max_size=3)), min_size=1, max_size=4))
def test_mutations(edits: list[tuple[int, bytes]]) -> None:
    data = bytearray(VALID)
    for pos, rep in edits:
        data[pos : pos + 1] = rep
    _check(bytes(data))


@SETTINGS
@given(st.binary(max_size=400))
def test_random_bytes(data: bytes) -> None:
    _check(data)


@SETTINGS
@given(st.lists(st.sampled_from([b"0", b"1", b"2", b"25", b"-1", b"x", b"1.5", b"\n", b" ", b"7 0 1 1 1 1 0 0 0 2"]), max_size=60))
def test_token_soup(tokens: list[bytes]) -> None:
    _check(b"".join(tokens))


# --- valid mutations: numbers in any syntax float() accepts, whitespace variants -----------------

_LINES = VALID.split(b"\n")
_JOINT_LINES = [i for i, ln in enumerate(_LINES) if len(ln.split()) == 12]
_FORMATS = ["{:.7g}", "{!r}", "{:.3e}", "{:+.9f}", "{:.17g}", "{:E}", "{:.1f}", "{:.0f}", "{:.20f}"]


def _fmt(v: float, style: int) -> bytes:
    if style < len(_FORMATS):
        return _FORMATS[style].format(v).encode()
    s = f"{v:.6f}"
    return (s.lstrip("0") if not s.startswith("-") else "-" + s[1:].lstrip("0")).encode() or b"0"  # ".5"


@SETTINGS
@given(
    st.lists(
        st.tuples(
            st.sampled_from(_JOINT_LINES),
            st.sampled_from([0, 1, 2, 5, 6]),
            st.one_of(st.floats(-1e4, 1e4, allow_nan=False), st.floats(allow_nan=False, allow_infinity=False, width=32)),
            st.integers(0, len(_FORMATS)),
        ),
        min_size=1,
        max_size=6,
    ),
    st.sampled_from([b" ", b"\t", b"  ", b" \r", b"\x0b"]),
    st.sampled_from([b"\n", b"\r\n"]),
)
def test_valid_number_syntax_and_whitespace(edits, sep: bytes, eol: bytes) -> None:
    lines = [ln.split() for ln in _LINES]
    for li, col, v, style in edits:
        text = _fmt(v, style)
        with np.errstate(over="ignore"):  # "{:.3e}" of float32's largest value rounds up beyond float32: invalid input
            assume(np.isfinite(np.float32(float(text))))
        lines[li][col] = text
    data = eol.join(sep.join(t) for t in lines)
    careful = _parse_careful(data, None)  # valid: must parse
    _same(parse_skeleton(data, "fuzz.skeleton"), careful)
    for r in _fast_results(data):
        _same(r, careful)


@pytest.mark.skipif(not HAVE_NUMBA, reason="numba is not installed")
@SETTINGS
@given(st.floats(-1e6, 1e6, allow_nan=False), st.integers(0, 8))
def test_compiled_conversion_is_float_then_float32(v: float, ndigits: int) -> None:
    token = f"{round(v, ndigits)}".encode()
    lines = [ln.split() for ln in _LINES]
    lines[_JOINT_LINES[0]][0] = token
    data = b"\n".join(b" ".join(t) for t in lines)
    try:
        fast = _parse_numba(data)
    except _Fallback:  # e.g. exponent outside the exact range: the careful path is used
        fast = _parse_careful(data, None)
    got = fast.bodies[0].joints[0, 0, 0]
    want = np.float32(float(token))
    assert got.tobytes() == want.tobytes()
