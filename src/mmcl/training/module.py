"""The LightningModule: a skeleton backbone, optional co-learning heads, the reference SGD recipe.

Training computes ``L = CE(S, y) + λ1·L_C + λ2·L_R`` (paper Eq. 10); with co-learning switched off
the heads are absent and this is plain backbone training. Evaluation and prediction only ever
call the backbone on the skeleton: no image, text feature or CNN is touched.
"""

from __future__ import annotations

import random
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mmcl.checkpoints.card import ModelCard
from mmcl.checkpoints.reader import CARD_KEY
from mmcl.config import OptimConfig
from mmcl.results.metrics import compute_metrics
from mmcl.results.scores import save_scores
from mmcl.training.schedule import lr_factor_fn

__all__ = ["ActionRecognitionModule", "training_loss", "NonFiniteLossError", "nonfinite_loss_message"]


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite; continuing would only write NaN weights."""


def nonfinite_loss_message(loss: torch.Tensor, terms: dict[str, torch.Tensor], batch: dict[str, Any], epoch: int, step: int) -> str:
    """Where it happened and which samples to look at: those with non-finite input first, else the batch."""
    names = [str(n) for n in batch.get("name", [])]
    bad_terms = [k for k, v in terms.items() if not bool(torch.isfinite(v))]
    x = batch["x"]
    bad_input = (~torch.isfinite(x.reshape(x.shape[0], -1))).any(dim=1).tolist() if x.numel() else []
    suspects = [n for n, bad in zip(names, bad_input) if bad]
    if suspects:
        where = f"non-finite input values in sample(s): {', '.join(suspects[:10])}"
    else:
        shown = ", ".join(names[:10]) + (f" … ({len(names)} in all)" if len(names) > 10 else "")
        where = f"the inputs are finite, so the training diverged (lower optim.base_lr?); batch samples: {shown or 'unknown'}"
    return (
        f"training stopped: loss is {float(loss):g} at epoch {epoch}, global step {step} "
        f"(loss term(s) {', '.join(bad_terms) or 'total'}); {where}. "
        "The last checkpoint saved before this point is intact."
    )


def training_loss(
    features: torch.Tensor, logits: torch.Tensor, batch: dict[str, Any], heads: nn.Module | None
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``L = CE(S, y) + λ1·L_C + λ2·L_R`` (paper Eq. 10) from a forward pass; returns the loss and its terms.

    The one definition of the training objective: the LightningModule's step and the co-learning
    step benchmark both call it.
    """
    loss_cls = F.cross_entropy(logits.float(), batch["label"])
    terms = {"cls": loss_cls}
    loss = loss_cls
    if heads is not None:
        aux = heads.losses(batch, features, logits)
        loss = loss + aux["total_aux"]
        terms.update(aux)
    return loss, terms


