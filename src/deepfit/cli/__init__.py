"""The command line: `deepfit SUBCOMMAND …`. app.py parses and calls the Python API; tools.py
adds the tools' sub-commands (compare, advise, benchmark). Nothing here trains or reads data."""

from deepfit.cli.app import console, main

__all__ = ["console", "main"]
