"""A receiver that stops reading under a cast flood: its process leaves the casts in its
senders' rings once a bounded backlog waits in it, so its memory stays bounded and the sender
meets a full ring (a cast refused and counted), never silent loss; what was accepted arrives,
in order."""

from __future__ import annotations

from helpers import check, outputs, run_rebeam

FLOOD = """
import os, time
import rebeam
from rebeam import GenPy, Supervisor, call, cast, receive


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


class Sink(GenPy):
    name = "sink"

    def __init__(self):
        super().__init__()
        self.count, self.last, self.in_order = 0, -1, True

    @receive("who")
    def who(self, source, _):
        return os.getpid()

    @receive("hold")
    def hold(self, source, flag):
        # Busy until the sender says so: everything cast meanwhile waits.
        while not os.path.exists(flag):
            time.sleep(0.01)

    @receive("note")
    def note(self, source, msg):
        i, _blob = msg
        self.in_order = self.in_order and i == self.last + 1
        self.count, self.last = self.count + 1, i

    @receive("seen")
    def seen(self, source, _):
        return self.count, self.in_order


if __name__ == "__main__":
    Supervisor(modules=[Sink()])
    worker = call("sink", "who")[1]            # the route is cached: casts go direct
    before = rss_kb(worker)
    flag = os.path.abspath("go")
    assert cast("sink", "hold", flag)
    blob = b"x" * 1000
    sent = 0
    while sent < 100_000 and cast("sink", "note", (sent, blob)):
        sent += 1
    grown_mb = (rss_kb(worker) - before) / 1024
    print("refused before the end:", sent < 100_000, flush=True)
    print("accepted within the bound:", sent < 20_000, sent, flush=True)
    print("worker grew under 40 MB:", grown_mb < 40, round(grown_mb, 1), flush=True)
    print("dropped:", rebeam.stats(), flush=True)
    open(flag, "w").close()
    status, (count, in_order) = call("sink", "seen")
    print("seen:", status, count == sent, in_order, count, flush=True)
    rebeam.shutdown(0)
"""


def test_a_receiver_that_stops_reading_keeps_its_memory_bounded_and_its_sender_sees_drops(tmp_path):
    r = run_rebeam(tmp_path, FLOOD, timeout=180)
    check(r)
    out = "\n".join(outputs(r))
    assert "refused before the end: True" in out, r.stdout
    assert "accepted within the bound: True" in out, r.stdout
    assert "worker grew under 40 MB: True" in out, r.stdout
    assert "dropped: {'casts_dropped': 1}" in out, r.stdout
    assert "seen: ok True True" in out, r.stdout


CYCLE = """
import os, time
import rebeam
from rebeam import GenPy, Supervisor, call, cast, receive


class Sink(GenPy):
    name = "sink"

    def __init__(self):
        super().__init__()
        self.count = 0

    @receive("who")
    def who(self, source, _):
        return os.getpid()

    @receive("hold")
    def hold(self, source, flag):
        while not os.path.exists(flag):
            time.sleep(0.01)

    @receive("note")
    def note(self, source, _):
        self.count += 1

    @receive("seen")
    def seen(self, source, _):
        return self.count


class Relay(GenPy):
    name = "relay"

    @receive("who")
    def who(self, source, _):
        return os.getpid()

    @receive("ask")
    def ask(self, source, _):
        # Back into the flooded process, to an actor there that is free.
        return call("peer", "ping", timeout=3)


class Peer(GenPy):
    name = "peer"

    @receive("who")
    def who(self, source, _):
        return os.getpid()

    @receive("ping")
    def ping(self, source, _):
        return "pong"


if __name__ == "__main__":
    Supervisor(modules=[Sink(), Relay(), Peer()])
    sink, relay, peer = (call(n, "who")[1] for n in ("sink", "relay", "peer"))
    print("placed", sink == peer != relay, flush=True)
    assert call("relay", "ask")[0] == "ok"     # the relay's route to the peer is cached
    flag = os.path.abspath("go")
    assert cast("sink", "hold", flag)
    sent = 0
    while sent < 100_000 and cast("sink", "note", sent):
        sent += 1
    print("flooded", sent < 100_000, flush=True)
    print("cycle", call("relay", "ask", timeout=10), flush=True)
    open(flag, "w").close()
    print("seen", call("sink", "seen", timeout=30)[1] == sent, flush=True)
    rebeam.shutdown(0)
"""


def test_a_call_cycle_through_a_flooded_process_is_answered(tmp_path):
    r = run_rebeam(tmp_path, CYCLE, timeout=180)
    check(r)
    out = "\n".join(outputs(r))
    assert "placed True" in out, r.stdout
    assert "flooded True" in out, r.stdout
    # Before, the flooded process read none of its rings, the relay's call to the peer too.
    assert "cycle ('ok', ('ok', 'pong'))" in out, r.stdout
    assert "seen True" in out, r.stdout
