"""The LightningDataModule: skeleton sources → datasets → loaders, with our own epoch sampler.

Lightning's automatic DistributedSampler is switched off (``use_distributed_sampler=False``): the
:class:`~mmcl.datasets.base.EpochSampler` shards by rank itself and hands ``(epoch, index)`` keys to
the dataset, so augmentation depends only on (seed, epoch, index) — not on worker count, rank
count or where a run was resumed.
"""

from __future__ import annotations

import signal
import sys
from functools import partial
from typing import Any, Callable

import lightning.pytorch as pl
import numpy as np
from torch.utils.data import DataLoader

from mmcl.config import Config
from mmcl.datasets.base import EpochSampler, SkeletonDataset
from mmcl.datasets.pipeline import InputSpec, eval_dataset
from mmcl.datasets.sources import open_source
from mmcl.datasets.splits import SubsetSource, carve_validation
from mmcl.formats.pose2d import CHANNELS_2D
from mmcl.formats.sample_store import CHANNELS_XYZ
from mmcl.skeleton.layouts import get_layout, layout_key
from mmcl.skeleton.transforms import NTUTransform, UCLATransform

__all__ = ["SkeletonDataModule", "ResumableLoader", "build_transform"]


def leave_signals_to_the_main_process(worker_id: int) -> None:
    """DataLoader workers ignore Ctrl-C and SIGTERM: a terminal's Ctrl-C reaches the whole process
    group, and a worker that quit on it would fail the batch the main process still needs to finish
    its step and save (:mod:`mmcl.training.interrupt`). Workers end with their loader, or with the
    main process (torch's watchdog)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


class ResumableLoader(DataLoader):
    """A training DataLoader whose place in the epoch goes into Lightning checkpoints.

    Lightning stores ``state_dict()`` of a loader that has one and hands it back on ``--resume``
    before the loader's iterator is created. The state is ``(epoch, batches trained)`` read from
    the fit loop (``progress``), not counted here: Lightning fetches one batch ahead, so a count of
    batches handed out would be one too many. A checkpoint written inside an epoch then resumes
    with the batches that epoch had left, in the same order with the same augmentation.
    """

    def __init__(self, *args: Any, progress: Callable[[], tuple[int, int]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.progress = progress

    def state_dict(self) -> dict[str, int]:
        epoch, batches = self.progress()
        return {"epoch": int(epoch), "batches": int(batches), "batch_size": int(self.batch_size or 1)}

    def load_state_dict(self, state: dict[str, int]) -> None:
        if state.get("batch_size", self.batch_size) != self.batch_size:
            raise ValueError(f"the checkpoint was written with data.batch_size={state['batch_size']}, "
                             f"this run has {self.batch_size}: resume with the run's own batch size")
        assert isinstance(self.sampler, EpochSampler)
        self.sampler.resume_at(int(state["epoch"]), int(state["batches"]) * int(self.batch_size or 1))


def build_transform(cfg: Config, train: bool) -> Callable[..., np.ndarray]:
    """The training transform of ``cfg`` (random crop/rotation, or NW-UCLA's random view); the test
    transform is the model card's (:meth:`InputSpec.eval_transform`)."""
    d = cfg.data
    spec = InputSpec.from_config(cfg)
    planar = spec.channels != CHANNELS_XYZ
    if planar and (d.centre or d.transform == "ucla"):
        raise ValueError(
            f"channels {', '.join(spec.channels)} are not x, y, z: use data.transform=ntu and data.centre=false "
            "(centring and the NW-UCLA normalisation would mix the other channels into the coordinates; 2-D "
            "keypoints are normalised when prepared)"
        )
    if planar and spec.channels[:2] != ("x", "y"):
        raise ValueError(f"channels {', '.join(spec.channels)}: the first two must be x, y")
    if not train:
        return spec.eval_transform()
    layout = get_layout(d.layout)
    if d.transform == "ucla":
        return UCLATransform(train=True, window=d.window, crop_min=d.crop_min, flip=d.flip, mirror_pairs=layout.mirror_pairs)
    return NTUTransform(train=True, window=d.window, p_interval=list(d.p_interval_train), rotation_theta=d.rotation, centre=d.centre,
                        centre_joint=layout.center_joint, planar=planar, flip=d.flip, mirror_pairs=layout.mirror_pairs)


def check_source(cfg: Config, source: Any) -> None:
    """Refuse data the configured model would misread: another layout, person count, channels or 2-D
    normalisation than the prepared data has (it would train, and predict would then feed other input)."""
    d, spec = cfg.data, InputSpec.from_config(cfg)
    found = {"data.layout": layout_key(source.layout), "data.num_persons": int(source.num_persons)}
    wanted: dict[str, Any] = {"data.layout": spec.layout, "data.num_persons": spec.num_persons}
    if getattr(source, "channels", None) is not None:
        found["data.channels"], wanted["data.channels"] = list(source.channels), list(spec.channels)
    pre = (getattr(source, "meta", None) or {}).get("preprocessing") or {}
    if isinstance(pre, dict) and "normalise" in pre and list(source.channels or ()) == list(CHANNELS_2D):
        found["data.normalise"], wanted["data.normalise"] = pre["normalise"], d.normalise
        found["data.image_size"], wanted["data.image_size"] = [float(v) for v in pre.get("image_size") or []], list(spec.image_size)
    bad = [k for k in found if found[k] != wanted[k]]
    if bad:
        show = lambda v: get_layout(v).name if isinstance(v, str) and v.startswith("{") else v  # noqa: E731
        raise ValueError(
            f"{d.path} holds other input than the configuration says: "
            + "; ".join(f"{k} is {show(wanted[k])!r}, the data has {show(found[k])!r}" for k in bad)
            + " — set " + " ".join(f"{k}={_override(found[k])}" for k in bad)
        )


def _override(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value) + "]"
    if isinstance(value, str) and value.startswith("{"):
        return f"<the .yaml of layout {get_layout(value).name}>"
    return str(value)


class SkeletonDataModule(pl.LightningDataModule):
    """Train / validation / test loaders of one skeleton benchmark and stream.

    ``wrap`` lets co-learning join extra modalities onto the training dataset by sample name
    (evaluation datasets always stay skeleton-only).
    """

    def __init__(
        self,
        cfg: Config,
        *,
        wrap_train: Callable[[SkeletonDataset], Any] | None = None,
        collate_fn: Callable[[list], Any] | None = None,
    ) -> None:
        super().__init__()
        self.cfg = cfg
        self.wrap_train = wrap_train
        self.collate_fn = collate_fn
        self.train_set: Any = None
        self.val_set: SkeletonDataset | None = None
        self.test_set: SkeletonDataset | None = None
        self._setup_done = False

    # ------------------------------------------------------------------ setup
    def setup(self, stage: str | None = None) -> None:
        if self._setup_done:
            return
        d = self.cfg.data
        if not d.path:
            raise FileNotFoundError("no dataset path given: set data.path (or pass --data PATH)")
        seed = self.cfg.trainer.seed
        bars = self.cfg.trainer.progress and sys.stderr.isatty()  # NW-UCLA loading bars: a terminal only
        train_source = open_source(d.path, d.train_split, progress=bars)
        test_source = open_source(d.path, d.test_split, progress=bars)
        check_source(self.cfg, train_source)
        val_source = None
        if d.val_fraction > 0:
            tr_idx, va_idx = carve_validation(train_source.names, train_source.labels, d.val_fraction, d.val_seed)
            val_source = SubsetSource(train_source, va_idx)
            train_source = SubsetSource(train_source, tr_idx)
        train_set = SkeletonDataset(train_source, build_transform(self.cfg, True), stream=d.stream, layout=d.layout, seed=seed, repeat=d.repeat)
        self.train_set = self.wrap_train(train_set) if self.wrap_train else train_set
        spec = InputSpec.from_config(self.cfg)  # the evaluation input is the model card's
        self.test_set = eval_dataset(test_source, spec, seed)
        self.val_set = eval_dataset(val_source, spec, seed) if val_source is not None else None
        self._setup_done = True

    def class_names(self) -> list[str] | None:
        """Class names stored with the data (a prepared folder's ``meta.json``) when they fit the classes."""
        assert self.test_set is not None, "call setup() first"
        meta = getattr(self.test_set.source, "meta", None) or {}
        names = meta.get("class_names")
        return [str(n) for n in names] if isinstance(names, list) and len(names) == self.cfg.data.num_classes else None

    @property
    def eval_set(self) -> SkeletonDataset:
        """The split used for per-epoch evaluation and model selection."""
        assert self.test_set is not None
        return self.val_set if self.val_set is not None else self.test_set

    # ---------------------------------------------------------------- loaders
    def _rank_world(self) -> tuple[int, int]:
        trainer = self.trainer
        if trainer is None:
            return 0, 1
        return trainer.global_rank, trainer.world_size

    def _current_epoch(self) -> int:
        """The epoch the fit loop is about to run: the number it passes to ``set_epoch`` (epochs
        processed), already restored from the checkpoint when a resumed run creates its loaders."""
        return self.trainer.fit_loop.epoch_progress.current.processed if self.trainer is not None else 0

    def _trained_batches(self) -> tuple[int, int]:
        """(epoch, batches of it trained so far): what a checkpoint written now has seen of the epoch."""
        loop = self.trainer.fit_loop
        return loop.epoch_progress.current.processed, loop.epoch_loop.batch_progress.current.processed

    def _loader(self, dataset: Any, *, train: bool, collate_fn: Callable | None = None) -> DataLoader:
        d = self.cfg.data
        rank, world = self._rank_world()
        sampler = EpochSampler(
            len(dataset), shuffle=train, seed=self.cfg.trainer.seed, rank=rank, world_size=world, drop_last=train,
            epoch_source=self._current_epoch if train else None,
        )
        workers = d.num_workers
        loader_class = partial(ResumableLoader, progress=self._trained_batches) if train and self.trainer is not None else DataLoader
        return loader_class(
            dataset,
            batch_size=d.batch_size if train else d.test_batch_size,
            sampler=sampler,
            drop_last=train,  # REFERENCE §6.3
            num_workers=workers,
            persistent_workers=workers > 0,
            pin_memory=False,
            collate_fn=collate_fn,
            worker_init_fn=leave_signals_to_the_main_process if workers > 0 else None,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, train=True, collate_fn=self.collate_fn)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.eval_set, train=False)

    def test_dataloader(self) -> DataLoader:
        assert self.test_set is not None
        return self._loader(self.test_set, train=False)
