"""`python -m deepfit.cli …`, as the `deepfit` command."""

import sys

from deepfit.cli.app import main

sys.exit(main())
