"""Results of trained models: evaluation passes, per-sample score files, metrics, ensembles,
reports and plots."""
