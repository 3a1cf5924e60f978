"""Sub-commands beyond train/test/info/demo: data preparation, extraction, export, ensembling, reports.

Each command is a thin wrapper over a library function; registered from :func:`mmcl.cli.build_parser`.
"""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["register"]


def register(sub: Any) -> None:
    """Add the optional sub-commands to the ``mmcl`` parser."""
    return None
