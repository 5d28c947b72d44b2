"""`async def` handlers and `@start()` hooks: run on the worker's event loop, one message at a
time per actor, able to `await rebeam.acall(...)` other actors, in real runs."""

from __future__ import annotations

import textwrap

from helpers import check, lines, run_python, run_rebeam

PRELUDE = textwrap.dedent(
    '''
    import asyncio, os
    import concurrent.futures as cf
    import rebeam
    from rebeam import GenPy, Supervisor, acall, call, call_async, receive, self_pid, start

    class Back(GenPy):
        name = "back"

        @receive("double")
        def double(self, source, n):
            return n * 2

        @receive("source")
        def source(self, source, _):
            return source

    class Front(GenPy):
        name = "front"

        @start()
        async def init(self):
            self.state["count"] = 0
            self.state["seeded"] = (await acall("back", "double", 21))[1]

        @receive("seeded")
        async def seeded(self, source, _):
            return self.state["seeded"]

        @receive("relay")
        async def relay(self, source, n):
            status, value = await acall("back", "double", n)
            return value + 1

        @receive("count")
        async def count(self, source, order):
            # Read, yield to the loop, write: a second message run meanwhile would lose an update.
            seen = self.state["count"]
            await asyncio.sleep(0.001)
            self.state["count"] = seen + 1
            self.state.setdefault("order", []).append(order)
            return self.state["count"]

        @receive("order")
        def order(self, source, _):
            return self.state["order"]

        @receive("who")
        async def who(self, source, _):
            return self_pid(), (await acall("back", "source"))[1]

        @receive("fail")
        async def fail(self, source, _):
            await asyncio.sleep(0)
            raise ValueError("failed after an await")  # LINE-OF-ASYNC-FAILURE

        @receive("wait_for")
        async def wait_for(self, source, path):
            while not os.path.exists(path):
                await asyncio.sleep(0.01)
            return "released"

    class Quick(GenPy):
        name = "quick"

        @receive("ping")
        async def ping(self, source, _):
            await asyncio.sleep(0)
            return "pong"
    '''
)


def script(body: str) -> str:
    """A program: the prelude, then `body` (under rebeam, it ends with `rebeam.shutdown()`: a
    running tree outlives the script's body)."""
    return PRELUDE + textwrap.dedent(body)


def test_async_handlers_await_other_actors_one_message_at_a_time(tmp_path):
    r = run_rebeam(tmp_path, script('''
        if __name__ == "__main__":
            Supervisor(modules=[Back(), Front()])
            print("start hook:", call("front", "seeded"), flush=True)
            print("relay:", call("front", "relay", 5), flush=True)
            futures = [call_async("front", "count", i, timeout=30) for i in range(50)]
            cf.wait(futures, timeout=60)
            print("counted:", sorted(f.result()[1] for f in futures) == list(range(1, 51)), flush=True)
            print("in order:", call("front", "order")[1] == list(range(50)), flush=True)
            me, seen_by_back = call("front", "who")[1]
            print("runs as itself:", me.name, seen_by_back == me, flush=True)
            status, err = call("front", "fail")
            print("failure:", status, err, flush=True)
            print("names the line:", "LINE-OF-ASYNC-FAILURE" in err.remote_traceback, flush=True)
            rebeam.shutdown()
    '''))
    check(r)
    out = lines(r)
    assert "start hook: ('ok', 42)" in out
    assert "relay: ('ok', 11)" in out
    assert "counted: True" in out and "in order: True" in out
    assert "runs as itself: front True" in out
    assert "failure: error ValueError: failed after an await" in out
    assert "names the line: True" in out


def test_an_awaiting_handler_holds_up_no_other_actor_of_its_worker(tmp_path):
    # One worker: both actors' coroutines share its event loop.
    r = run_rebeam(tmp_path, script('''
        if __name__ == "__main__":
            Supervisor(modules=[Back(), Front(), Quick()])
            waiting = call_async("front", "wait_for", "gate", timeout=30)
            print("meanwhile:", call("quick", "ping", timeout=10), waiting.done(), flush=True)
            open("gate", "w").close()
            print("then:", waiting.result(timeout=30), flush=True)
            rebeam.shutdown()
    '''), workers=1)
    check(r)
    out = lines(r)
    assert "meanwhile: ('ok', 'pong') False" in out
    assert "then: ('ok', 'released')" in out


def test_async_handlers_in_plain_python(tmp_path):
    r = run_python(tmp_path, script('''
        Supervisor(modules=[Back(), Front()])
        print("relay:", call("front", "relay", 20), flush=True)
    '''))
    check(r)
    assert "relay: ('ok', 41)" in lines(r)
