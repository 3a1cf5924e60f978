"""Backbone factory: the one entry point that turns config values into a model."""

from __future__ import annotations

from torch import nn

from mmcl.models.ctrgcn import CTRGCN
from mmcl.models.ctrs_gcn import CTRSGCN
from mmcl.models.hdgcn import HDGCN
from mmcl.skeleton.layouts import layout_key

__all__ = ["build_backbone", "BACKBONES"]

BACKBONES: tuple[str, ...] = ("ctrgcn", "ctrs-gcn", "hdgcn")


def build_backbone(
    name: str = "ctrgcn",
    *,
    num_classes: int,
    layout: str,
    num_persons: int,
    in_channels: int = 3,
    drop_out: float = 0.0,
    base_channels: int = 64,
    com: int | None = None,
) -> nn.Module:
    """Build a skeleton backbone (``forward``, ``forward_features``, ``classify``, ``feature_dim``).

    ``layout`` is a skeleton layout ("ntu25", "coco17", a user layout's .yaml or its JSON description,
    :func:`mmcl.skeleton.layouts.layout_key`); it fixes the joint count and graph.
    ``base_channels`` narrows CTR-GCN / HD-GCN for tiny models (64 = the reference width).
    ``com`` is HD-GCN's hierarchy centre (1-based joint; None = the layout's default), refused elsewhere.
    """
    layout = layout_key(layout)  # a name, a user layout's description or its .yaml; raises for an unknown one
    if num_classes < 1 or num_persons < 1 or in_channels < 1:
        raise ValueError(
            f"num_classes, num_persons and in_channels must be positive, got {num_classes}, {num_persons}, {in_channels}"
        )
    kwargs = dict(
        num_classes=num_classes, layout=layout, num_persons=num_persons, in_channels=in_channels, drop_out=drop_out
    )
    if com is not None and name != "hdgcn":
        raise ValueError(f"com (the hierarchy's centre of mass) is an hdgcn argument; {name} has no hierarchy")
    if name == "hdgcn":
        return HDGCN(**kwargs, base_channels=base_channels, com=com)
    if name == "ctrgcn":
        return CTRGCN(**kwargs, base_channels=base_channels)
    if name == "ctrs-gcn":
        if base_channels != 64:
            raise ValueError("ctrs-gcn has the reference width only (base_channels=64)")
        return CTRSGCN(**kwargs)
    raise ValueError(f"unknown backbone {name!r}; choose from {list(BACKBONES)}")
