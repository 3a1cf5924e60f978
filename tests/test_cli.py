"""The command line: help texts, the info command, and one-line errors for user mistakes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


from cli_runner import run  # noqa: E402  (shared in-process CLI runner)

CONFIGS = Path(__file__).resolve().parents[1] / "configs"



@pytest.mark.parametrize("command", ["train", "test", "info", "demo"])
def test_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run([command, "--help"], capsys)
    assert code == 0 and "usage: mmcl" in out


def test_top_level_help_lists_commands(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["--help"], capsys)
    assert code == 0
    for command in ("train", "test", "info", "demo"):
        assert command in out


def test_info_reports_reference_figures(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["info", "-c", str(CONFIGS / "ntu120_xsub.yaml"), "--json"], capsys)
    assert code == 0
    info = json.loads(out)
    assert info["parameters"] == 1_462_092
    assert info["GMACs"] == pytest.approx(1.94, rel=0.02)  # reference formulation (REFERENCE §5, paper Table 7)
    assert info["GMACs_executed"] < info["GMACs"]  # same function, conv1/conv2 on the time-mean
    assert len(info["layers"]) >= 10


def _one_line_error(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("mmcl: error:")
    return lines[0]


def test_missing_data_path_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["train", "-c", str(CONFIGS / "nwucla.yaml"), "--data", str(tmp_path / "nope"),
                        "--work-dir", str(tmp_path / "run")], capsys)
    assert code == 2
    assert "nope" in _one_line_error(err)
    assert not (tmp_path / "run").exists()  # nothing written for a run that could not start


def test_unknown_stream_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["train", "-c", str(CONFIGS / "nwucla.yaml"), "--stream", "legs"], capsys)
    assert code == 2
    assert "unknown stream 'legs'" in _one_line_error(err)


def test_bad_override_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["info", "-c", str(CONFIGS / "nwucla.yaml"), "optim.nope=3"], capsys)
    assert code == 2
    assert "optim.nope" in _one_line_error(err)


def test_wrong_checkpoint_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "model.pt"
    bad.write_bytes(b"this is not a checkpoint")
    code, _, err = run(["test", "-c", str(CONFIGS / "nwucla.yaml"), "--checkpoint", str(bad), "--data", str(tmp_path)], capsys)
    assert code == 2
    assert "model.pt" in _one_line_error(err)
