"""Large values cross without copies at the Python boundary: an array arrives as a read-only
view of the bytes received, both ways, and its contents are exact."""

from __future__ import annotations

import pytest

from helpers import check, run_rebeam

PROGRAM = """
import numpy as np
import rebeam
from rebeam import GenPy, Supervisor, call, cast, receive, response_ok, shutdown


class Sink(GenPy):
    name = "sink"

    @receive("inspect")
    def inspect(self, source, a):
        view = memoryview(a)
        return response_ok((a.flags.writeable, view.readonly, float(a.sum()), a.dtype.str, a.shape))

    @receive("double")
    def double(self, source, a):
        try:
            a *= 2                                # in place: refused, the view is read-only
        except ValueError as e:
            return response_ok(("refused", str(e), a * 2))
        return response_ok(("changed", None, a))

    @receive("bytes")
    def echo_bytes(self, source, b):
        return response_ok((len(b), b[:4], b[-4:]))


if __name__ == "__main__":
    Supervisor(modules=[Sink()])
    a = np.arange(4 * 1024 * 1024, dtype=np.float64).reshape(1024, 4096)  # 32 MiB
    print("inspect", call("sink", "inspect", a, timeout=60)[1], flush=True)
    status, (what, why, doubled) = call("sink", "double", a, timeout=60)
    print("double", what, doubled.flags.writeable, bool((doubled == a * 2).all()), flush=True)
    print("sender's array still writable", a.flags.writeable, flush=True)
    a[0, 0] = -1.0                                # the sender's own array is untouched and its own
    print("small", call("sink", "inspect", np.ones(3))[1], flush=True)
    big = bytes(range(256)) * (1 << 17)           # 32 MiB in-band bytes
    print("bytes", call("sink", "bytes", big, timeout=60)[1], flush=True)
    shutdown(0)
"""


def test_arrays_arrive_as_read_only_views_with_exact_contents(tmp_path):
    pytest.importorskip("numpy")
    r = run_rebeam(tmp_path, PROGRAM, timeout=120)
    check(r)
    n = 4 * 1024 * 1024
    assert f"inspect (False, True, {float(n * (n - 1) / 2)}, '<f8', (1024, 4096))" in r.stdout, r.stdout
    # The worker's reply is a new array, which arrives read-only in turn.
    assert "double refused False True" in r.stdout, r.stdout
    assert "sender's array still writable True" in r.stdout
    assert "small (False, True, 3.0, '<f8', (3,))" in r.stdout, r.stdout
    assert "bytes (33554432, b'\\x00\\x01\\x02\\x03', b'\\xfc\\xfd\\xfe\\xff')" in r.stdout, r.stdout
