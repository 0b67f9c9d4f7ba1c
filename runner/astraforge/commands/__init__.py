"""One small module per command (group) of the `astraforge` command line; `cli.py` only
declares the commands and calls these, so every command can be called in-process."""
