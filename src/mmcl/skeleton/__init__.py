"""Skeleton data: joint layouts, input streams (joint/bone/motion) and per-sample transforms."""

from mmcl.skeleton.layouts import KINECT20, LAYOUTS, NTU25, SkeletonLayout, get_layout
from mmcl.skeleton.streams import STREAMS, bone, joint, motion, to_stream
from mmcl.skeleton.transforms import (
    NTUTransform,
    UCLATransform,
    crop_resize,
    random_rotation,
    ucla_transform,
    valid_frame_count,
)

__all__ = [
    "KINECT20",
    "LAYOUTS",
    "NTU25",
    "SkeletonLayout",
    "get_layout",
    "STREAMS",
    "joint",
    "bone",
    "motion",
    "to_stream",
    "NTUTransform",
    "UCLATransform",
    "crop_resize",
    "random_rotation",
    "ucla_transform",
    "valid_frame_count",
]
