"""Raw formats: one reader per file format and the sample-name rules of each dataset.

- :mod:`~mmcl.formats.skeleton_file`: ``read_skeleton_file(path)`` for any supported file;
- :mod:`~mmcl.formats.ntu` (names, one ``.skeleton`` file through the reference pipeline), with
  :mod:`~mmcl.formats.ntu_parse` (its compiled scanner :mod:`~mmcl.formats.ntu_scan`) and :mod:`~mmcl.formats.ntu_denoise`;
- :mod:`~mmcl.formats.nwucla` (names, ``all_sqe`` JSON), :mod:`~mmcl.formats.kinect_v1` (UTD-MHAD ``.mat``, generic Kinect-v1 files);
- :mod:`~mmcl.formats.errors`: :class:`DataError`, which they raise.

Nothing here imports from another mmcl package except :mod:`mmcl.skeleton` (joint orders).
"""
