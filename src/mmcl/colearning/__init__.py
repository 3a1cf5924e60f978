"""Multi-modality co-learning (MMCL, paper §3.3-3.4): FAM (RGB contrastive alignment), FRM (LLM text
refinement of the scores) and the auxiliary objective. Training-only: inference uses the backbone alone."""

from mmcl.colearning.fam import RGB_MODES, FeatureAlignment, RGBBranch
from mmcl.colearning.frm import TEXT_KINDS, FeatureRefinement, pool_text_features, refinement_loss
from mmcl.colearning.losses import VARIANTS, contrastive_loss, gather_with_grad
from mmcl.colearning.objective import (
    LAMBDA_CONTRASTIVE,
    LAMBDA_REFINE,
    CoLearningHeads,
    FAMConfig,
    FRMConfig,
    build_colearning_heads,
)

__all__ = [
    "LAMBDA_CONTRASTIVE",
    "LAMBDA_REFINE",
    "RGB_MODES",
    "TEXT_KINDS",
    "VARIANTS",
    "CoLearningHeads",
    "FAMConfig",
    "FRMConfig",
    "FeatureAlignment",
    "FeatureRefinement",
    "RGBBranch",
    "build_colearning_heads",
    "contrastive_loss",
    "gather_with_grad",
    "pool_text_features",
    "refinement_loss",
]
