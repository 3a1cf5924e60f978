"""Turn the ``colearning`` section of a config into heads + a training-set wrapper.

Kept apart from the heads themselves so the modules stay config-free: this is the one place
where config values (paths, switches, λ) become :class:`CoLearningHeads` and a
:class:`~mmcl.datasets.multimodal.MultiModalDataset` joined by sample name.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

from torch import nn

from mmcl.colearning.objective import FAMConfig, FRMConfig, build_colearning_heads
from mmcl.config import Config
from mmcl.datasets.multimodal import MultiModalDataset, multimodal_collate
from mmcl.modalities.store import FeatureStore

__all__ = ["build_colearning"]

log = logging.getLogger("mmcl.colearning")


def build_colearning(cfg: Config, backbone: nn.Module) -> tuple[nn.Module | None, Callable[[Any], Any] | None, Callable | None]:
    """Return ``(heads, wrap_train, collate_fn)`` for the configured FAM/FRM switches.

    FAM needs RGB: composites (``rgb_dir``, CNN fine-tuned in the step) or cached CNN features
    (``rgb_store``, frozen). FRM needs a text feature store. A switch without its input is a
    configuration error, reported before anything is trained.
    """

    c = cfg.colearning
    fam = frm = None
    rgb_store = text_store = None
    if c.fam:
        if c.rgb_mode == "frozen":
            if not c.rgb_store:
                raise ValueError("FAM in frozen mode needs colearning.rgb_store (a store made by `mmcl extract cnn`)")
            rgb_store = FeatureStore.open(c.rgb_store)
            fam = FAMConfig(mode="frozen", encoder=c.rgb_encoder, rgb_dim=int(rgb_store.dim))
        else:
            if not c.rgb_dir:
                raise ValueError("FAM in trainable mode needs colearning.rgb_dir (composites made by `mmcl extract rgb`)")
            fam = FAMConfig(mode="trainable", encoder=c.rgb_encoder, weights=c.rgb_weights, allow_random=c.rgb_random_init)
    if c.frm:
        if not c.text_store:
            raise ValueError("FRM needs colearning.text_store (a store made by `mmcl extract text`)")
        text_store = FeatureStore.open(c.text_store)
        frm = FRMConfig.for_store(text_store, num_channels=c.frm_channels)
    heads = build_colearning_heads(
        backbone.feature_dim,
        cfg.data.num_classes,
        fam=fam,
        frm=frm,
        lambda_contrastive=c.lambda_contrastive,
        lambda_refine=c.lambda_refine,
        tau=c.tau,
        variant=c.variant,
        gather_negatives=c.gather_negatives,
    )

    def wrap_train(dataset: Any) -> Any:
        wrapped = MultiModalDataset(
            dataset,
            rgb_dir=c.rgb_dir if (c.fam and c.rgb_mode == "trainable") else None,
            rgb_store=rgb_store,
            text_store=text_store,
            image_size=tuple(c.image_size),
            allow_missing=c.allow_missing,
        )
        missing = getattr(wrapped, "missing_counts", None)
        if missing and any(missing.values()):
            log.warning("co-learning: samples trained with skeleton losses only (missing modality): %s", missing)
        return wrapped

    return heads, wrap_train, multimodal_collate
