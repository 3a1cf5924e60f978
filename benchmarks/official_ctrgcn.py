"""The official CTR-GCN code, for benchmarks that compare against it (imported by sibling scripts).

The official code is not vendored (licence and provenance); get it once, outside the repo::

    mkdir -p /work/official/CTR-GCN/model /work/official/CTR-GCN/graph
    for p in model/__init__.py model/ctrgcn.py graph/__init__.py graph/tools.py graph/ntu_rgb_d.py graph/ucla.py; do
        git --git-dir=<clone of github.com/Uason-Chen/CTR-GCN>/.git show HEAD:$p > /work/official/CTR-GCN/$p
    done

and pass ``--official /work/official/CTR-GCN`` (or set ``MMCL_OFFICIAL_CTRGCN``).
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

from torch import nn

OFFICIAL_ENV = "MMCL_OFFICIAL_CTRGCN"
# The official configs' model_args per layout (config/nturgbd*-*/default.yaml, config/ucla/default.yaml).
OFFICIAL_GRAPHS = {"ntu25": "graph.ntu_rgb_d.Graph", "kinect20": "graph.ucla.Graph"}
OFFICIAL_GRAPH_ARGS = {"labeling_mode": "spatial"}


def resolve_official_dir(arg: str | None, layout: str = "ntu25") -> Path | None:
    """The folder holding the official ``model/`` and ``graph/``, or None (with a note) when not given."""
    raw = arg or os.environ.get(OFFICIAL_ENV)
    if not raw:
        print(f"note: skipping `official`: pass --official DIR or set {OFFICIAL_ENV}=DIR, DIR holding "
              "model/ctrgcn.py and graph/ from github.com/Uason-Chen/CTR-GCN (see benchmarks/official_ctrgcn.py)")
        return None
    path = Path(raw).expanduser().resolve()
    graph_file = OFFICIAL_GRAPHS[layout].split(".")[1] + ".py"
    if not (path / "model" / "ctrgcn.py").is_file() or not (path / "graph" / graph_file).is_file():
        raise SystemExit(f"{path} lacks model/ctrgcn.py or graph/{graph_file} of the official CTR-GCN")
    return path


def official_model(official_dir: Path, *, num_class: int, num_point: int, num_person: int, layout: str,
                   in_channels: int = 3) -> nn.Module:
    """The official ``model.ctrgcn.Model`` built as its config for ``layout`` does."""
    if str(official_dir) not in sys.path:
        sys.path.insert(0, str(official_dir))  # the official code imports `model` and `graph` top-level
    ctrgcn = importlib.import_module("model.ctrgcn")
    return ctrgcn.Model(num_class=num_class, num_point=num_point, num_person=num_person, graph=OFFICIAL_GRAPHS[layout],
                        graph_args=dict(OFFICIAL_GRAPH_ARGS), in_channels=in_channels)
