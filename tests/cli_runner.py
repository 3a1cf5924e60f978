"""Run the ``mmcl`` command in-process and capture what it prints (shared by the CLI tests)."""

from __future__ import annotations

import pytest

from mmcl.cli import main


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """``(exit code, stdout, stderr)`` of ``mmcl ARGV``; argparse exits (``--help``) count as codes."""
    try:
        code = main(argv)
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err
