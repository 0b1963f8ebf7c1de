"""`python -m easytune_engine ...` (e.g. under torchrun) is the `easytune-engine` command."""

import sys

from .cli import main

sys.exit(main())
