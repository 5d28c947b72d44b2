"""Nothing a peer sends crashes the governor: real runs that used to panic or abort it (nested
seed trees, huge queues, infinite timeouts, a worker that stops reading, a SIGKILLed worker),
and the guard that still cleans up when the governor itself panics."""

from __future__ import annotations

import os
import signal
import subprocess
import textwrap
import uuid

import pytest

from helpers import REBEAM, check, outputs, processes_with, program_env, run_rebeam, wait_until, write_script

ACTORS = """
    import os, signal, sys, time
    import rebeam
    from rebeam import GenPy, Supervisor, call, cast, child, receive, whereis
    from scriptlib import retry_call, wait_for, wait_new_pid

    class Member(GenPy):
        def __init__(self, name):
            self.name = name

        @receive("who")
        def who(self, source, _):
            return (self.name, os.getpid())

        @receive("take")
        def take(self, source, data):
            return len(data)

        @receive("crash")
        def crash(self, source, _):
            raise RuntimeError(f"{self.name} crashes on purpose")
"""



def program(*parts: str) -> str:
    return "".join(textwrap.dedent(p) for p in parts)


NESTED = {
    "returned_from_main": """
        def main():
            left = Supervisor(modules=[child(Member("a1"), name="a1"), child(Member("a2"), name="a2")], name="left")
            right = Supervisor(modules=[child(Member("b1"), name="b1")], name="right")
            return Supervisor(modules=[left, right, child(Member("client"), name="client")], name="root")

        if __name__ == "__main__":
            root = main()
            checks()
    """,
    "built_in_the_body": """
        if __name__ == "__main__":
            root = Supervisor(modules=[
                Supervisor(modules=[child(Member("a1"), name="a1"), child(Member("a2"), name="a2")], name="left"),
                Supervisor(modules=[child(Member("b1"), name="b1")], name="right"),
                child(Member("client"), name="client"),
            ], name="root")
            checks()
    """,
}

NESTED_CHECKS = """
    def checks():
        for n in ("a1", "a2", "b1", "client"):
            print("serves:", call(n, "who")[1][0], flush=True)
        for n in ("a2", "b1"):
            before = whereis(n)
            print("crash:", call(n, "crash")[0], flush=True)
            wait_new_pid(n, before)
            print("restarted:", retry_call(n, "who")[1][0], flush=True)
        rebeam.shutdown(0)
"""


@pytest.mark.parametrize("how", sorted(NESTED))
def test_the_seed_nested_tree_runs_restarts_and_ends_cleanly(tmp_path, how):
    # Supervisor(modules=[Supervisor(...), Supervisor(...), client]) used to crash the governor
    # (index out of bounds in tree.rs's adopt).
    r = run_rebeam(tmp_path, program(ACTORS, NESTED_CHECKS, NESTED[how]))
    check(r)
    out = outputs(r)
    assert [x for x in out if x.startswith("serves:")] == [f"serves: {n}" for n in ("a1", "a2", "b1", "client")]
    assert [x for x in out if x.startswith("restarted:")] == ["restarted: a2", "restarted: b1"]
    assert "panicked" not in r.stderr
