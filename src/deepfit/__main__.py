"""`python -m deepfit …` (and `torchrun -m deepfit …`), as the `deepfit` command."""

import sys

from deepfit.cli.app import main

sys.exit(main())
