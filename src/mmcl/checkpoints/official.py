"""The one place that maps our parameter names to the official checkpoint key names.

CTR-GCN official keys follow REFERENCE §5.7 (and ``ctrgcn_ntu120_state_dict.tsv``). CTRS-GCN keys
follow the reference baseline (model/baseline.py, REFERENCE §5.8), whose modules are named like
CTR-GCN's: ``l{i}.gcn1.{PA, conv_d.{k}.*, down.{0,1}.*, bn.*}``, ``l{i}.tcn1.{conv, bn}.*``
(single temporal unit), ``l{i}.residual.{conv, bn}.*``, ``data_bn.*``, ``fc.*`` (no ``alpha``:
the baseline has no topology refinement).

Every parameter and buffer keeps the official shape, so the mapping is a pure renaming.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence

import torch
from torch import nn

from mmcl.formats.checkpoint_file import unwrap_checkpoint
from mmcl.models.hdgcn import HDGraphConv
from mmcl.models.hierarchy import guess_com
from mmcl.skeleton.layouts import LAYOUT_BY_JOINTS

__all__ = [
    "official_key",
    "to_our_keys",
    "infer_backbone_shape",
    "state_dict_problems",
    "reference_state_dict",
    "load_reference_state_dict",
    "split_mmcl_checkpoint",
    "unwrap_checkpoint",
    "MMCL_EXTRA_PREFIXES",
]

# Official MMCL keys that are not part of the backbone (REFERENCE §7.9, mmcl_extra_state_dict.tsv).
MMCL_EXTRA_PREFIXES: tuple[str, ...] = ("PosMatrix", "NegMatrix", "mlp.", "FAM_Aligh.", "inception_v3.")

_BLOCK = re.compile(r"^blocks\.(\d+)\.(.+)$")

# Renaming rules inside one block (our suffix -> official suffix), tried in order.
_BLOCK_RULES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(p), r)
    for p, r in (
        # CTR-GCN unit_gcn (REFERENCE §5.3, §5.7)
        (r"^graph_conv\.adjacency$", r"gcn1.PA"),
        (r"^graph_conv\.alpha$", r"gcn1.alpha"),
        (r"^graph_conv\.topology\.(\d+)\.query\.(\w+)$", r"gcn1.convs.\1.conv1.\2"),
        (r"^graph_conv\.topology\.(\d+)\.key\.(\w+)$", r"gcn1.convs.\1.conv2.\2"),
        (r"^graph_conv\.topology\.(\d+)\.value\.(\w+)$", r"gcn1.convs.\1.conv3.\2"),
        (r"^graph_conv\.topology\.(\d+)\.expand\.(\w+)$", r"gcn1.convs.\1.conv4.\2"),
        # CTRS-GCN unit_gcn (REFERENCE §5.8)
        (r"^graph_conv\.subset_convs\.(\d+)\.(\w+)$", r"gcn1.conv_d.\1.\2"),
        # HD-GCN HD_Gconv (model/HDGCN.py): per layer conv_down, conv.{layer}.{subset 0-2} and EdgeConv conv.{layer}.3, AHA
        (r"^graph_conv\.squeeze\.(\d+)\.conv\.(\w+)$", r"gcn1.conv_down.\1.0.\2"),
        (r"^graph_conv\.squeeze\.(\d+)\.bn\.(\w+)$", r"gcn1.conv_down.\1.1.\2"),
        (r"^graph_conv\.subsets\.(\d+)\.(\d+)\.conv\.(\w+)$", r"gcn1.conv.\1.\2.0.\3"),
        (r"^graph_conv\.subsets\.(\d+)\.(\d+)\.bn\.(\w+)$", r"gcn1.conv.\1.\2.1.\3"),
        (r"^graph_conv\.edges\.(\d+)\.conv\.(\w+)$", r"gcn1.conv.\1.3.conv.0.\2"),
        (r"^graph_conv\.edges\.(\d+)\.bn\.(\w+)$", r"gcn1.conv.\1.3.conv.1.\2"),
        (r"^graph_conv\.attention\.squeeze\.conv\.(\w+)$", r"gcn1.aha.conv_down.0.\1"),
        (r"^graph_conv\.attention\.squeeze\.bn\.(\w+)$", r"gcn1.aha.conv_down.1.\1"),
        (r"^graph_conv\.attention\.edge\.conv\.(\w+)$", r"gcn1.aha.edge_conv.conv.0.\1"),
        (r"^graph_conv\.attention\.edge\.bn\.(\w+)$", r"gcn1.aha.edge_conv.conv.1.\1"),
        (r"^graph_conv\.attention\.aggregate\.(\w+)$", r"gcn1.aha.aggregate.\1"),
        # both
        (r"^graph_conv\.down\.conv\.(\w+)$", r"gcn1.down.0.\1"),
        (r"^graph_conv\.down\.bn\.(\w+)$", r"gcn1.down.1.\1"),
        (r"^graph_conv\.bn\.(\w+)$", r"gcn1.bn.\1"),
        # CTR-GCN MS-TCN (REFERENCE §5.4)
        (r"^temporal_conv\.branches\.(\d+)\.pointwise\.(\w+)$", r"tcn1.branches.\1.0.\2"),
        (r"^temporal_conv\.branches\.(\d+)\.pointwise_bn\.(\w+)$", r"tcn1.branches.\1.1.\2"),
        (r"^temporal_conv\.branches\.(\d+)\.temporal\.(conv|bn)\.(\w+)$", r"tcn1.branches.\1.3.\2.\3"),
        (r"^temporal_conv\.branches\.(\d+)\.temporal\.bias$", r"tcn1.branches.\1.3.bias"),  # HD-GCN TemporalConv
        (r"^temporal_conv\.branches\.(\d+)\.pool_bn\.(\w+)$", r"tcn1.branches.\1.4.\2"),
        # CTRS-GCN single temporal unit (REFERENCE §5.8)
        (r"^temporal_conv\.(conv|bn)\.(\w+)$", r"tcn1.\1.\2"),
        # block residual unit_tcn (l5, l8)
        (r"^residual\.(conv|bn)\.(\w+)$", r"residual.\1.\2"),
    )
)
_TOP_RULES = (re.compile(r"^(data_bn|fc)\.(\w+)$"),)


def official_key(key: str) -> str:
    """Official name of one of our state_dict keys; ``KeyError`` if it has none."""
    for pat in _TOP_RULES:
        if pat.match(key):
            return key
    m = _BLOCK.match(key)
    if m:
        index, rest = int(m.group(1)), m.group(2)
        for pat, repl in _BLOCK_RULES:
            if pat.match(rest):
                return f"l{index + 1}." + pat.sub(repl, rest)
    raise KeyError(f"no official name for parameter {key!r}")


_HD_LAYER_KEY = re.compile(r"^(l\d+\.gcn1\.)conv\.(\d+)\.(.+)$")


def _key_map(model: nn.Module) -> "OrderedDict[str, str]":
    """Ordered map official key -> our key, over the model's full state_dict.

    HD-GCN's HD_Gconv also registers its last layer's branches as ``gcn1.conv_d`` (an attribute
    left over from its constructor loop), so official checkpoints carry them twice; those alias
    keys map to the same parameters.
    """
    model = getattr(model, "_orig_mod", model)  # torch.compile wrapper
    last_layer = {
        f"l{i + 1}.gcn1.": block.graph_conv.num_layers - 1
        for i, block in enumerate(getattr(model, "blocks", ()))
        if isinstance(getattr(block, "graph_conv", None), HDGraphConv)
    }
    out: OrderedDict[str, str] = OrderedDict()
    for ours in model.state_dict():
        off = official_key(ours)
        out[off] = ours
        m = _HD_LAYER_KEY.match(off)
        if m and last_layer.get(m.group(1)) == int(m.group(2)):
            out[f"{m.group(1)}conv_d.{m.group(3)}"] = ours
    return out


def reference_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The model's state_dict under official key names, in state_dict order (buffers included)."""
    model = getattr(model, "_orig_mod", model)
    own = model.state_dict()
    return OrderedDict((off, own[ours]) for off, ours in _key_map(model).items())


