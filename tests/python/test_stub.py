"""The `_rebeam.pyi` stub against the native module it describes.

The stub is what type checkers and readers see of `rebeam._rebeam`; these tests fail when the
two drift: a name, class, method, parameter or error kind on one side and not the other.
"""

from __future__ import annotations

import ast
import inspect
import pathlib

import pytest

import rebeam
from rebeam import _rebeam

STUB = ast.parse((pathlib.Path(rebeam.__file__).parent / "_rebeam.pyi").read_text())


def _public(names) -> set[str]:
    return {n for n in names if not (n.startswith("__") and n.endswith("__"))}


def _members(body) -> dict[str, ast.AST]:
    """What a stub body declares for the runtime: functions, classes and annotated names.
    Plain assignments are type aliases, which exist only for the type checker."""
    out: dict[str, ast.AST] = {}
    for node in body:
        if isinstance(node, ast.FunctionDef) and node.name.startswith("__"):
            continue  # constructors and dunders: see test_constructors_take_the_stubs_parameters
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            out[node.name] = node
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            out[node.target.id] = node
    return out


def _aliases() -> dict[str, ast.expr]:
    return {
        t.id: node.value
        for node in STUB.body
        if isinstance(node, ast.Assign)
        for t in node.targets
        if isinstance(t, ast.Name)
    }


def _stub_classes() -> dict[str, ast.ClassDef]:
    return {n: c for n, c in _members(STUB.body).items() if isinstance(c, ast.ClassDef)}


def _parameters(fn: ast.FunctionDef) -> list[str]:
    args = fn.args
    names = [a.arg for a in args.posonlyargs + args.args + args.kwonlyargs]
    return [n for n in names if n != "self"]


def test_the_stub_declares_exactly_the_modules_public_names():
    assert set(_members(STUB.body)) == _public(dir(_rebeam))


def test_type_aliases_are_not_mistaken_for_module_names():
    assert not set(_aliases()) & set(dir(_rebeam))


@pytest.mark.parametrize("name", sorted(_stub_classes()))
def test_each_class_has_exactly_the_stubs_members(name):
    cls = getattr(_rebeam, name)
    assert set(_members(_stub_classes()[name].body)) == _public(dir(cls))


@pytest.mark.parametrize("name", sorted(_stub_classes()))
def test_methods_and_attributes_are_what_the_stub_says(name):
    cls = getattr(_rebeam, name)
    for member, node in _members(_stub_classes()[name].body).items():
        value = inspect.getattr_static(cls, member)
        if isinstance(node, ast.FunctionDef):
            assert callable(getattr(cls, member)), f"{name}.{member} is a method in the stub"
            runtime = [p for p in inspect.signature(getattr(cls, member)).parameters if p != "self"]
            assert runtime == _parameters(node), f"{name}.{member}"
        else:
            assert inspect.isdatadescriptor(value), f"{name}.{member} is an attribute in the stub"


def test_constructors_take_the_stubs_parameters():
    for name, cls in _stub_classes().items():
        init = next((n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"), None)
        if init is not None:
            assert list(inspect.signature(getattr(_rebeam, name)).parameters) == _parameters(init), name


def test_module_functions_take_the_stubs_parameters():
    for member, node in _members(STUB.body).items():
        if isinstance(node, ast.FunctionDef):
            assert list(inspect.signature(getattr(_rebeam, member)).parameters) == _parameters(node), member


def test_the_stub_lists_every_error_kind():
    literal = _aliases()["ErrorKind"]
    assert isinstance(literal, ast.Subscript) and ast.unparse(literal.value) == "Literal"
    kinds = tuple(ast.literal_eval(e) for e in literal.slice.elts)
    assert kinds == _rebeam.ERROR_KINDS
    assert len(set(kinds)) == len(kinds)


def test_every_error_kind_has_an_exception_class():
    # errors.rs maps each kind to a class of rebeam.errors; a kind without one would surface
    # as an AttributeError where the user expected a RebeamError.
    for cls in (
        "NoProcess", "ActorDown", "RemoteError", "CallTimeout", "MessageTooLarge", "StartError", "InvalidRequest",
        "ShuttingDown", "NoMailbox", "SafetyError", "ReservedTopic", "CapacityError", "NoQueue",
    ):
        assert issubclass(getattr(rebeam.errors, cls), rebeam.errors.RebeamError), cls


def test_the_python_api_spells_the_enums_as_the_native_module_does():
    from rebeam import supervisor

    assert (supervisor.ONE_FOR_ONE, supervisor.ONE_FOR_ALL, supervisor.REST_FOR_ONE) == _rebeam.STRATEGIES
    assert (supervisor.PERMANENT, supervisor.TRANSIENT, supervisor.TEMPORARY) == _rebeam.RESTARTS


def test_the_python_api_shows_the_native_defaults():
    from rebeam import _library, safety, supervisor
    from rebeam.boc import _pump

    assert inspect.signature(rebeam.call).parameters["timeout"].default == _rebeam.DEFAULT_CALL_TIMEOUT
    assert inspect.signature(safety.on).parameters["queue"].default == _rebeam.DEFAULT_QUEUE
    params = inspect.signature(supervisor.Supervisor).parameters
    assert params["max_restarts"].default == _rebeam.DEFAULT_MAX_RESTARTS
    assert params["max_seconds"].default == _rebeam.DEFAULT_MAX_SECONDS
    assert rebeam.GenPy.shutdown == _rebeam.DEFAULT_SHUTDOWN
    assert inspect.signature(_library.stop).parameters["timeout"].default == _rebeam.DEFAULT_STOP_TIMEOUT
    assert _pump.DEFAULT_PUMP_WARN_MS == _rebeam.DEFAULT_PUMP_WARN_MS


def test_an_error_info_checks_its_kind_where_it_is_built():
    info = _rebeam.ErrorInfo("safety", "disarmed", "SafetyInterrupt")
    assert (info.kind, info.message, info.exc_type, info.traceback) == ("safety", "disarmed", "SafetyInterrupt", None)
    with pytest.raises(ValueError, match="error kind must be one of no_process, .*not 'crash'"):
        _rebeam.ErrorInfo("crash", "typo")
    with pytest.raises(AttributeError):
        info.kind = "timeout"  # frozen


def test_an_exit_is_built_by_its_constructors_and_a_crash_carries_its_error():
    info = _rebeam.ErrorInfo("crashed", "boom", "ValueError")
    assert [e.kind for e in (_rebeam.Exit.normal(), _rebeam.Exit.shutdown(), _rebeam.Exit.crashed(info))] == [
        "normal", "shutdown", "crashed",
    ]
    assert _rebeam.Exit.normal() == _rebeam.Exit.normal() != _rebeam.Exit.shutdown()
    with pytest.raises(TypeError):
        _rebeam.Exit()  # no free spelling of a reason
    with pytest.raises(TypeError):
        _rebeam.Exit.crashed(("crashed", "boom", None, None))  # an ErrorInfo, not a tuple


def test_an_actors_default_restart_kind_is_the_native_one():
    assert rebeam.GenPy.restart == _rebeam.DEFAULT_RESTART == _rebeam.RESTARTS[0]
