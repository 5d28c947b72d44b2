"""Importing the user's script in a worker, so what the main process pickles by reference
(``__main__.Counter``) resolves there too (as multiprocessing does with ``__mp_main__``)."""

from __future__ import annotations

import ast
import importlib.util
import os
import sys
import threading

from . import _env
from .actor import GenPy

_lock = threading.Lock()
_loaded = False


def ensure_main_script() -> None:
    """Imports ``$REBEAM_SCRIPT`` once as ``__rebeam_main__`` and aliases it as ``__main__``.

    ``__name__`` is not ``"__main__"``, so the script's ``if __name__ == "__main__":`` block
    does not run again in workers.
    """
    global _loaded
    if _loaded:
        return
    with _lock:
        if _loaded:
            return
        path = os.environ.get(_env.SCRIPT)
        if path:
            script_dir = os.path.dirname(path)
            if script_dir not in sys.path:
                sys.path.insert(0, script_dir)
            from . import _runtime

            _runtime._local.importing_script = os.path.basename(path)
            try:
                module = _load("__rebeam_main__", path)
            finally:
                _runtime._local.importing_script = None
            sys.modules["__main__"] = module
        _loaded = True


def main_attr(qualname: str):
    """What ``_codepickle`` sent by reference: ``qualname`` in the user's script."""
    module = sys.modules.get("__rebeam_main__")
    if module is None:
        ensure_main_script()
        module = sys.modules.get("__rebeam_main__")
    if module is None:
        raise ImportError(f"cannot find {qualname}: this process has no script to import it from (no ${_env.SCRIPT})")
    found = module
    for part in qualname.split("."):
        try:
            found = getattr(found, part)
        except AttributeError:
            raise ImportError(
                f"{module.__file__} defines no {qualname} when a worker imports it; define it at module "
                "level of the script, not only under `if __name__ == \"__main__\":`"
            ) from None
    return found


def _load(name: str, path: str):
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def _defines_genpy(path: str) -> bool:
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), filename=path)
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            for base in node.bases:
                if (isinstance(base, ast.Name) and base.id == "GenPy") or (
                    isinstance(base, ast.Attribute) and base.attr == "GenPy"
                ):
                    return True
    return False


def script_child(path: str):
    """A script given as a child: an instance of its GenPy class, or None to run it as a task."""
    if not _defines_genpy(path):
        return None
    stem = os.path.splitext(os.path.basename(path))[0]
    module = _load(f"__rebeam_script_{stem}__", path)
    classes = [
        v for v in vars(module).values()
        if isinstance(v, type) and issubclass(v, GenPy) and v is not GenPy and v.__module__ == module.__name__
    ]
    if not classes:
        return None
    return classes[0]()
