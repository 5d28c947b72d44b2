"""`rebeam._env` names the same REBEAM_* variables as rebeam-proto's `env` module, and the
package reads no REBEAM_* variable it does not name there."""

from __future__ import annotations

import pathlib
import re

import rebeam
from rebeam import _env, _rebeam

PACKAGE = pathlib.Path(rebeam.__file__).parent


def test_python_and_rust_name_the_same_shared_variables():
    shared = [n for n in _env.ALL if n not in _env.PYTHON_ONLY]
    assert sorted(shared) == sorted(_rebeam.ENV_VARS)


def test_names_are_distinct():
    assert len(set(_env.ALL)) == len(_env.ALL)


def test_no_module_spells_a_variable_outside_env():
    # A quoted "REBEAM_..." anywhere else is a name that escaped the one list.
    quoted = re.compile(r"""["']REBEAM_[A-Z_]+["']""")
    offenders = [
        f"{path.relative_to(PACKAGE)}: {m.group()}"
        for path in PACKAGE.rglob("*.py")
        if path.name != "_env.py"
        for m in quoted.finditer(path.read_text())
    ]
    assert offenders == []
