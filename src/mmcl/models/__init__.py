"""Skeleton backbones (CTR-GCN, CTRS-GCN, HD-GCN), graphs and cost counting (official key names: :mod:`mmcl.checkpoints`)."""

from mmcl.models.build import BACKBONES, build_backbone
from mmcl.models.ctrgcn import CTRGCN
from mmcl.models.ctrs_gcn import CTRSGCN
from mmcl.models.flops import cost_summary, count_macs, count_parameters, format_cost, layer_table
from mmcl.models.graph import spatial_adjacency
from mmcl.models.hdgcn import HDGCN
from mmcl.models.hierarchy import hierarchy_adjacency, hierarchy_groups

__all__ = [
    "BACKBONES",
    "CTRGCN",
    "CTRSGCN",
    "HDGCN",
    "hierarchy_adjacency",
    "hierarchy_groups",
    "build_backbone",
    "cost_summary",
    "count_macs",
    "format_cost",
    "count_parameters",
    "layer_table",
    "spatial_adjacency",
]
