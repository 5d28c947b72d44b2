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
