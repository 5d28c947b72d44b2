"""The Python actor of the host benchmark (benches/host): the policy the Rust host calls.

Its ``step`` handler calls ``host_step.step``, the same function the bench calls in-process
through PyO3.
"""

import time

from host_step import step
from rebeam import GenPy, cancelled, receive, requires_armed


class Policy(GenPy):
    @receive("step")
    def on_step(self, source, state):
        return step(state)

    @receive("gated_step")
    @requires_armed
    def on_gated_step(self, source, state):
        return step(state)

    @receive("spin")
    @requires_armed
    def spin(self, source, seconds):
        """Gated work that runs until a disarm cancels it (or ``seconds`` pass)."""
        end = time.monotonic() + seconds
        while time.monotonic() < end and not cancelled():
            time.sleep(0.0005)
        return "cancelled" if cancelled() else "finished"

    @receive("fault")
    def fault(self, source, message):
        raise RuntimeError("the benchmark's policy crashes")
