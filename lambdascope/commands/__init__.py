"""One module per ``lambdascope`` sub-command (part of the composition root with cli.py)."""
