"""Tracebacks from actors name the user's file and show its source line, whichever way the code
travelled (by reference: the script's module-level classes; by value: code defined only under
`if __name__ == "__main__":`, library mode's `__main__`), and whatever cloudpickle writes into
the code objects it pickles (3.1.3 writes "<dynamic-code>")."""

from __future__ import annotations

from helpers import check, lines, run_python, run_rebeam

BOOM = '''
class Boom(GenPy):
    name = "boom"

    @receive("module")
    def module(self, source, _):
        return type(self).__module__

    @receive("boom")
    def boom(self, source, _):
        return {}["banana"]  # LINE-OF-THE-BUG
'''

SHOW = '''
    print("module:", call("boom", "module")[1], flush=True)
    status, err = call("boom", "boom")
    print("str:", str(err), flush=True)
    print("repr:", repr(err), flush=True)
    print("TRACEBACK<<", err.remote_traceback, ">>TRACEBACK", flush=True)
'''


def bug_line(path) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if "LINE-OF-THE-BUG" in line)


def traceback_of(out: str) -> str:
    return out.split("TRACEBACK<<", 1)[1].split(">>TRACEBACK", 1)[0]


def assert_points_at_the_bug(out: str, path) -> None:
    tb = traceback_of(out)
    assert f'File "{path}", line {bug_line(path)}, in boom' in tb, tb
    assert 'return {}["banana"]  # LINE-OF-THE-BUG' in tb, tb  # the source line, via linecache
    assert "<dynamic-code>" not in tb


def test_a_script_actor_travels_by_reference_and_its_traceback_shows_the_line(tmp_path):
    r = run_rebeam(tmp_path, "import rebeam\nfrom rebeam import GenPy, Supervisor, call, receive\n" + BOOM + '''
if __name__ == "__main__":
    Supervisor(modules=[Boom()])
''' + SHOW + '''
    rebeam.shutdown(0)
''')
    check(r)
    # The worker imported the script (as __rebeam_main__) rather than receiving the class by value.
    assert "module: __rebeam_main__" in lines(r)
    assert_points_at_the_bug(r.stdout, tmp_path / "main.py")
    assert "str: KeyError: 'banana'" in lines(r)
    assert "repr: RemoteError(\"KeyError: 'banana'\")" in lines(r)



def test_a_worker_importing_the_script_sees_its_argv(tmp_path):
    # Module level reads sys.argv, as scripts do: the worker that imports the script by
    # reference must see the arguments the main process got, or the import fails there.
    r = run_rebeam(tmp_path, """
import sys
import rebeam
from rebeam import GenPy, Supervisor, call, receive

MODE = sys.argv[1]


class Echo(GenPy):
    name = "echo"

    @receive("mode")
    def mode(self, source, _):
        return type(self).__module__, MODE, sys.argv[1:]


if __name__ == "__main__":
    Supervisor(modules=[Echo()])
    print("echo:", call("echo", "mode"), flush=True)
    rebeam.shutdown(0)
""", "fast", "--flag")
    check(r)
    assert "echo: ('ok', ('__rebeam_main__', 'fast', ['fast', '--flag']))" in lines(r)

def test_code_defined_under_the_main_guard_travels_by_value_and_keeps_its_file(tmp_path):
    body = "\n".join("    " + line for line in BOOM.splitlines())
    r = run_rebeam(tmp_path, "import rebeam\nfrom rebeam import GenPy, Supervisor, call, receive\n"
                   'if __name__ == "__main__":\n' + body + '''
    Supervisor(modules=[Boom()])
''' + SHOW + '''
    rebeam.shutdown(0)
''')
    check(r)
    assert "module: __main__" in lines(r)  # by value: the worker's script has no Boom
    assert_points_at_the_bug(r.stdout, tmp_path / "main.py")


def test_library_mode_code_travels_by_value_and_keeps_its_file(tmp_path):
    r = run_python(tmp_path, "import rebeam\nfrom rebeam import GenPy, Supervisor, call, receive\n" + BOOM + '''
Supervisor(modules=[Boom()])
''' + "\n".join(line[4:] for line in SHOW.splitlines()))
    check(r)
    assert_points_at_the_bug(r.stdout, tmp_path / "prog.py")


def test_a_failing_start_shows_its_traceback_and_names_the_type_once(tmp_path):
    r = run_rebeam(tmp_path, '''
from rebeam import GenPy, Supervisor, start

class Reader(GenPy):
    name = "reader"

    @start()
    def init(self):
        self.state["f"] = open("/nonexistent/settings.toml")  # LINE-OF-THE-BUG

if __name__ == "__main__":
    Supervisor(modules=[Reader()])
''')
    check(r, 1)
    path = tmp_path / "main.py"
    assert "StartError: actor 'reader' failed to start: FileNotFoundError:" in r.stderr
    assert f'File "{path}", line {bug_line(path)}, in init' in r.stderr, r.stderr
    assert 'open("/nonexistent/settings.toml")  # LINE-OF-THE-BUG' in r.stderr
    logged = [line for line in r.stderr.splitlines() if "supervisor" in line and "failed to start" in line]
    assert logged and all(line.count("FileNotFoundError") == 1 for line in logged), logged
