"""What ``rebeam.cast`` hands the native connection: plain values pickled as they are (the
same bytes as the general path, no buffers), anything else through the general path."""

import pickle

import numpy as np
import pytest

from rebeam import _runtime, actor


class Recorder:
    """Stands in for the native connection: keeps what each cast would send."""

    def __init__(self):
        self.sent = []
        self.paths = []

    def sys_path(self, paths):
        self.paths.append(paths)

    def cast(self, target, subject, data, buffers, sender):
        self.sent.append((target, subject, bytes(data), list(buffers), sender))
        return True


@pytest.fixture
def conn(monkeypatch):
    recorder = Recorder()
    monkeypatch.setattr(_runtime, "_conn", recorder)
    monkeypatch.setattr(_runtime, "_sent_path", None)
    return recorder


@pytest.mark.parametrize("value", [0, -(2**70), 1.5, "héllo", b"\x00" * 3, True, None])
def test_a_plain_value_is_sent_as_the_general_path_would_pickle_it(conn, value):
    assert actor.cast("b", "inc", value)
    ((target, subject, data, buffers, _),) = conn.sent
    assert (target, subject, buffers) == ("b", "inc", [])
    assert data == _runtime.dumps(value, "x")[0]
    assert pickle.loads(data) == value
    assert conn.paths, "sys.path is shared before the first message, whatever its value"


def test_other_values_keep_the_general_path_with_out_of_band_buffers(conn):
    array = np.arange(10)
    assert actor.cast("b", "arr", {"a": array})
    ((_, _, data, buffers, _),) = conn.sent
    assert len(buffers) == 1
    assert (pickle.loads(data, buffers=buffers)["a"] == array).all()


def test_a_subclass_of_a_plain_type_is_not_taken_for_it(conn):
    class Tagged(int):
        pass

    # Defined here, so plain pickle cannot name it: only the general path (by value) sends it.
    assert actor.cast("b", "inc", Tagged(3))
    ((_, _, data, buffers, _),) = conn.sent
    received = pickle.loads(data, buffers=buffers)
    assert (type(received).__name__, received) == ("Tagged", 3)


def test_a_target_that_is_no_name_or_process_id_is_refused(conn):
    with pytest.raises(TypeError, match="a target is an actor's name"):
        actor.cast(3.5, "inc", 1)
