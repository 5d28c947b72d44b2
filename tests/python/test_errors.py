"""`RemoteError.reraise()`: the remote exception as its own type where it can be rebuilt here."""

from __future__ import annotations

import pytest

from rebeam.errors import CallTimeout, RemoteError


class AppError(Exception):
    """An exception of an importable module (this one), built from its message."""


class Coded(Exception):
    """Built from a code, not from its message: cannot be rebuilt from the text."""

    def __init__(self, code):
        super().__init__(f"failed with code {code}")


def remote(exc_type: str, message: str, module: str | None = None) -> RemoteError:
    """A RemoteError as a handler raising `exc_type(message)` in `module` would send back."""
    shown = f"{module}.{exc_type}" if module else exc_type
    tb = f'Traceback (most recent call last):\n  File "main.py", line 7, in handler\n{shown}: {message}\n'
    return RemoteError._from_remote(message, exc_type, tb)


def raised_by(err: RemoteError) -> BaseException:
    with pytest.raises(BaseException) as info:
        err.reraise()
    return info.value


@pytest.mark.parametrize("exc_type, message, expected", [
    ("ValueError", "bad value", ValueError("bad value")),
    ("KeyError", "'missing'", KeyError("missing")),
    ("KeyError", "3", KeyError(3)),
])
def test_a_builtin_comes_back_as_itself_chained_to_the_remote_error(exc_type, message, expected):
    err = remote(exc_type, message)
    got = raised_by(err)
    assert type(got) is type(expected) and got.args == expected.args
    assert got.__cause__ is err and 'File "main.py", line 7' in err.remote_traceback


def test_a_user_defined_exception_of_an_importable_module_comes_back_as_itself():
    err = remote("AppError", "the app failed", module=__name__)
    got = raised_by(err)
    assert type(got) is AppError and str(got) == "the app failed" and got.__cause__ is err


def test_rebeams_own_errors_come_back_as_themselves():
    got = raised_by(remote("CallTimeout", "no reply from actor 'b' within 1.0 s", module="rebeam.errors"))
    assert type(got) is CallTimeout


@pytest.mark.parametrize("exc_type, message, module", [
    ("handler.<locals>.Local", "defined in a function", __name__),  # not importable
    ("NoSuchError", "gone", "no_such_module_anywhere"),  # its module is not here
    ("NotAnException", "x", __name__),  # names something that is no exception class
    ("Coded", "failed with code 5", __name__),  # Coded("failed with code 5") says something else
    ("KeyError", "not a repr", None),  # no key gives this text
])
def test_what_cannot_be_rebuilt_here_raises_the_remote_error_itself(exc_type, message, module):
    err = remote(exc_type, message, module)
    assert raised_by(err) is err


NotAnException = 42


def test_the_exception_line_is_the_last_one_naming_the_type():
    # A chained traceback names its cause first; the exception itself comes last.
    tb = ("Traceback (most recent call last):\nKeyError: 'k'\n\nThe above exception was the direct cause "
          f"of the following exception:\n\nTraceback (most recent call last):\n{__name__}.AppError: wrapped\n")
    got = raised_by(RemoteError._from_remote("wrapped", "AppError", tb))
    assert type(got) is AppError
