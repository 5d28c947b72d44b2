"""What programs print and log reaches the terminal: lines without a final newline at
shutdown, and actors' log records under the logging the script configured."""

from __future__ import annotations

import pytest

from helpers import check, lines, run_python, run_rebeam

SAYER = '''
import logging
import rebeam
from rebeam import GenPy, Supervisor, call, receive

log = logging.getLogger("sayer")

class Sayer(GenPy):
    name = "sayer"

    @receive("say")
    def say(self, source, text):
        print(text, end="")
        return "said"

    @receive("log")
    def log(self, source, _):
        log.info("info from the actor")
        log.debug("debug from the actor")
        return "logged"
'''

LOGGING = 'logging.basicConfig(level=logging.INFO, format="LOG|%(levelname)s|%(name)s|%(message)s")'


def test_output_without_a_final_newline_appears_at_shutdown(tmp_path):
    r = run_rebeam(tmp_path, SAYER + '''
import os, time
from scriptlib import wait_for

MARK = os.path.join(os.path.dirname(os.path.abspath(__file__)), "printed")

def task():
    print("task-partial", end="")
    open(MARK, "w").close()
    while True:
        time.sleep(0.02)  # short sleeps: the stop at shutdown lands between two

if __name__ == "__main__":
    Supervisor(modules=[Sayer(), task])
    wait_for("the task to print", lambda: os.path.exists(MARK))
    print(call("sayer", "say", "actor-partial"), flush=True)
    print("main-partial", end="")
    rebeam.shutdown(0)
''')
    check(r)
    assert "('ok', 'said')" in lines(r)
    for text in ("actor-partial", "task-partial", "main-partial"):
        assert text in r.stdout, r.stdout
    assert "[sayer] actor-partial" in r.stdout  # still prefixed with the actor's name


@pytest.mark.parametrize("where", ["module level", "main block"])
def test_the_scripts_logging_configuration_applies_in_actors(tmp_path, where):
    top, guarded = (LOGGING, "") if where == "module level" else ("", LOGGING)
    r = run_rebeam(tmp_path, SAYER + top + f'''
if __name__ == "__main__":
    {guarded}
    Supervisor(modules=[Sayer()])
    print(call("sayer", "log"), flush=True)
    log.info("info from main")
    rebeam.shutdown(0)
''')
    check(r)
    assert "('ok', 'logged')" in lines(r)
    assert "LOG|INFO|sayer|info from main" in r.stderr
    assert "[sayer] LOG|INFO|sayer|info from the actor" in r.stderr, r.stderr
    assert "debug from the actor" not in r.stderr  # the level applies too, not only the format


def test_library_mode_logging_configuration_applies_in_actors(tmp_path):
    r = run_python(tmp_path, SAYER + LOGGING + '''
Supervisor(modules=[Sayer()])
print(call("sayer", "log"), flush=True)
''')
    check(r)
    assert "[sayer] LOG|INFO|sayer|info from the actor" in r.stderr, r.stderr
    assert "debug from the actor" not in r.stderr


def test_a_restart_does_not_undo_a_newer_logging_configuration(tmp_path):
    # One worker: both actors live in it, and `a` restarts there with the code (and logging
    # configuration) captured when its supervisor started.
    r = run_rebeam(tmp_path, '''
import logging
import rebeam
from rebeam import GenPy, Supervisor, call, receive
from scriptlib import retry_call, wait_new_pid

class Logger(GenPy):
    def __init__(self, name):
        self.name = name

    @receive("log")
    def log(self, source, _):
        logging.getLogger(self.name).info("from %s", self.name)

    @receive("crash")
    def crash(self, source, _):
        raise RuntimeError("crash on purpose")

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="ONE|%(message)s")
    Supervisor(modules=[Logger("a")])
    logging.getLogger().handlers[0].setFormatter(logging.Formatter("TWO|%(message)s"))
    Supervisor(modules=[Logger("b")])
    old = rebeam.whereis("a")
    call("a", "crash")
    wait_new_pid("a", old)
    retry_call("a", "log")
    call("b", "log")
    rebeam.shutdown(0)
''', workers=1)
    check(r)
    assert "[a] TWO|from a" in r.stderr, r.stderr
    assert "[b] TWO|from b" in r.stderr, r.stderr


def test_lines_from_main_and_workers_never_splice_even_when_python_is_unbuffered(tmp_path):
    # PYTHONUNBUFFERED=1 (set on many CI machines) makes print() write each piece on its own:
    # print("a", "b") was four writes, and a worker's line landed in the middle of main's.
    r = run_rebeam(tmp_path, '''
        import rebeam
        from rebeam import GenPy, Supervisor, cast, call, receive

        class Chatty(GenPy):
            name = "chatty"

            @receive("talk")
            def talk(self, source, n):
                for i in range(n):
                    print("worker", "line", i, "end")
                return "done"

        if __name__ == "__main__":
            Supervisor(modules=[Chatty()])
            cast("chatty", "talk", 3000)
            for i in range(3000):
                print("main", "line", i, "end")
            print("final:", call("chatty", "talk", 0, timeout=60), flush=True)
            rebeam.shutdown(0)
    ''', env={"PYTHONUNBUFFERED": "1"}, timeout=120)
    check(r)
    out = r.stdout.splitlines()
    whole = [x for x in out if x.startswith(("main line ", "[chatty] worker line ")) and x.endswith(" end")]
    assert len(whole) == 6000, [x for x in out if x not in whole][:10]
