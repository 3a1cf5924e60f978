"""Training: the LightningModule (model + loss + optimiser), the DataModule, EMA, the schedule,
checkpoint I/O, run directories and :func:`~mmcl.training.fit.train`."""
