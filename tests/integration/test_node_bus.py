"""Bus topics across nodes, end to end on loopback: a publication on one node reaches the
subscribers of the others in the order made, a reserved prefix stays closed to another node's
publications, and a subscriber's node lost stops nothing."""

from __future__ import annotations

import os
import signal
import textwrap

from test_nodes import CALLER, cookie_file, finish, free_port

PUBLISHER = CALLER + textwrap.dedent(
    '''
    import pathlib
    from rebeam import ReservedTopic

    def wait_file(name):
        end = time.monotonic() + 30
        while not pathlib.Path(name).exists():
            if time.monotonic() > end:
                sys.exit(4)
            time.sleep(0.02)

    wait_nodes("a", "b", "c")
    wait_file("go")
    for i in range(200):
        rebeam.publish("news.first", i)
    # Opened on this node (--allow-publish), closed on the others.
    rebeam.publish("safety.injected", "armed")
    try:
        rebeam.publish("safety.other", "armed")
    except ReservedTopic:
        print("refused here too", flush=True)
    rebeam.publish("news.end", None)
    wait_file("go2")
    for i in range(100):
        rebeam.publish("news.later", i)
    rebeam.publish("news.end2", None)
    print("PUBLISHED", flush=True)
    '''
)

SUBSCRIBER = CALLER + textwrap.dedent(
    '''
    got = []
    rebeam.on("news.*", lambda topic, v: got.append((topic, v)), queue=4096)
    rebeam.on("safety.*", lambda topic, v: got.append((topic, v)))
    print("SUBSCRIBED", flush=True)
    last = sys.argv[1]
    end = time.monotonic() + 60
    while not any(t == last for t, _ in got) and time.monotonic() < end:
        time.sleep(0.02)
    first = [v for t, v in got if t == "news.first"]
    later = [v for t, v in got if t == "news.later"]
    print("first in order:", first == list(range(200)), len(first), flush=True)
    print("later in order:", later == list(range(100)), len(later), flush=True)
    print("reserved:", [t for t, _ in got if t.startswith("safety.")], flush=True)
    print("GOT", last, flush=True)
    if last == "news.end":
        time.sleep(600)
    '''
)


def test_a_publication_reaches_the_subscribers_of_every_other_node_in_order(nodes, tmp_path):
    cookie = cookie_file(tmp_path, "s3cret-shared")
    port = free_port()
    publisher = nodes.start("a", PUBLISHER, "--listen", f"tcp/127.0.0.1:{port}",
                            "--allow-publish", "safety.injected", cookie=cookie)
    connect = ("--connect", f"tcp/127.0.0.1:{port}")
    b = nodes.start("b", SUBSCRIBER.replace("sys.argv[1]", "'news.end2'"), *connect, cookie=cookie)
    c = nodes.start("c", SUBSCRIBER.replace("sys.argv[1]", "'news.end'"), *connect, cookie=cookie)
    seen_b = nodes.wait_line(b, "SUBSCRIBED")
    nodes.wait_line(c, "SUBSCRIBED")
    (tmp_path / "go").touch()
    seen_c = nodes.wait_line(c, "GOT news.end")
    assert "first in order: True 200" in seen_c, seen_c
    assert "reserved: []" in seen_c, seen_c
    # A subscriber's node lost: the publisher and the other subscribers go on.
    os.kill(c.pid, signal.SIGKILL)
    c.wait()
    (tmp_path / "go2").touch()
    code, out, err = finish(publisher)
    assert code == 0, f"{out}\n--- stderr ---\n{err}"
    assert "refused here too" in out and "PUBLISHED" in out, out
    code, out, err = finish(b)
    out = seen_b + out
    assert code == 0, f"{out}\n--- stderr ---\n{err}"
    assert "first in order: True 200" in out, out
    assert "later in order: True 100" in out, out
    # Another node's publication under a reserved prefix is refused here, and said so.
    assert "reserved: []" in out, out
    assert "a publication from node a on 'safety.injected' was refused" in err, err