class ActionRecognitionModule(pl.LightningModule):
    """Trains and evaluates one skeleton backbone (optionally with co-learning heads)."""

    def __init__(
        self,
        backbone: nn.Module,
        *,
        num_classes: int,
        optim: OptimConfig,
        epochs: int,
        heads: nn.Module | None = None,
        config: dict[str, Any] | None = None,
        compile_backbone: bool = False,
        card: ModelCard | None = None,
        eval_scores_dir: str | Path | None = None,
    ) -> None:
        super().__init__()
        # every evaluation's per-sample scores go here (epoch_NNN.npz) when set: the "best eval epoch"
        # protocol of the reference code needs them, and they cost one small file per evaluation
        self.eval_scores_dir = Path(eval_scores_dir) if eval_scores_dir is not None else None
        self.backbone = backbone
        self.heads = heads
        self.num_classes = num_classes
        self.optim_cfg = optim
        self.epochs = epochs
        self.run_config = config or {}
        self.card = card  # written into every checkpoint, with the training state at save time
        # torch.compile wraps the feature extractor (the costly part); the head stays eager.
        self._features_fn = torch.compile(backbone.forward_features) if compile_backbone else backbone.forward_features
        self._eval_outputs: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
        # Training wall-clock summed over interrupted + resumed processes (up to the last checkpoint).
        self.train_seconds_before = 0.0
        self._fit_started = time.time()
        self._epoch_sums: dict[str, Any] = {}  # this epoch's weighted sums of the training metrics
        # The last evaluation before a resume: Lightning does not restore callback_metrics, so a checkpoint
        # written before the resumed run's first evaluation would otherwise carry none.
        self._resumed_eval_metrics: dict[str, float] = {}

    def on_fit_start(self) -> None:
        self._fit_started = time.time()

    def train_seconds(self) -> float:
        """Seconds of training so far, including those of the runs this one resumed."""
        return self.train_seconds_before + (time.time() - self._fit_started)

    # ----------------------------------------------------------------- forward
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x)

    def _features_and_logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self._features_fn(x)
        return features, self.backbone.classify(features)

    # ---------------------------------------------------------------- training
    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        x, y = batch["x"], batch["label"]
        features, logits = self._features_and_logits(x)
        loss, terms = training_loss(features, logits, batch, self.heads)
        if not bool(torch.isfinite(loss)):  # one host sync per step: cheaper than a run of NaN epochs
            raise NonFiniteLossError(nonfinite_loss_message(loss, terms, batch, self.current_epoch, self.global_step))
        bs = y.shape[0]
        logs = {f"train/loss_{key}": value.detach() for key, value in terms.items()}
        logs["train/loss"] = loss.detach()
        logs["train/top1"] = (logits.detach().argmax(1) == y).float().mean()
        self.log_dict({f"{k}_step": v for k, v in logs.items()}, on_step=True, on_epoch=False, batch_size=bs, sync_dist=False)
        self._add_to_epoch_means(logs, bs)
        self.log("loss", loss.detach(), prog_bar=True, on_step=True, on_epoch=False, batch_size=bs, logger=False)
        return loss

    def _add_to_epoch_means(self, logs: dict[str, torch.Tensor], batch_size: int) -> None:
        """Sums for the epoch means (``train/*_epoch``), kept here rather than in Lightning's result
        collection because they go into checkpoints: an epoch resumed from a mid-epoch checkpoint
        (:mod:`mmcl.training.interrupt`) then reports the mean over all of its batches."""
        if self._epoch_sums.get("epoch") != self.current_epoch:
            self._epoch_sums = {"epoch": self.current_epoch, "count": 0, "sums": {}}
        sums = self._epoch_sums["sums"]
        for key, value in logs.items():
            weighted = value.detach().float() * batch_size
            sums[key] = sums[key].to(weighted.device) + weighted if key in sums else weighted
        self._epoch_sums["count"] += batch_size

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        if batch_idx + 1 < self.trainer.num_training_batches or self._epoch_sums.get("epoch") != self.current_epoch:
            return
        count = max(1, int(self._epoch_sums["count"]))  # this rank's batches (as Lightning's unsynced means)
        means = {f"{k}_epoch": v / count for k, v in self._epoch_sums["sums"].items()}
        opt = self.trainer.optimizers[0] if self.trainer.optimizers else None
        if opt is not None:  # the epoch's rate (the schedule steps per epoch); logged here, as a resumed epoch has no start
            means["train/lr"] = torch.tensor(float(opt.param_groups[0]["lr"]))
        self.log_dict(means, on_step=False, on_epoch=True, batch_size=1, sync_dist=False)

    # -------------------------------------------------------------- evaluation
    def _eval_step(self, batch: dict[str, Any]) -> None:
        logits = self._features_and_logits(batch["x"])[1].float()
        self._eval_outputs.append((logits.detach(), batch["label"].detach(), batch["index"].detach()))

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._eval_step(batch)

    def _collect(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Gather (scores, labels, dataset indices) from all ranks, de-duplicated by index."""
        if self._eval_outputs:
            logits = torch.cat([o[0] for o in self._eval_outputs])
            labels = torch.cat([o[1] for o in self._eval_outputs])
            index = torch.cat([o[2] for o in self._eval_outputs])
        else:
            logits = torch.zeros(0, self.num_classes, device=self.device)
            labels = torch.zeros(0, dtype=torch.long, device=self.device)
            index = torch.zeros(0, dtype=torch.long, device=self.device)
        self._eval_outputs = []
        if self.trainer is not None and self.trainer.world_size > 1:
            logits = self.all_gather(logits).flatten(0, 1)
            labels = self.all_gather(labels).flatten(0, 1)
            index = self.all_gather(index).flatten(0, 1)
        index_np = index.cpu().numpy()
        _, first = np.unique(index_np, return_index=True)  # sampler padding repeats samples
        order = first[np.argsort(index_np[first])]
        return logits.cpu().numpy()[order], labels.cpu().numpy()[order], index_np[order]

    def _finish_eval(self, stage: str) -> None:
        scores, labels, index = self._collect()
        if len(labels) == 0:
            return
        metrics = compute_metrics(scores, labels, self.num_classes)
        if self.eval_scores_dir is not None and stage == "val" and self._keeps_scores():
            dataset = self.trainer.datamodule.eval_set
            names = [dataset.names[i] for i in index]
            save_scores(self.eval_scores_dir / f"epoch_{self.current_epoch + 1:03d}.npz", names, labels, scores)
        self.log_dict(
            {f"{stage}/top1": metrics.top1, f"{stage}/top5": metrics.top5, f"{stage}/mean_class_acc": metrics.mean_class_accuracy},
            prog_bar=(stage == "val"),
            sync_dist=False,
            batch_size=len(labels),
        )

    def _keeps_scores(self) -> bool:
        t = self.trainer
        return t is not None and t.is_global_zero and not t.sanity_checking and getattr(t, "datamodule", None) is not None

    def on_validation_epoch_end(self) -> None:
        self._finish_eval("val")

    # --------------------------------------------------------------- optimiser
    def configure_optimizers(self) -> Any:
        cfg = self.optim_cfg
        # REFERENCE §6.1: weight decay on ALL parameters (BN, biases, PA, alpha included).
        optimizer = torch.optim.SGD(
            [p for p in self.parameters() if p.requires_grad],
            lr=cfg.base_lr,
            momentum=cfg.momentum,
            nesterov=cfg.nesterov,
            weight_decay=cfg.weight_decay,
        )
        factor = lr_factor_fn(
            schedule=cfg.schedule,
            warmup_epochs=cfg.warmup_epochs,
            epochs=self.epochs,
            lr_steps=cfg.lr_steps,
            lr_decay=cfg.lr_decay,
            min_factor=cfg.min_lr / cfg.base_lr if cfg.base_lr else 0.0,
        )
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda=factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}

    # ------------------------------------------------------------- checkpoints
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Store RNG states as plain tensors/lists so the file loads with ``weights_only=True``."""
        np_state = np.random.get_state()
        py_state = random.getstate()
        checkpoint["mmcl_rng"] = {
            "torch": torch.get_rng_state(),
            "numpy": {
                "keys": torch.from_numpy(np.asarray(np_state[1], dtype=np.int64)),
                "pos": int(np_state[2]),
                "has_gauss": int(np_state[3]),
                "cached_gaussian": float(np_state[4]),
            },
            "python": {"version": int(py_state[0]), "state": list(py_state[1]), "gauss": py_state[2]},
        }
        checkpoint["mmcl_config"] = self.run_config
        if self.card is not None:
            checkpoint[CARD_KEY] = self._card_at_save(checkpoint).to_dict()
        checkpoint["mmcl_train_seconds"] = float(self.train_seconds())
        if self._epoch_sums:
            checkpoint["mmcl_epoch_sums"] = self._epoch_sums

    def _card_at_save(self, checkpoint: dict[str, Any]) -> ModelCard:
        """The card plus how far training got: epochs done and the last evaluation's metrics."""
        assert self.card is not None
        metrics = {}
        if self._trainer is not None:
            metrics = {k: round(float(v), 6) for k, v in self.trainer.callback_metrics.items() if k.startswith("val/")}
        metrics = metrics or dict(self._resumed_eval_metrics)
        epochs_done, inside = int(checkpoint.get("epoch", -1)) + 1, 0
        if self._trainer is not None and self.trainer.training:
            batches = self.trainer.fit_loop.epoch_loop.batch_progress.current.processed
            if 0 < batches < self.trainer.num_training_batches:  # saved inside an epoch (Ctrl-C, timed save)
                epochs_done, inside = epochs_done - 1, int(batches)
        training = {**self.card.training, "epochs_done": epochs_done, "eval_metrics": metrics}
        if inside:
            training["batches_into_next_epoch"] = inside
        return replace(self.card, training=training)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.train_seconds_before = float(checkpoint.get("mmcl_train_seconds", 0.0))
        self._epoch_sums = checkpoint.get("mmcl_epoch_sums") or {}
        self._resumed_eval_metrics = dict((checkpoint.get(CARD_KEY) or {}).get("training", {}).get("eval_metrics") or {})
        rng = checkpoint.get("mmcl_rng")
        if not rng:
            return
        torch.set_rng_state(rng["torch"])
        n = rng["numpy"]
        np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"]))
        p = rng["python"]
        random.setstate((p["version"], tuple(p["state"]), p["gauss"]))
