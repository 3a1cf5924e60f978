"""Sub-commands beyond train/test/info/demo, one module per area; each is a thin wrapper over the library.

Every module exposes ``register(subparsers)``; :func:`register` adds them all (called from
:func:`mmcl.cli.build_parser`).
"""

from __future__ import annotations

from typing import Any

from mmcl.commands import deploy, evaluate, extract, prepare

__all__ = ["register"]

MODULES = (prepare, extract, evaluate, deploy)


def register(sub: Any) -> None:
    for module in MODULES:
        module.register(sub)
