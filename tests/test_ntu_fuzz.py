"""Fuzz the NTU parser: damaged files and random bytes may only raise NTUParseError."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mmcl.prepare.ntu_denoise import process_parsed
from mmcl.prepare.ntu_parse import NTUParseError, NTUPrepareError, _parse_careful, parse_skeleton
from mmcl.prepare.ntu_synth import format_skeleton, random_sample

VALID = format_skeleton(random_sample(np.random.default_rng(0), 14, 2)).encode()
SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _check(data: bytes) -> None:
    try:
        parsed = parse_skeleton(data, "fuzz.skeleton")
    except NTUParseError as exc:
        assert "fuzz.skeleton" in str(exc)
        return
    # whatever the fast path accepts, the careful path accepts identically
    careful = _parse_careful(data, None)
    assert [b.body_id for b in parsed.bodies] == [b.body_id for b in careful.bodies]
    for a, b in zip(parsed.bodies, careful.bodies):
        assert np.array_equal(a.joints, b.joints) and np.array_equal(a.frames, b.frames)
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
