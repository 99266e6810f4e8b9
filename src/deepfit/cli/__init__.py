"""The command line: `deepfit SUBCOMMAND …`. app.py parses and calls the Python API; tools.py
adds the tools' sub-commands (compare, advise, benchmark); entry.py is the installed script. Nothing here trains or reads data."""

from deepfit.cli.app import main
from deepfit.cli.entry import console

__all__ = ["console", "main"]
