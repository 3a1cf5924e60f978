"""The built-in main job (``mmcl demo``): a synthetic world (:mod:`.world`: kinematics, composite
renderer, stand-in answerer) and the run that trains and compares skeleton-only and MMCL models (:mod:`.run`)."""

from mmcl.demo.run import (
    DEMO_BENCHMARK,
    DEMO_EPOCHS,
    DEMO_PER_CLASS,
    build_demo_modalities,
    demo_config,
    prepare_demo_data,
    run_demo,
)

__all__ = ["DEMO_BENCHMARK", "DEMO_EPOCHS", "DEMO_PER_CLASS", "build_demo_modalities", "demo_config", "prepare_demo_data", "run_demo"]
