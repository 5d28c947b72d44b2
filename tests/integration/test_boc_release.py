"""Cowns nothing can reach any more are freed: a @when's result cown whose handle the program
dropped, and a Cown it dropped, leave the governor's cown table and the value the worker kept,
once no pending behaviour names them; cowns the program still holds keep their values. Counted
in the governor (each process's cowns in `rebeam ctl status --json`) and in the processes'
stores, not timed."""

from __future__ import annotations

from helpers import REBEAM, check, lines, run_rebeam

N = 30_000

SCRIPT = """
    import json, subprocess, sys
    from rebeam import _runtime
    from rebeam.boc import Cown, wait, when

    SOCKET, REBEAM, N = sys.argv[1], sys.argv[2], int(sys.argv[3])

    def governor_cowns():
        out = subprocess.run([REBEAM, "ctl", "--socket", SOCKET, "status", "--json"],
                             capture_output=True, text=True, timeout=30)
        return sum(p["cowns"] for p in json.loads(out.stdout)["processes"])

    def worker_store():
        @when()
        def probe():
            return len(_runtime.cown_store)
        wait()
        return probe.unwrap()

    counter = Cown(0)
    worker_store()  # the worker has run a behaviour: its store is warm
    wait()
    base = (governor_cowns(), worker_store(), len(_runtime.cown_store))
    kept = []
    for i in range(N):
        @when(counter)
        def inc(c, i=i):
            c.value += 1
            return i
        if i % (N // 5) == 0:
            kept.append((i, inc))  # held: must keep its value
        for _ in range(2):
            Cown(i)  # made and dropped at once
    wait()
    after = (governor_cowns(), worker_store(), len(_runtime.cown_store))
    print("base", *base, "after", *after, flush=True)
    print("kept", all(r.unwrap() == i for i, r in kept), len(kept), flush=True)
    with counter as n:
        print("counter", n, flush=True)
"""


def test_dropped_result_cowns_and_cowns_are_freed_in_the_governor_and_the_worker(tmp_path):
    socket = tmp_path / "ctl.sock"
    r = run_rebeam(tmp_path, SCRIPT, str(socket), REBEAM, str(N), workers=1, timeout=300,
                   rebeam_args=("--control-socket", str(socket)))
    check(r)
    out = {line.split()[0]: line.split()[1:] for line in lines(r) if line.split()[:1] in (["base"], ["kept"], ["counter"])}
    base_gov, base_store, base_main, _, after_gov, after_store, after_main = out["base"]
    assert out["kept"] == ["True", "5"], r.stdout
    assert out["counter"] == [str(N)], r.stdout
    # The held results stay (5 of them) and the probes' own result cowns come and go: a few
    # cowns either way, where 3 * N would be left if nothing were freed.
    slack = 5 + 4
    assert int(after_gov) <= int(base_gov) + slack, r.stdout
    assert int(after_store) <= int(base_store) + slack, r.stdout
    assert int(after_main) <= int(base_main) + slack, r.stdout
