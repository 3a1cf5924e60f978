"""Skeleton backbones (CTR-GCN, CTRS-GCN), graphs, official-checkpoint mapping and cost counting."""

from mmcl.models.build import BACKBONES, build_backbone
from mmcl.models.ctrgcn import CTRGCN
from mmcl.models.ctrs_gcn import CTRSGCN
from mmcl.models.flops import count_macs, count_parameters, layer_table
from mmcl.models.graph import spatial_adjacency
from mmcl.models.reference import (
    MMCL_EXTRA_PREFIXES,
    load_reference_state_dict,
    reference_state_dict,
    split_mmcl_checkpoint,
)

__all__ = [
    "BACKBONES",
    "CTRGCN",
    "CTRSGCN",
    "MMCL_EXTRA_PREFIXES",
    "build_backbone",
    "count_macs",
    "count_parameters",
    "layer_table",
    "load_reference_state_dict",
    "reference_state_dict",
    "spatial_adjacency",
    "split_mmcl_checkpoint",
]
