"""Start-up: what the first reply waits for gets the cores first. The spares start only once
the start-up has settled (the main process is ready and no actor is starting), and the main
process of a run does not load library mode's machinery."""

from __future__ import annotations

from helpers import check, run_rebeam

SPARES_WAIT = '''
import os, sys, time
import rebeam
from rebeam import GenPy, Supervisor, call, receive, start
from scriptlib import wait_for

def governor_children(governor):
    """The governor's live child processes: the main process and every worker (not the
    zygote, which forks workers and hosts no actor)."""
    found = 0
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                with open(f"/proc/{pid}/comm") as f:
                    zygote = f.read().strip() == "rebeam-zygote"
            except OSError:
                continue
            if fields[0] != "Z" and int(fields[1]) == governor and not zygote:
                found += 1
    return found

class Slow(GenPy):
    name = "slow"

    @start()
    def init(self):
        # Long enough for a spare started with the pool's workers to show up meanwhile.
        time.sleep(1.0)
        self.state["seen"] = governor_children(os.getppid())

    @receive("seen")
    def seen(self, source, _):
        return self.state["seen"]

if __name__ == "__main__":
    Supervisor(modules=[Slow()])
    print("while starting", call("slow", "seen")[1], flush=True)
    governor = os.getppid()
    wait_for("the spare", lambda: governor_children(governor) == 4)
    print("after", governor_children(governor), flush=True)
    print("library mode loaded", "rebeam._library" in sys.modules, flush=True)
    rebeam.shutdown(0)
'''


def test_the_spare_starts_after_the_first_actor_and_main_skips_library_mode(tmp_path):
    r = run_rebeam(tmp_path, SPARES_WAIT, workers=2)
    check(r)
    out = r.stdout.splitlines()
    # The main process and the two pool workers, no spare, while the first actor starts.
    assert "while starting 3" in out, r.stdout
    assert "after 4" in out, r.stdout
    assert "library mode loaded False" in out, r.stdout
