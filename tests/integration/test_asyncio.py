"""`await rebeam.acall(...)` and `await rebeam.acast(...)`: calls that never block the event
loop, and the warning a blocking `call()` inside a running loop gives, in real runs."""

from __future__ import annotations

import textwrap

from helpers import check, lines, run_python, run_rebeam

PRELUDE = textwrap.dedent(
    '''
    import asyncio, time, warnings
    import rebeam
    from rebeam import GenPy, Supervisor, acall, acast, receive

    class Echo(GenPy):
        def __init__(self, name):
            self.name = name

        @receive("double")
        def double(self, source, n):
            return n * 2

        @receive("sleep")
        def sleep(self, source, seconds):
            time.sleep(seconds)
            return "slept"
    '''
)


def script(body: str) -> str:
    """A program: the prelude, then `body`, which builds the tree and runs `main()` (under
    rebeam, it ends with `rebeam.shutdown()`: a running tree outlives the script's body)."""
    return PRELUDE + textwrap.dedent(body)


def test_a_ticker_keeps_running_while_a_one_second_acall_waits(tmp_path):
    r = run_rebeam(tmp_path, script('''
        async def main():
            ticks = 0

            async def ticker():
                nonlocal ticks
                while True:
                    await asyncio.sleep(0.01)
                    ticks += 1

            task = asyncio.create_task(ticker())
            answer = await acall("a", "sleep", 1.0, timeout=30)
            task.cancel()
            print("answer:", answer, flush=True)
            print("ticker advanced at least 10 times:", ticks >= 10, flush=True)

        if __name__ == "__main__":
            Supervisor(modules=[Echo("a")])
            asyncio.run(main())
            rebeam.shutdown()
    '''))
    check(r)
    out = lines(r)
    assert "answer: ('ok', 'slept')" in out
    assert "ticker advanced at least 10 times: True" in out  # a blocking call() gives 0


def test_ten_thousand_concurrent_acalls_complete(tmp_path):
    r = run_rebeam(tmp_path, script('''
        async def main():
            n = 10_000
            answers = await asyncio.gather(*(acall("ab"[i % 2], "double", i, timeout=120) for i in range(n)))
            print("all answered:", answers == [("ok", 2 * i) for i in range(n)], flush=True)

        if __name__ == "__main__":
            Supervisor(modules=[Echo("a"), Echo("b")])
            asyncio.run(main())
            rebeam.shutdown()
    '''), timeout=240)
    check(r)
    assert "all answered: True" in lines(r)


def test_acast_says_whether_the_message_reached_a_mailbox(tmp_path):
    r = run_rebeam(tmp_path, script('''
        async def main():
            print("to a:", await acast("a", "double", 1), flush=True)
            print("to nobody:", await acast("nobody", "double", 1), flush=True)

        if __name__ == "__main__":
            Supervisor(modules=[Echo("a")])
            asyncio.run(main())
            rebeam.shutdown()
    '''))
    check(r)
    out = lines(r)
    assert "to a: True" in out and "to nobody: False" in out


def test_cancelling_the_awaiting_task_forgets_the_call(tmp_path):
    r = run_rebeam(tmp_path, script('''
        async def main():
            from rebeam import futures as rf
            task = asyncio.create_task(acall("a", "sleep", 0.5, timeout=30))
            await asyncio.sleep(0.1)
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                print("cancelled", flush=True)
            print("next:", await acall("a", "double", 21, timeout=30), flush=True)
            await asyncio.sleep(0.2)
            print("left waiting:", len(rf._resolver._waiting), len(rf._resolver._early), flush=True)

        if __name__ == "__main__":
            Supervisor(modules=[Echo("a")])
            asyncio.run(main())
            rebeam.shutdown()
    '''))
    check(r)
    out = lines(r)
    assert "cancelled" in out and "next: ('ok', 42)" in out and "left waiting: 0 0" in out


def test_a_blocking_call_inside_a_running_loop_warns_once_naming_acall(tmp_path):
    r = run_rebeam(tmp_path, script('''
        def shown(caught):
            return [(w.category.__name__, "acall" in str(w.message)) for w in caught]

        async def main():
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                first, second = rebeam.call("a", "double", 1), rebeam.call("a", "double", 2)
            print("in the loop:", first, second, shown(caught), flush=True)

        if __name__ == "__main__":
            Supervisor(modules=[Echo("a")])
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                rebeam.call("a", "double", 0)
            print("outside a loop:", shown(caught), flush=True)
            asyncio.run(main())
            rebeam.shutdown()
    '''))
    check(r)
    out = lines(r)
    assert "outside a loop: []" in out
    assert "in the loop: ('ok', 2) ('ok', 4) [('RuntimeWarning', True)]" in out


def test_acall_and_acast_in_plain_python(tmp_path):
    r = run_python(tmp_path, script('''
        async def main():
            answers = await asyncio.gather(*(acall("a", "double", i) for i in range(100)))
            print("answers:", answers == [("ok", 2 * i) for i in range(100)], flush=True)
            print("cast:", await acast("a", "double", 1), flush=True)

        Supervisor(modules=[Echo("a")])
        asyncio.run(main())
    '''))
    check(r)
    out = lines(r)
    assert "answers: True" in out and "cast: True" in out
