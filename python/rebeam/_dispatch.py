"""The governor's commands and who handles them: one table for every process.

Each command arrives from ``Connection.next_command()`` as a frozen class of the native
module (``_rebeam.Deliver``, ``_rebeam.Start``, ...; see ``_rebeam.pyi``). :data:`TABLE` maps
each class to the name of the :class:`Handler` method that takes it. The main process
(``_main.MainHandler``) and the workers (``_worker.Worker``) are both Handlers: what they do
alike is here, and each overrides what it does differently. A command a role never receives
(the governor sends ``Start`` only to workers) is ignored by the default.

:meth:`Handler.command` runs one. A handler returns False to end the command loop (the main
process's events thread after a shutdown); anything else keeps it going.
"""

from __future__ import annotations

from . import _rebeam

TABLE: dict[type, str] = {
    _rebeam.Deliver: "on_deliver",
    _rebeam.Casts: "on_casts",  # a run of casts to one actor (Connection.next_commands)
    _rebeam.Start: "on_start",
    _rebeam.Stop: "on_stop",
    _rebeam.Preload: "on_preload",
    _rebeam.Down: "on_down",
    _rebeam.Shutdown: "on_shutdown",
    _rebeam.Surrender: "on_surrender",
    _rebeam.ForgetCowns: "on_forget_cowns",
    _rebeam.RunBehaviour: "on_run_behaviour",
    _rebeam.CancelBehaviour: "on_cancel_behaviour",
    _rebeam.Cancel: "on_cancel",
    _rebeam.SysPath: "on_sys_path",
    _rebeam.DefineCode: "on_define_code",
    _rebeam.Publication: "on_publication",
}


class Handler:
    """Handles one process's commands; subclasses override the methods of :data:`TABLE`, never
    :meth:`command` itself."""

    def __init__(self, conn) -> None:
        self.conn = conn

    def command(self, cmd) -> bool:
        """Runs the handler for ``cmd``; False when the command loop is to end."""
        return getattr(self, TABLE[type(cmd)])(cmd) is not False

    def ignore(self, cmd) -> None:
        """A command this role does not act on."""

    on_deliver = on_casts = on_start = on_stop = on_preload = on_cancel = on_sys_path = ignore
    on_down = on_shutdown = on_run_behaviour = on_publication = ignore

    # -- what every process does alike ---------------------------------------------------

    def on_surrender(self, cmd: _rebeam.Surrender) -> None:
        from . import boc

        boc.surrender(self.conn, cmd.cown)

    def on_forget_cowns(self, cmd: _rebeam.ForgetCowns) -> None:
        from .boc import _cowns

        _cowns.forget(cmd.cowns)

    def on_define_code(self, cmd: _rebeam.DefineCode) -> None:
        from .boc import _code

        _code.define(cmd.id, cmd.data, cmd.buffers)

    def on_cancel_behaviour(self, cmd: _rebeam.CancelBehaviour) -> None:
        from . import boc

        boc.cancel_behaviour(cmd.behaviour)
