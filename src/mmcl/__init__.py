"""mmcl: skeleton-based action recognition with multi-modality co-learning."""

__version__ = "0.1.0"
