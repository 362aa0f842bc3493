"""``python -m fastperc``: the command line (also under ``torchrun -m fastperc``)."""

import sys

from .cli import main

sys.exit(main())
