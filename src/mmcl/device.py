"""Which torch device a command runs on (one parser for every ``--device`` and ``trainer.accelerator``)
and which precision it can run at."""

from __future__ import annotations

import torch

__all__ = ["resolve_device", "cpu_has_native_bf16", "usable_precision"]

# Measured here (benchmarks/train_throughput.py, NW-UCLA CTR-GCN training step, 2-core AVX2 EPYC without
# AVX-512): bf16 autocast ran at 0.17x the float32 speed; on AVX-512 BF16 CPUs it ran at ~1.7x.
EMULATED_BF16_NOTE = "this CPU has no native bf16 (AVX-512 BF16 / AMX): emulated bf16 trains ~6x slower than float32"


def resolve_device(spec: str | torch.device | None = "auto") -> torch.device:
    """``auto``/``None``: CUDA when available, else the CPU; ``cpu``, ``cuda``, ``cuda:N`` as given.

    Asking for CUDA on a machine without it is a one-line error rather than a crash deep in a run.
    """
    if spec is None or str(spec) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    text = str(spec)
    if text != "cpu" and not text.startswith("cuda"):
        raise ValueError(f"device must be cpu, cuda, cuda:N or auto, got {text!r}")
    if text.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {text}: CUDA is not available on this machine (use cpu)")
    return torch.device(text)


def cpu_has_native_bf16() -> bool:
    """Whether oneDNN has bf16 kernels on this CPU (AVX-512 BF16 or AMX); emulation is far slower."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a build without oneDNN: nothing runs bf16 natively
        return False


def usable_precision(precision: str, device: torch.device) -> tuple[str, str | None]:
    """``precision`` as a run on ``device`` should use it, and why it was changed (None: unchanged).

    ``bf16-mixed`` on a CPU without native bf16 becomes ``32-true``: the same model, several times
    faster there, and the recipe stays portable between machines.
    """
    if str(precision).startswith("bf16") and device.type == "cpu" and not cpu_has_native_bf16():
        return "32-true", f"trainer.precision {precision} -> 32-true: {EMULATED_BF16_NOTE}"
    return str(precision), None
