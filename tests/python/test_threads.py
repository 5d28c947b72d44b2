"""Raising in another thread and clearing what did not land (``rebeam._threads``)."""

import threading

from rebeam import _threads


class Landed(Exception):
    pass


def spinner(result: list, started: threading.Event):
    """A thread spinning until an exception lands in it, then clearing as a worker does."""

    def spin():
        started.set()
        try:
            while True:
                pass
        except Landed:
            result.append(threading.get_ident() in _threads._aimed_at)
            _threads.clear_async_exc()
            result.append(threading.get_ident() in _threads._aimed_at)

    return threading.Thread(target=spin)


def test_an_exception_raised_in_a_thread_lands_and_its_clear_forgets_the_thread():
    started, result = threading.Event(), []
    t = spinner(result, started)
    t.start()
    started.wait()
    _threads.raise_in_thread(t.ident, Landed)
    t.join(10)
    # Noted while it could be pending; after the clear, nothing is pending for that thread.
    assert result == [True, False]


def test_clearing_a_thread_nothing_was_raised_in_is_a_no_op():
    _threads.clear_async_exc()
    assert threading.get_ident() not in _threads._aimed_at


def test_end_interruptible_forgets_the_work_under_the_lock():
    lock, seen = threading.Lock(), []
    _threads.end_interruptible(lock, lambda: seen.append(lock.locked()))
    assert seen == [True] and not lock.locked()
