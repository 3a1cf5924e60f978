"""The package layout: packages import only those below them (the order a sample travels), no cycles.

Every ``import mmcl.…`` counts, also those inside functions (a lazy import hides a cycle, it does
not remove it).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import mmcl

SRC = Path(mmcl.__file__).parent

# Lowest first. A package may import only packages listed before it (and itself).
LAYERS = [
    "io", "memory", "device", "skeleton", "config",  # plumbing and joint orders
    "formats",                                     # raw files and name rules
    "modalities",                                  # RGB / text features for co-learning
    "datasets",                                    # sources, transforms + streams, splits
    "prepare",                                     # raw datasets -> prepared folders
    "models",                                      # backbones
    "colearning",                                  # FAM, FRM heads and losses
    "checkpoints",                                 # model card, the one checkpoint reader
    "results",                                     # evaluation, scores, metrics, ensembles, reports
    "training",                                    # Lightning module, data, fit
    "export", "predict", "zeroshot",               # using a trained model
    "demo",                                        # the built-in main job
    "cli", "__main__",                             # the command line
]


def _imports() -> dict[str, set[str]]:
    """package -> mmcl packages it imports (top-level modules of mmcl count as packages)."""
    edges: dict[str, set[str]] = defaultdict(set)
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC)
        pkg = rel.parts[0].removesuffix(".py") if len(rel.parts) > 1 or rel.name != "__init__.py" else "<root>"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module else []
            names += [a.name for a in node.names] if isinstance(node, ast.Import) else []
            for name in names:
                parts = name.split(".")
                if parts[0] == "mmcl" and len(parts) > 1 and parts[1] != pkg:
                    edges[pkg].add(parts[1])
    return edges


def test_every_package_has_a_layer() -> None:
    packages = {p.name.removesuffix(".py") for p in SRC.iterdir() if (p.suffix == ".py" and p.name != "__init__.py") or (p / "__init__.py").is_file()}
    assert packages == set(LAYERS)


def test_no_package_imports_upward_so_there_is_no_cycle() -> None:
    rank = {name: i for i, name in enumerate(LAYERS)}
    upward = sorted(f"{src} -> {dst}" for src, dsts in _imports().items() if src in rank for dst in dsts if rank[dst] > rank[src])
    assert upward == []
