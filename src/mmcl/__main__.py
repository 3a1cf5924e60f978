"""``python -m mmcl`` is the ``mmcl`` command (used by ``torchrun -m mmcl``)."""

import sys

from mmcl.cli import main

sys.exit(main())
