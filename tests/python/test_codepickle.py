"""Pickling code for workers: which script names travel by reference, and by-value code that
keeps its file name whatever cloudpickle writes into co_filename."""

from __future__ import annotations

import pickle
import textwrap

from rebeam import _codepickle


def names(tmp_path, source: str) -> frozenset:
    path = tmp_path / "main.py"
    path.write_text(textwrap.dedent(source))
    _codepickle._module_level_names.cache_clear()
    return _codepickle._module_level_names(str(path))


def test_a_script_that_only_defines_things_is_importable_by_workers(tmp_path):
    found = names(tmp_path, '''
        """Docstring."""
        import logging
        from rebeam import GenPy, Supervisor, receive
        log = logging.getLogger(__name__)
        try:
            import numpy as np
        except ImportError:
            np = None

        class Box(GenPy):
            pass

        def helper():
            pass

        if __name__ == "__main__":
            class OnlyInMain(GenPy):
                pass
            Supervisor(modules=[Box()])
    ''')
    assert {"logging", "log", "np", "Box", "helper", "GenPy"} <= found
    assert "OnlyInMain" not in found  # defined only when run, not when imported


def test_a_script_that_runs_its_program_at_module_level_is_not(tmp_path):
    assert names(tmp_path, '''
        from rebeam import GenPy, Supervisor
        class Box(GenPy):
            pass
        Supervisor(modules=[Box()])
    ''') == frozenset()
    assert names(tmp_path, '''
        import rebeam
        class Box(rebeam.GenPy):
            pass
        answer = rebeam.call("box", "x")
    ''') == frozenset()


def test_code_by_value_keeps_its_file_name():
    namespace: dict = {}
    source = "def f():\n    def g():\n        return 1 / 0\n    return g\n"
    exec(compile(source, "/somewhere/prog.py", "exec"), namespace)
    f = pickle.loads(_codepickle.dumps(namespace["f"]))  # no importable module: by value
    assert f is not namespace["f"]
    assert f.__code__.co_filename == "/somewhere/prog.py"
    assert f().__code__.co_filename == "/somewhere/prog.py"  # nested code objects too
