"""Every ``REBEAM_*`` environment variable the Python side reads or sets, named once.

The governor sets the first group for each Python process it starts (rebeam-proto's
``env`` module names the same variables for the Rust side; tests/python/test_env.py checks the
two agree). The second group is the user's: it tunes library mode, and ``rebeam`` reads the
rest of its own (``REBEAM_WORKERS``, ``REBEAM_CONTROL``) in Rust alone.
"""

from __future__ import annotations

# -- set by the governor for the processes it starts -------------------------------------------

#: The path of the governor's process socket (also the key of the line ``rebeam serve``
#: writes to its ready pipe).
SOCKET = "REBEAM_SOCKET"
#: The token a process presents on that socket, so no other local process can pose as it.
TOKEN = "REBEAM_TOKEN"
#: ``main`` or ``worker``: which role this process has in the run.
ROLE = "REBEAM_ROLE"
#: The process's index in the run (the ``worker N`` prefix of its output).
INDEX = "REBEAM_INDEX"
#: The user's script, absolute: workers import it for the types it defines.
SCRIPT = "REBEAM_SCRIPT"
#: The governor's pid: a worker whose parent is already someone else exits at once.
GOVERNOR_PID = "REBEAM_GOVERNOR_PID"
#: The governor's log filter, handed on to Python processes (``rebeam --log``).
LOG = "REBEAM_LOG"
#: ``require-armed`` under ``rebeam --safety require-armed``: all delivered work is gated.
SAFETY = "REBEAM_SAFETY"
#: The node's name under ``rebeam --node NAME`` (set by ``rebeam`` for the whole run), so that
#: a ProcessID pickled here names its node.
NODE = "REBEAM_NODE"
#: The zygote's end of its socket to the governor (an fd number): set for the zygote alone,
#: which removes it before it forks a worker (see _zygote.py).
ZYGOTE_FD = "REBEAM_ZYGOTE_FD"

# -- set by the user (or by library mode for the governor it starts) ---------------------------

#: ``0`` makes rebeam calls outside ``rebeam script.py`` raise ``NotRunning`` instead of
#: starting a governor (library mode).
LIBRARY = "REBEAM_LIBRARY"
#: The ``rebeam`` command library mode starts.
BIN = "REBEAM_BIN"
#: The interpreter for the script and the workers.
PYTHON = "REBEAM_PYTHON"
#: The main process's token, handed to ``rebeam serve`` by library mode.
MAIN_TOKEN = "REBEAM_MAIN_TOKEN"

#: The value of :data:`SAFETY` under ``rebeam --safety require-armed``.
REQUIRE_ARMED = "require-armed"

#: Every name above, for the check against the native module's list.
ALL = (SOCKET, TOKEN, ROLE, INDEX, SCRIPT, GOVERNOR_PID, LOG, SAFETY, NODE, ZYGOTE_FD, LIBRARY, BIN, PYTHON, MAIN_TOKEN)
#: The Python-only ones: rebeam never reads them.
PYTHON_ONLY = (LIBRARY, BIN)
