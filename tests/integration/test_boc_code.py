"""A behaviour's code is sent once per worker and each @when carries only its captures: what
each behaviour sees is still what it captured when it was scheduled, and a worker that
starts later gets the code too."""

from __future__ import annotations

import textwrap

from helpers import check, lines, run_python, run_rebeam

CAPTURES = """
    from rebeam.boc import Cown, quiesce, when

    log = Cown([])

    def schedule(k):
        @when(log)
        def add(log, m=k * 10):               # a default and a closure value, fresh each time
            log.value = log.value + [("add", k, m)]

    for k in range(4):
        schedule(k)

    items = []
    for k in range(3):
        items.append(k)                       # a list the code names: it travels as it is now
        LIMIT = k                             # a number the code names, bound anew each time

        @when(log)
        def seen(log):
            log.value = log.value + [("items", list(items))]

        @when(log)
        def limit(log):
            log.value = log.value + [("limit", LIMIT)]

    quiesce(60)

    @when(log)
    def show(log):
        print("log:", log.value, flush=True)

    quiesce(60)
"""

EXPECTED = (
    "log: [('add', 0, 0), ('add', 1, 10), ('add', 2, 20), ('add', 3, 30), ('items', [0]), ('limit', 0), "
    "('items', [0, 1]), ('limit', 1), ('items', [0, 1, 2]), ('limit', 2)]"
)


def test_each_behaviour_sees_what_it_captured_when_scheduled(tmp_path):
    r = run_rebeam(tmp_path, CAPTURES, timeout=120)
    check(r)
    assert any(line.endswith(EXPECTED) for line in lines(r)), r.stdout


def test_each_behaviour_sees_what_it_captured_in_library_mode(tmp_path):
    source = textwrap.dedent(CAPTURES).replace("from rebeam.boc import", "from rebeam.boc import start,", 1)
    r = run_python(tmp_path, source.replace("\nlog = ", "\nstart(worker_count=2)\nlog = ", 1), timeout=120)
    check(r)
    assert any(line.endswith(EXPECTED) for line in lines(r)), r.stdout


WORKERS_THAT_START_LATER = """
    import os, signal, time
    from rebeam.boc import Cown, quiesce, when

    def bump(c):                              # one code, defined once, for every round
        @when(c)
        def _(c):
            c.value += 1
            return os.getpid()
        return _

    pids = []
    for _round in range(3):
        result = bump(Cown(0))
        quiesce(60)
        pid = result.unwrap()
        pids.append(pid)
        os.kill(pid, signal.SIGKILL)          # its replacement, and later a new spare, take over
        deadline = time.monotonic() + 30
        while pid in [s["pid"] for s in quiesce(60, stats=True)] and time.monotonic() < deadline:
            time.sleep(0.05)
    print("distinct workers:", len(set(pids)), flush=True)
"""


def test_a_worker_that_starts_after_the_code_was_defined_gets_it(tmp_path):
    r = run_rebeam(tmp_path, WORKERS_THAT_START_LATER, workers=1, timeout=120)
    check(r)
    assert "distinct workers: 3" in lines(r), r.stdout + r.stderr
