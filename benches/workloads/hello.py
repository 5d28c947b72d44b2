"""Start-to-first-reply: `rebeam --workers 2 hello.py` starts one actor, calls it once, stops.

benches/bench.py times the whole command from outside (wall clock); the line printed here is
the part spent inside the script (from its first line to the reply).
"""

import time

_t0 = time.perf_counter()
_epoch0 = time.time()

import rebeam  # noqa: E402
from rebeam import GenPy, Supervisor, call, receive, response_ok  # noqa: E402


class Hello(GenPy):
    name = "hello"

    @receive("hi")
    def hi(self, source, message):
        return response_ok("hello " + message)


Supervisor(modules=[Hello()])
reply = call("hello", "hi", "world")
assert reply == ("ok", "hello world"), reply
print(
    f'BENCH_JSON {{"in_script_ms": {(time.perf_counter() - _t0) * 1000:.3f}, '
    f'"t_script_epoch": {_epoch0:.6f}, "t_reply_epoch": {time.time():.6f}}}',
    flush=True,
)
rebeam.shutdown(0)