def split_mmcl_checkpoint(
    state_dict: Mapping[str, torch.Tensor],
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Split an official MMCL state_dict into (backbone keys, MMCL extras: FRM/FAM/Inception)."""
    sd = unwrap_checkpoint(state_dict)
    backbone: dict[str, torch.Tensor] = OrderedDict()
    extras: dict[str, torch.Tensor] = OrderedDict()
    for k, v in sd.items():
        (extras if k.startswith(MMCL_EXTRA_PREFIXES) else backbone)[k] = v
    return backbone, extras


def _short_list(keys: Iterable[str], limit: int = 20) -> str:
    keys = list(keys)
    head = ", ".join(keys[:limit])
    return head + (f", ... ({len(keys) - limit} more)" if len(keys) > limit else "")


def state_dict_problems(expected: Mapping[str, Sequence[int]], state_dict: Mapping[str, torch.Tensor]) -> str:
    """Missing keys, unexpected keys and shape mismatches of ``state_dict`` against ``expected``
    (key -> shape), as one readable string; empty when the two fit exactly."""
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    mismatched = [
        f"{k}: checkpoint {list(state_dict[k].shape)} vs model {list(expected[k])}"
        for k in expected
        if k in state_dict and tuple(state_dict[k].shape) != tuple(expected[k])
    ]
    problems = []
    if missing:
        problems.append(f"missing keys ({len(missing)}): {_short_list(missing)}")
    if unexpected:
        problems.append(f"unexpected keys ({len(unexpected)}): {_short_list(unexpected)}")
    if mismatched:
        problems.append(f"shape mismatches ({len(mismatched)}): {_short_list(mismatched)}")
    return "; ".join(problems)


def load_reference_state_dict(
    model: nn.Module, state_dict: Mapping, ignore_prefixes: Sequence[str] = ()
) -> None:
    """Load an official checkpoint (official key names) into ``model``, strictly.

    Accepts a bare state_dict, ``module.``-prefixed keys or a ``{"state_dict"|"model": ...}``
    wrapper. Keys starting with one of ``ignore_prefixes`` are dropped first. Raises
    ``ValueError`` naming missing keys, unexpected keys and shape mismatches; nothing is
    loaded then (the official loader silently kept random weights, REFERENCE §12.10/§12.21).
    """
    model = getattr(model, "_orig_mod", model)
    sd = unwrap_checkpoint(state_dict)
    prefixes = tuple(ignore_prefixes)
    if prefixes:
        sd = OrderedDict((k, v) for k, v in sd.items() if not k.startswith(prefixes))
    model.load_state_dict(to_our_keys(model, sd), strict=True)


def to_our_keys(model: nn.Module, state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """An official-key backbone state_dict renamed to ``model``'s keys, checked strictly.

    Raises ``ValueError`` naming missing keys, unexpected keys and shape mismatches.
    """
    model = getattr(model, "_orig_mod", model)
    key_map = _key_map(model)
    own = model.state_dict()
    expected = {off: tuple(own[ours].shape) for off, ours in key_map.items()}
    problems = state_dict_problems(expected, state_dict)
    if problems:
        raise ValueError(f"checkpoint does not match {type(model).__name__} (official key names): {problems}")
    out: OrderedDict[str, torch.Tensor] = OrderedDict()
    first: dict[str, str] = {}
    for off, ours in key_map.items():
        if ours in out:  # an alias (HD-GCN conv_d): must hold the same values
            if not torch.equal(out[ours], state_dict[off]):
                raise ValueError(f"checkpoint's {off} differs from {first[ours]}, which it duplicates in the official model")
            continue
        out[ours], first[ours] = state_dict[off], off
    return out




def _first(sd: Mapping[str, torch.Tensor], *keys: str) -> torch.Tensor | None:
    for k in keys:
        if k in sd:
            return sd[k]
    return None


def infer_backbone_shape(state_dict: Mapping[str, torch.Tensor]) -> dict[str, object]:
    """Builder arguments read off an official backbone state dict (files that carry no model card).

    Classes = ``fc.weight`` rows; joints = size of the graph (``l1.gcn1.PA``); input channels = input
    width of the first graph convolution; persons = ``data_bn`` width / (joints × channels);
    CTRS-GCN is recognised by its static subset convolutions (``conv_d``); base width = fc input / 4.
    """
    sd = unwrap_checkpoint(state_dict)
    graph = _first(sd, "l1.gcn1.PA")
    if graph is not None and graph.dim() == 4:  # HD-GCN: L × 3 × V × V hierarchy
        return _infer_hdgcn_shape(sd, graph)
    fc = _first(sd, "fc.weight")
    bn = _first(sd, "data_bn.weight", "data_bn.running_mean")
    first = _first(sd, "l1.gcn1.down.0.weight", "l1.gcn1.conv_d.0.weight")
    missing = [n for n, t in (("fc.weight", fc), ("data_bn.weight", bn), ("l1.gcn1.PA", graph), ("l1.gcn1.down.0.weight", first)) if t is None]
    if missing:
        raise ValueError(f"cannot infer the model shape: the state dict has no {', '.join(missing)}")
    assert fc is not None and bn is not None and graph is not None and first is not None
    joints, in_channels = int(graph.shape[-1]), int(first.shape[1])
    if joints not in LAYOUT_BY_JOINTS:
        raise ValueError(f"cannot infer the layout: the graph has {joints} joints (known: {sorted(LAYOUT_BY_JOINTS)})")
    width = int(bn.shape[0])
    if width % (joints * in_channels):
        raise ValueError(f"data_bn width {width} is not persons × {joints} joints × {in_channels} channels")
    return {
        "name": "ctrs-gcn" if any(".conv_d." in k for k in sd) else "ctrgcn",
        "num_classes": int(fc.shape[0]),
        "layout": LAYOUT_BY_JOINTS[joints],
        "num_persons": width // (joints * in_channels),
        "in_channels": in_channels,
        "base_channels": int(fc.shape[1]) // 4,
    }


def _infer_hdgcn_shape(sd: Mapping[str, torch.Tensor], graph: torch.Tensor) -> dict[str, object]:
    """HD-GCN's builder arguments: as :func:`infer_backbone_shape`, the CoM from the nearest hierarchy."""
    fc = _first(sd, "fc.weight")
    bn = _first(sd, "data_bn.weight", "data_bn.running_mean")
    squeeze = _first(sd, "l1.gcn1.conv_down.0.0.weight")
    missing = [n for n, t in (("fc.weight", fc), ("data_bn.weight", bn), ("l1.gcn1.conv_down.0.0.weight", squeeze)) if t is None]
    if missing:
        raise ValueError(f"cannot infer the HD-GCN shape: the state dict has no {', '.join(missing)}")
    assert fc is not None and bn is not None and squeeze is not None
    joints, in_channels = int(graph.shape[-1]), int(squeeze.shape[1])
    if joints not in LAYOUT_BY_JOINTS:
        raise ValueError(f"cannot infer the layout: the graph has {joints} joints (known: {sorted(LAYOUT_BY_JOINTS)})")
    layout = LAYOUT_BY_JOINTS[joints]
    width = int(bn.shape[0])
    if width % (joints * in_channels):
        raise ValueError(f"data_bn width {width} is not persons × {joints} joints × {in_channels} channels")
    return {
        "name": "hdgcn",
        "num_classes": int(fc.shape[0]),
        "layout": layout,
        "num_persons": width // (joints * in_channels),
        "in_channels": in_channels,
        "base_channels": int(fc.shape[1]) // 4,
        "com": guess_com(layout, graph.detach().float().cpu().numpy()),
    }
