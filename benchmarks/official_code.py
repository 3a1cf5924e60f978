"""The official CTR-GCN and HD-GCN code, for benchmarks and CUDA tests that compare against it.

The official code is not vendored (licence and provenance); get it once, outside the repo::

    mkdir -p /work/official/CTR-GCN/model /work/official/CTR-GCN/graph
    for p in model/__init__.py model/ctrgcn.py graph/__init__.py graph/tools.py graph/ntu_rgb_d.py graph/ucla.py; do
        git --git-dir=<clone of github.com/Uason-Chen/CTR-GCN>/.git show HEAD:$p > /work/official/CTR-GCN/$p
    done
    mkdir -p /work/official/HD-GCN/model /work/official/HD-GCN/graph
    for p in model/HDGCN.py graph/tools.py graph/ntu_rgb_d_hierarchy.py; do
        git --git-dir=<clone of github.com/Jho-Yonsei/HD-GCN>/.git show HEAD:$p > /work/official/HD-GCN/$p
    done
    touch /work/official/HD-GCN/graph/__init__.py  # the official one imports modules shipped only compiled

and pass ``--official DIR`` (or set ``MMCL_OFFICIAL_CTRGCN`` / ``MMCL_OFFICIAL_HDGCN``). The official
HD-GCN runs on CUDA only (its kNN indexes with ``x.get_device()``), needs ``einops``, and ships the
NTU hierarchy only (its ``ucla_hierarchy`` exists as a compiled Python 3.6 file alone).
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from torch import nn

OFFICIAL_ENV = "MMCL_OFFICIAL_CTRGCN"  # CTR-GCN; kept under its old name for the CTR-GCN scripts
OFFICIAL_ENVS = {"ctrgcn": OFFICIAL_ENV, "hdgcn": "MMCL_OFFICIAL_HDGCN"}
# Each official repository's model file and, per layout, its config's graph (config/*/default.yaml).
OFFICIAL_MODEL = {"ctrgcn": "model.ctrgcn", "hdgcn": "model.HDGCN"}
OFFICIAL_REPO = {"ctrgcn": "github.com/Uason-Chen/CTR-GCN", "hdgcn": "github.com/Jho-Yonsei/HD-GCN"}
OFFICIAL_GRAPHS = {
    "ctrgcn": {"ntu25": "graph.ntu_rgb_d.Graph", "kinect20": "graph.ucla.Graph"},
    "hdgcn": {"ntu25": "graph.ntu_rgb_d_hierarchy.Graph"},
}
OFFICIAL_GRAPH_ARGS = {"labeling_mode": "spatial"}


def _files(backbone: str, layout: str) -> list[str]:
    graph_file = OFFICIAL_GRAPHS[backbone][layout].split(".")[1] + ".py"
    return [OFFICIAL_MODEL[backbone].replace(".", "/") + ".py", f"graph/{graph_file}", "graph/tools.py"]


def resolve_official_dir(arg: str | None, layout: str = "ntu25", backbone: str = "ctrgcn") -> Path | None:
    """The folder holding the official ``model/`` and ``graph/``, or None (with a note) when not given."""
    env = OFFICIAL_ENVS[backbone]
    raw = arg or os.environ.get(env)
    if not raw:
        print(f"note: skipping `official`: pass --official DIR or set {env}=DIR, DIR holding model/ and graph/ "
              f"from {OFFICIAL_REPO[backbone]} (see benchmarks/official_code.py)")
        return None
    if layout not in OFFICIAL_GRAPHS[backbone]:
        raise SystemExit(f"the official {backbone} code has no graph for layout {layout}")
    path = Path(raw).expanduser().resolve()
    missing = [f for f in _files(backbone, layout) + ["graph/__init__.py"] if not (path / f).is_file()]
    if missing:
        raise SystemExit(f"{path} lacks {', '.join(missing)} of the official {backbone} ({OFFICIAL_REPO[backbone]})")
    return path


@contextmanager
def _official_imports(official_dir: Path) -> Iterator[None]:
    """Imports from ``official_dir`` (the models import their graph by name while they are built):
    both official repositories name their packages ``model`` and ``graph`` at top level, so earlier
    imports of either are dropped first."""
    for name in [n for n in sys.modules if n.split(".")[0] in ("model", "graph")]:
        del sys.modules[name]
    sys.path.insert(0, str(official_dir))
    try:
        yield
    finally:
        sys.path.remove(str(official_dir))


def official_model(official_dir: Path, *, num_class: int, num_point: int, num_person: int, layout: str,
                   in_channels: int = 3, backbone: str = "ctrgcn", com: int = 21) -> nn.Module:
    """The official ``Model`` of ``backbone`` built as its config for ``layout`` does (HD-GCN: ``com``)."""
    graph_args = dict(OFFICIAL_GRAPH_ARGS, **({"CoM": com} if backbone == "hdgcn" else {}))
    with _official_imports(official_dir):
        code = importlib.import_module(OFFICIAL_MODEL[backbone])
        importlib.import_module(OFFICIAL_GRAPHS[backbone][layout].rsplit(".", 1)[0])  # found by attribute later
        return code.Model(num_class=num_class, num_point=num_point, num_person=num_person,
                          graph=OFFICIAL_GRAPHS[backbone][layout], graph_args=graph_args, in_channels=in_channels)
