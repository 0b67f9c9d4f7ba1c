"""Run commands and move files in AstraForge's hardened sandbox."""

from pathlib import Path

from astraforge.toolkit import Limits, Sandbox

with Sandbox.open(Path.cwd(), backend="bwrap", limits=Limits(memory_mb=512)) as box:
    box.write_file("hello.py", "print('hello from the sandbox')\n")
    print(box.run("python3 hello.py").output, end="")
    print(box.list_dir("."))
    print(box.changes())
