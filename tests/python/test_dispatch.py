"""The one dispatch table: every command class of the native module has a handler name, and
every handler named there exists on both roles (the main process and the workers)."""

from __future__ import annotations

import inspect

import pytest

from rebeam import _dispatch, _rebeam
from rebeam._main import MainHandler
from rebeam._worker import Worker

# The classes that are not commands: the connection, and the values Python reports with.
NOT_COMMANDS = {_rebeam.Connection, _rebeam.ErrorInfo, _rebeam.Exit, _rebeam.SharedBytes, _rebeam.SharedBuffer}
COMMANDS = {c for _, c in inspect.getmembers(_rebeam, inspect.isclass)} - NOT_COMMANDS


def test_every_command_class_is_in_the_table():
    assert set(_dispatch.TABLE) == COMMANDS


@pytest.mark.parametrize("role", [_dispatch.Handler, MainHandler, Worker])
def test_every_handler_in_the_table_exists(role):
    for name in _dispatch.TABLE.values():
        assert callable(getattr(role, name, None)), f"{role.__name__}.{name}"


@pytest.mark.parametrize("role", [MainHandler, Worker])
def test_no_role_overrides_the_entry_point(role):
    # A role's own method of that name (a worker's mailbox has `handle`) would swallow every command.
    assert role.command is _dispatch.Handler.command


def test_commands_are_frozen_and_cannot_be_built_from_python():
    # Only the native decoder makes them, so a handler never sees a half-built command.
    for cls in COMMANDS:
        with pytest.raises(TypeError):
            cls()


class _Recorder(_dispatch.Handler):
    def __init__(self) -> None:
        super().__init__(conn=None)
        self.seen: list = []

    def on_stop(self, cmd) -> None:
        self.seen.append(cmd)

    def on_shutdown(self, cmd) -> bool:
        return False


def test_handle_routes_by_type_and_false_ends_the_loop():
    class FakeStop:
        pass

    table = dict(_dispatch.TABLE)
    try:
        _dispatch.TABLE[FakeStop] = "on_stop"
        _dispatch.TABLE[int] = "on_shutdown"
        _dispatch.TABLE[str] = "on_deliver"
        r = _Recorder()
        cmd = FakeStop()
        assert r.command(cmd) is True and r.seen == [cmd]
        assert r.command(0) is False
        assert r.command("ignored by default") is True
    finally:
        _dispatch.TABLE.clear()
        _dispatch.TABLE.update(table)
