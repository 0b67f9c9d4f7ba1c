"""The Python REPL that runs inside the sandbox, one process per call.

No process outlives a command in AstraForge's sandbox (the shell kills every other process
when a command ends: nothing an agent starts can linger), so the REPL keeps its state in the
sandbox's /tmp instead of in a process: values are pickled after each call and loaded before
the next, and the statements that define names pickle cannot carry (imports, ``def``,
``class``) are replayed first. A value that cannot be pickled is reported and not kept.
"""

from __future__ import annotations

STATE_DIR = "/tmp/.astraforge-repl"  # noqa: S108 - the sandbox's own private tmpfs

# Runs with the sandbox's python3: argv[1] is the cell's file.
DRIVER = r"""
import ast, contextlib, pickle, sys, traceback, types

STATE = sys.argv[2] + "/state.pkl"
try:
    with open(STATE, "rb") as handle:
        saved = pickle.load(handle)
except (OSError, EOFError, pickle.UnpicklingError):
    saved = {"definitions": [], "values": {}}
namespace = {"__name__": "__main__", "__builtins__": __builtins__}
for source in saved["definitions"]:
    with contextlib.suppress(Exception):
        exec(compile(source, "<repl>", "exec"), namespace)
for name, blob in saved["values"].items():
    with contextlib.suppress(Exception):
        namespace[name] = pickle.loads(blob)

cell = open(sys.argv[1], encoding="utf-8").read()
try:
    tree = ast.parse(cell, "<cell>")
    last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    exec(compile(tree, "<cell>", "exec"), namespace)
    if last is not None:
        value = eval(compile(ast.Expression(last.value), "<cell>", "eval"), namespace)
        if value is not None:
            print(repr(value))
    saved["definitions"] += [
        ast.get_source_segment(cell, node)
        for node in ast.parse(cell).body
        if isinstance(node, (ast.Import, ast.ImportFrom, ast.FunctionDef,
                             ast.AsyncFunctionDef, ast.ClassDef))
    ]
except BaseException:
    traceback.print_exc()
finally:
    values, lost = {}, []
    for name, value in namespace.items():
        if name.startswith("__") or isinstance(value, (types.ModuleType, types.FunctionType, type)):
            continue
        try:
            values[name] = pickle.dumps(value)
        except Exception:
            lost.append(name)
    saved["values"] = values
    with open(STATE, "wb") as handle:
        pickle.dump(saved, handle)
    if lost:
        print("[not kept for the next call, cannot be pickled: " + ", ".join(sorted(lost)) + "]",
              file=sys.stderr)
"""
