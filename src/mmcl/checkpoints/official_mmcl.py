"""Import an official MMCL checkpoint (liujf69/MMCL-Action) into our backbone + co-learning heads.

Official extras (REFERENCE §7.9, ``mmcl_extra_state_dict.tsv``) and where they go:

==========================  =====================================================================
official key                ours
==========================  =====================================================================
``PosMatrix`` [K]           ``heads.frm.class_weights[0]`` (FRM M_1 diagonal)
``NegMatrix`` [K]           ``heads.frm.class_weights[1]`` (FRM M_2 diagonal)
``mlp.{0,2}.*``             ``heads.frm.mlp.{0,2}.*`` (phi, input width 3)
``FAM_Aligh.mlp.{0,2}.*``   ``heads.rgb.align.mlp.{0,2}.*`` (1000 -> 256 -> 256)
``inception_v3.*``          ``heads.rgb.encoder`` (trainable RGB mode; the encoder's own key prefix is
                            detected, so a wrapper module works)
everything else             backbone, via :func:`mmcl.checkpoints.official.load_reference_state_dict`
==========================  =====================================================================

Rules: nothing is loaded unless everything that is going to be loaded matches (shape mismatches and
partially present groups raise :class:`CheckpointMismatchError` naming every key with both shapes, e.g. a
120-class checkpoint into a 60-class model). Groups whose head is switched off (or ``heads=None`` for a
skeleton-only model to export) are ignored and listed in the :class:`ImportReport`; a head whose group is
absent from the checkpoint (e.g. a plain CTR-GCN checkpoint) keeps its initialisation and is listed too.
In frozen RGB mode the Inception weights are not loaded into the model (there is no CNN inside); use
:func:`encoder_state_dict` to hand them to the feature extractor.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Mapping

import torch
from torch import nn

from mmcl.checkpoints.official import load_reference_state_dict, split_mmcl_checkpoint
from mmcl.colearning.objective import CoLearningHeads

__all__ = [
    "CheckpointMismatchError",
    "ImportReport",
    "encoder_state_dict",
    "load_mmcl_checkpoint",
    "mmcl_extra_state_dict",
]

# Official key names (REFERENCE §7.9).
POS_KEY, NEG_KEY = "PosMatrix", "NegMatrix"
FRM_MLP_PREFIX = "mlp."
FAM_MLP_PREFIX = "FAM_Aligh.mlp."
ENCODER_PREFIX = "inception_v3."
INCEPTION_PROBE = "Conv2d_1a_3x3.conv.weight"  # first torchvision Inception3 key (locates a wrapper's prefix)
AUX_PREFIX = "AuxLogits."  # torchvision Inception3 auxiliary head (unused output, REFERENCE §7.2)


class CheckpointMismatchError(ValueError):
    """The checkpoint does not fit the model; the message lists every offending key and both shapes."""


@dataclass
class ImportReport:
    """What :func:`load_mmcl_checkpoint` did, group by group (for logging)."""

    loaded: list[str] = field(default_factory=list)
    ignored: dict[str, int] = field(default_factory=dict)  # group -> number of checkpoint keys skipped
    kept_init: list[str] = field(default_factory=list)  # heads present but absent from the checkpoint

    def summary(self) -> str:
        ign = ", ".join(f"{g} ({n} keys)" for g, n in self.ignored.items()) or "none"
        return (
            f"loaded: {', '.join(self.loaded) or 'none'}; ignored: {ign}; "
            f"kept initialisation: {', '.join(self.kept_init) or 'none'}"
        )


def _shape(t: torch.Tensor) -> list[int]:
    return list(t.shape)


def _unwrap(checkpoint: Mapping) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    return split_mmcl_checkpoint(checkpoint)


def _group(extras: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return OrderedDict((k[len(prefix):], v) for k, v in extras.items() if k.startswith(prefix))


def _match_into(
    group: str, source: Mapping[str, torch.Tensor], target: Mapping[str, torch.Tensor], problems: list[str]
) -> None:
    """Compare a checkpoint group with the target state_dict (same relative names); collect problems."""
    missing = [k for k in target if k not in source]
    unexpected = [k for k in source if k not in target]
    for k in missing:
        problems.append(f"{group}: key {k!r} missing from the checkpoint (model {_shape(target[k])})")
    for k in unexpected:
        problems.append(f"{group}: unexpected checkpoint key {k!r} {_shape(source[k])}")
    for k in target:
        if k in source and tuple(source[k].shape) != tuple(target[k].shape):
            problems.append(f"{group}: {k!r} checkpoint {_shape(source[k])} vs model {_shape(target[k])}")


def _encoder_prefix(encoder_sd: Mapping[str, torch.Tensor], ref_keys: list[str]) -> str:
    """Key prefix under which the encoder holds the torchvision Inception3 parameters (wrappers allowed)."""
    best, best_hits = "", -1
    probe = next((k for k in ref_keys if not k.startswith(AUX_PREFIX)), ref_keys[0] if ref_keys else "")
    candidates = {k[: len(k) - len(probe)] for k in encoder_sd if probe and k.endswith(probe)}
    candidates = {c for c in candidates if c == "" or c.endswith(".")} or {""}
    for cand in candidates:
        hits = sum(cand + k in encoder_sd for k in ref_keys)
        if hits > best_hits:
            best, best_hits = cand, hits
    return best


def encoder_state_dict(checkpoint: Mapping) -> dict[str, torch.Tensor]:
    """The fine-tuned Inception-v3 of an official checkpoint as a torchvision ``Inception3`` state_dict."""
    _, extras = _unwrap(checkpoint)
    return _group(extras, ENCODER_PREFIX)


def mmcl_extra_state_dict(heads: CoLearningHeads) -> dict[str, torch.Tensor]:
    """Our heads under official MMCL key names (inverse of the import; for round trips and export)."""
    out: dict[str, torch.Tensor] = OrderedDict()
    if heads.frm is not None:
        if heads.frm.num_channels != 2:
            raise ValueError("official MMCL FRM has exactly 2 channels (PosMatrix, NegMatrix)")
        out[POS_KEY] = heads.frm.class_weights.detach()[0].clone()
        out[NEG_KEY] = heads.frm.class_weights.detach()[1].clone()
        for k, v in heads.frm.mlp.state_dict().items():
            out[FRM_MLP_PREFIX + k] = v
    if heads.rgb is not None:
        if heads.rgb.encoder is not None:
            enc_sd = heads.rgb.encoder.state_dict()
            prefix = next((k[: -len(INCEPTION_PROBE)] for k in enc_sd if k.endswith(INCEPTION_PROBE)), "")
            for k, v in enc_sd.items():
                if k.startswith(prefix):
                    out[ENCODER_PREFIX + k[len(prefix):]] = v
        for k, v in heads.rgb.align.mlp.state_dict().items():
            out[FAM_MLP_PREFIX + k] = v
    return out


def load_mmcl_checkpoint(
    backbone: nn.Module,
    heads: CoLearningHeads | None,
    checkpoint: Mapping,
    *,
    load_encoder: bool = True,
) -> ImportReport:
    """Load an official MMCL (or plain CTR-GCN) checkpoint into ``backbone`` and, if given, ``heads``.

    ``checkpoint``: a state_dict with official names (``module.`` prefixes and ``{"state_dict": ...}``
    wrappers are accepted). ``heads=None`` loads the skeleton backbone only (skeleton-only fine-tuning or
    export). ``load_encoder=False`` keeps the trainable encoder's own (e.g. ImageNet) weights.
    Raises :class:`CheckpointMismatchError` listing all problems; then nothing has been loaded.
    """
    backbone_sd, extras = _unwrap(checkpoint)
    report = ImportReport()
    problems: list[str] = []
    assignments: list[tuple[nn.Module | nn.Parameter, dict[str, torch.Tensor] | torch.Tensor, str]] = []

    frm = heads.frm if heads is not None else None
    rgb = heads.rgb if heads is not None else None

    # --- FRM: PosMatrix / NegMatrix / mlp.*
    frm_keys = [k for k in extras if k in (POS_KEY, NEG_KEY) or k.startswith(FRM_MLP_PREFIX)]
    if frm is None:
        if frm_keys:
            report.ignored["FRM"] = len(frm_keys)
    elif not frm_keys:
        report.kept_init.append("FRM")
    else:
        if frm.num_channels != 2:
            problems.append(f"FRM: the checkpoint has 2 channels (PosMatrix, NegMatrix), the model {frm.num_channels}")
        for key in (POS_KEY, NEG_KEY):
            if key not in extras:
                problems.append(f"FRM: key {key!r} missing from the checkpoint (model [{frm.num_classes}])")
            elif tuple(extras[key].shape) != (frm.num_classes,):
                problems.append(f"FRM: {key!r} checkpoint {_shape(extras[key])} vs model [{frm.num_classes}]")
        mlp_src = _group(extras, FRM_MLP_PREFIX)
        _match_into("FRM phi (mlp.*)", mlp_src, frm.mlp.state_dict(), problems)
        if not problems and POS_KEY in extras and NEG_KEY in extras:
            assignments.append((frm.class_weights, torch.stack([extras[POS_KEY], extras[NEG_KEY]]), "FRM"))
            assignments.append((frm.mlp, mlp_src, "FRM"))

    # --- FAM alignment MLP
    fam_src = _group(extras, FAM_MLP_PREFIX)
    if rgb is None:
        if fam_src:
            report.ignored["FAM alignment MLP"] = len(fam_src)
    elif not fam_src:
        report.kept_init.append("FAM alignment MLP")
    else:
        n_before = len(problems)
        _match_into("FAM alignment (FAM_Aligh.mlp.*)", fam_src, rgb.align.mlp.state_dict(), problems)
        if len(problems) == n_before:
            assignments.append((rgb.align.mlp, fam_src, "FAM alignment MLP"))

    # --- Inception encoder
    enc_src = _group(extras, ENCODER_PREFIX)
    encoder = rgb.encoder if rgb is not None else None
    if encoder is None or not load_encoder:
        if enc_src:
            report.ignored["Inception-v3 encoder"] = len(enc_src)
    elif not enc_src:
        report.kept_init.append("RGB encoder")
    else:
        enc_sd = encoder.state_dict()
        prefix = _encoder_prefix(enc_sd, list(enc_src))
        target = OrderedDict((k[len(prefix):], v) for k, v in enc_sd.items() if k.startswith(prefix))
        if not any(k.startswith(AUX_PREFIX) for k in target):
            dropped = [k for k in enc_src if k.startswith(AUX_PREFIX)]
            enc_src = OrderedDict((k, v) for k, v in enc_src.items() if not k.startswith(AUX_PREFIX))
            if dropped:
                report.ignored["Inception AuxLogits (encoder built without it)"] = len(dropped)
        n_before = len(problems)
        _match_into("RGB encoder (inception_v3.*)", enc_src, target, problems)
        if len(problems) == n_before:
            full = OrderedDict(enc_sd)
            full.update((prefix + k, v) for k, v in enc_src.items())
            assignments.append((encoder, full, "Inception-v3 encoder"))

    if problems:
        raise CheckpointMismatchError(
            f"MMCL checkpoint does not match the co-learning heads ({len(problems)} problems):\n  "
            + "\n  ".join(problems)
        )
    try:  # strict, all-or-nothing (raises before loading anything)
        load_reference_state_dict(backbone, backbone_sd)
    except ValueError as exc:
        raise CheckpointMismatchError(str(exc)) from exc
    report.loaded.append("backbone")
    with torch.no_grad():
        for target_obj, value, group in assignments:
            if isinstance(target_obj, nn.Parameter):
                target_obj.copy_(value)
            else:
                target_obj.load_state_dict(value, strict=True)  # type: ignore[arg-type]
            if group not in report.loaded:
                report.loaded.append(group)
    return report
