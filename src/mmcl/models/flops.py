"""Parameter and multiply-accumulate counts (for `mmcl info` and the paper's cost table).

MACs come from ``torch.utils.flop_counter.FlopCounterMode`` (FLOPs / 2): convolutions, matmuls
and einsums; element-wise ops (BN, ReLU, tanh, pooling) are not counted.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

__all__ = ["count_parameters", "count_macs", "layer_table", "cost_summary", "format_cost"]


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameter values."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _example(model: nn.Module, input_shape: Sequence[int]) -> torch.Tensor:
    p = next(model.parameters(), None)
    device = p.device if p is not None else torch.device("cpu")
    return torch.randn(*input_shape, device=device)


def count_macs(model: nn.Module, input_shape: Sequence[int], *, formulation: str = "executed") -> int:
    """MACs of one eval-mode forward pass on an input of ``input_shape`` (e.g. 1×3×64×25×2).

    ``formulation="executed"`` counts what mmcl runs; ``"reference"`` counts the same function
    computed the way the official code does (CTR-GC conv1/conv2 on every frame before the
    time-mean), which is the figure papers report (≈1.94 GMAC for NTU CTR-GCN).
    """
    if formulation not in ("executed", "reference"):
        raise ValueError(f"formulation must be 'executed' or 'reference', got {formulation!r}")
    switches = [m for m in model.modules() if hasattr(m, "reference_order")]
    was_training = model.training
    model.eval()
    try:
        for m in switches:
            m.reference_order = formulation == "reference"
        counter = FlopCounterMode(display=False)
        with counter:
            model(_example(model, input_shape))
    finally:
        for m in switches:
            m.reference_order = False
        model.train(was_training)
    return counter.get_total_flops() // 2


def layer_table(model: nn.Module, input_shape: Sequence[int]) -> list[dict]:
    """One row per top-level child (``blocks`` expanded): name, output shape, params, MACs."""
    rows: list[dict] = []
    targets: list[tuple[str, nn.Module]] = []
    for name, child in model.named_children():
        if isinstance(child, nn.ModuleList):
            targets.extend((f"{name}.{i}", m) for i, m in enumerate(child))
        else:
            targets.append((name, child))
    shapes: dict[str, list[int]] = {}
    hooks = []
    for name, mod in targets:
        def hook(_m, _inp, out, name=name):  # noqa: ANN001 - torch hook signature
            shapes[name] = list(out.shape) if isinstance(out, torch.Tensor) else []
        hooks.append(mod.register_forward_hook(hook))
    was_training = model.training
    model.eval()
    counter = FlopCounterMode(display=False)
    try:
        with counter:
            model(_example(model, input_shape))
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    per_module = counter.get_flop_counts()
    root = type(model).__name__
    for name, mod in targets:
        flops = sum(per_module.get(f"{root}.{name}", {}).values())
        rows.append(
            {
                "name": name,
                "output_shape": shapes.get(name, []),
                "params": count_parameters(mod),
                "macs": int(flops // 2),
            }
        )
    return rows


def cost_summary(model: nn.Module, input_shape: Sequence[int]) -> dict[str, float | int]:
    """Parameters and GMACs of one sample, in both formulations, labelled the same everywhere
    (``mmcl info``, ``mmcl export``): ``GMACs`` as the paper counts the model, ``GMACs_executed``
    as mmcl's fused implementation runs it."""
    return {
        "parameters": count_parameters(model),
        "GMACs": round(count_macs(model, input_shape, formulation="reference") / 1e9, 4),
        "GMACs_executed": round(count_macs(model, input_shape) / 1e9, 4),
    }


def format_cost(cost: dict[str, float | int]) -> str:
    """One line: "parameters 1,462,092   GMACs 1.9xx (paper formulation; 1.7xx executed)"."""
    return f"parameters {cost['parameters']:,}   GMACs {cost['GMACs']:.4f} (paper formulation; {cost['GMACs_executed']:.4f} executed)"
