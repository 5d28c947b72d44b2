"""Pickling code for workers so that tracebacks name the user's file and line.

Two rules, whatever the cloudpickle version:

- A class or function defined at module level of the script run by ``rebeam main.py`` travels
  *by reference* when a worker can import the script: the worker imports it as
  ``__rebeam_main__`` (see ``_script.py``) and looks the name up, so its code is the file's own
  code. A worker can import a script whose module level only defines things (imports,
  definitions, assignments; the rest under ``if __name__ == "__main__":``); one that runs its
  program at module level (``Supervisor(...)``, ``print(...)``) would run it again in the
  worker, so its code travels by value.
- Code that must travel by value (library mode, where ``__main__`` is the user's REPL or
  ``prog.py``; lambdas; closures; names bound only under ``if __name__ == "__main__":``) keeps
  its real ``co_filename``. cloudpickle ≥ 3.1.3 writes ``"<dynamic-code>"`` there (for
  deterministic pickles); we wrap its code reducer and put the file name back on arrival, so
  ``linecache`` can read the source line from the real file.
"""

from __future__ import annotations

import ast
import io
import os
import sys
import types
from collections import ChainMap
from functools import lru_cache
from typing import Any

import cloudpickle

from . import _env, _runtime

_cloudpickle_code_reduce = cloudpickle.Pickler.dispatch_table.get(types.CodeType)


def _code_at(rebuild, args: tuple, filename: str) -> types.CodeType:
    code = rebuild(*args)
    return code if code.co_filename == filename else code.replace(co_filename=filename)


def _reduce_code(code: types.CodeType):
    rebuild, args = _cloudpickle_code_reduce(code)
    return _code_at, (rebuild, args, code.co_filename)


class Pickler(cloudpickle.Pickler):
    if _cloudpickle_code_reduce is not None:
        dispatch_table = ChainMap({types.CodeType: _reduce_code}, cloudpickle.Pickler.dispatch_table)

    def reducer_override(self, obj: Any) -> Any:
        qualname = _script_qualname(obj)
        if qualname is not None:
            from ._script import main_attr

            return main_attr, (qualname,)
        return super().reducer_override(obj)


def dumps(obj: Any, buffer_callback=None) -> bytes:
    with io.BytesIO() as f:
        Pickler(f, protocol=5, buffer_callback=buffer_callback).dump(obj)
        return f.getvalue()


def _script_qualname(obj: Any) -> str | None:
    """The qualified name under which a worker importing the script finds ``obj``, if any."""
    if not isinstance(obj, (type, types.FunctionType)) or getattr(obj, "__module__", None) != "__main__":
        return None
    script = os.environ.get(_env.SCRIPT)
    main = sys.modules.get("__main__")
    if not script or _runtime.main_by_value or main is None or sys.modules.get("__rebeam_main__") is not main:
        return None
    qualname = getattr(obj, "__qualname__", "")
    if "<locals>" in qualname or qualname.split(".")[0] not in _module_level_names(script):
        return None
    found: Any = main
    for part in qualname.split("."):
        found = getattr(found, part, None)
    return qualname if found is obj else None


@lru_cache(maxsize=4)
def _module_level_names(path: str) -> frozenset[str]:
    """Names a worker finds when it imports the script: what its module level defines outside
    the ``if __name__ == "__main__":`` block. Empty when importing the script would *do*
    something (a statement like ``Supervisor(...)``, ``print(...)`` or ``x = call(...)`` outside
    that block): such a script cannot be imported by a worker, and its code travels by value."""
    try:
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), filename=path)
    except (OSError, SyntaxError, ValueError):
        return frozenset()
    names: set[str] = set()
    rebeam_names: set[str] = set()
    return frozenset(names) if _collect(tree.body, names, rebeam_names) else frozenset()


def _collect(body: list, names: set[str], rebeam_names: set[str]) -> bool:
    """Adds what ``body`` binds to ``names``; False if running it does more than define."""
    for node in body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            if node.value is not None and _calls_rebeam(node.value, rebeam_names):
                return False
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound = [(a.asname or a.name).split(".")[0] for a in node.names]
            names.update(bound)
            module = node.module if isinstance(node, ast.ImportFrom) else None
            if (module or "").split(".")[0] == "rebeam" or any(a.name.split(".")[0] == "rebeam" for a in node.names):
                rebeam_names.update(bound)
        elif isinstance(node, ast.If):
            if not _is_main_guard(node.test) and not _collect(node.body, names, rebeam_names):
                return False
            if not _collect(node.orelse, names, rebeam_names):
                return False
        elif isinstance(node, ast.Try):
            for part in (node.body, *(h.body for h in node.handlers), node.orelse, node.finalbody):
                if not _collect(part, names, rebeam_names):
                    return False
        elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            pass  # a docstring
        elif not isinstance(node, ast.Pass):
            return False
    return True


def _calls_rebeam(value: ast.expr, rebeam_names: set[str]) -> bool:
    for node in ast.walk(value):
        if isinstance(node, ast.Call):
            root = node.func
            while isinstance(root, ast.Attribute):
                root = root.value
            if isinstance(root, ast.Name) and root.id in rebeam_names:
                return True
    return False


def _is_main_guard(test: ast.expr) -> bool:
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq)):
        return False
    sides = [test.left, test.comparators[0]]
    has_name = any(isinstance(s, ast.Name) and s.id == "__name__" for s in sides)
    has_main = any(isinstance(s, ast.Constant) and s.value == "__main__" for s in sides)
    return has_name and has_main
