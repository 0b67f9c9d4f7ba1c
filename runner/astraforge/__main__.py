"""`python -m astraforge`: the same as the `astraforge` command."""

from astraforge.cli import main

if __name__ == "__main__":
    main()
