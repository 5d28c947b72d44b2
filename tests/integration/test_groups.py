"""`rebeam.Group`, `members` and `broadcast`, in real runs under `rebeam` and in plain `python`."""

from __future__ import annotations

import textwrap

from helpers import check, lines, run_python, run_rebeam

PRELUDE = textwrap.dedent(
    '''
    import collections, os, time
    import rebeam
    from rebeam import GenPy, Group, Supervisor, broadcast, call, cast, members, receive, spawn
    from rebeam.errors import NoProcess, RemoteError
    from scriptlib import wait_for

    class Worker(GenPy):
        @receive("who")
        def who(self, source, _):
            return self.pid.id

        @receive("os_pid")
        def os_pid(self, source, _):
            return os.getpid()

        @receive("crash_if")
        def crash_if(self, source, target):
            if self.pid.id == target:
                raise ValueError("asked to crash")
            return "fine"

        @receive("die")
        def die(self, source, _):
            os._exit(3)

        @receive("sleep")
        def sleep(self, source, seconds):
            time.sleep(seconds)
            return self.pid.id
    '''
)


def script(body: str) -> str:
    return PRELUDE + textwrap.dedent(body)


def test_calls_to_a_group_go_round_robin_and_members_keep_their_order(tmp_path):
    r = run_rebeam(tmp_path, script('''
        if __name__ == "__main__":
            Supervisor(modules=[Group(Worker(), 3, "pool")])
            ids = [p.id for p in members("pool")]
            print("members:", len(ids), len(set(ids)), flush=True)
            answers = [call("pool", "who")[1] for _ in range(9)]
            print("spread:", sorted(collections.Counter(answers).values()), flush=True)
            print("in member order:", answers[:3] == ids and answers[3:6] == ids, flush=True)
            print("broadcast:", broadcast("pool", "who") == [("ok", i) for i in ids], flush=True)
            print("casts:", all(cast("pool", "who") for _ in range(3)), flush=True)
            rebeam.shutdown()
    '''))
    check(r)
    assert lines(r) == ["members: 3 3", "spread: [3, 3, 3]", "in member order: True", "broadcast: True",
                        "casts: True"]


def test_a_restarted_member_takes_its_place_and_the_group_stays_whole(tmp_path):
    r = run_rebeam(tmp_path, script('''
        if __name__ == "__main__":
            Supervisor(modules=[Group(Worker(), 3, "pool")])
            before = [p.id for p in members("pool")]
            print("killed:", call(rebeam.ProcessID(before[1]), "die")[0], flush=True)
            after = wait_for("the member back", lambda: (m := [p.id for p in members("pool")]) and len(m) == 3
                             and m[1] != before[1] and m)
            print("others kept:", after[0] == before[0] and after[2] == before[2], flush=True)
            print("answers:", sorted(call("pool", "who")[1] for _ in range(3)) == sorted(after), flush=True)
            rebeam.shutdown()
    '''))
    check(r)
    assert lines(r) == ["killed: error", "others kept: True", "answers: True"]


def test_a_broadcast_gives_each_member_its_own_answer_when_one_crashes(tmp_path):
    r = run_rebeam(tmp_path, script('''
        if __name__ == "__main__":
            Supervisor(modules=[Group(Worker(), 3, "pool")])
            ids = [p.id for p in members("pool")]
            got = broadcast("pool", "crash_if", ids[1], timeout=10)
            print("statuses:", [s for s, _ in got], flush=True)
            print("middle:", type(got[1][1]).__name__, flush=True)
            print("others:", [got[0][1], got[2][1]], flush=True)
            try:
                broadcast("nobody", "who")
            except NoProcess:
                print("unknown group: NoProcess", flush=True)
            rebeam.shutdown()
    '''))
    check(r)
    assert lines(r) == ["statuses: ['ok', 'error', 'ok']", "middle: RemoteError", "others: ['fine', 'fine']",
                        "unknown group: NoProcess"]


def test_least_busy_sends_calls_past_a_member_that_is_busy(tmp_path):
    r = run_rebeam(tmp_path, script('''
        if __name__ == "__main__":
            Supervisor(modules=[Group(Worker(), 2, "pool", balance=rebeam.LEAST_BUSY)])
            ids = [p.id for p in members("pool")]
            slow = rebeam.call_async(rebeam.ProcessID(ids[0]), "sleep", 2.0, timeout=10)
            # Member 0 is busy with `slow`; every call by name goes to member 1 meanwhile.
            print("past the busy one:", [call("pool", "who")[1] for _ in range(4)] == [ids[1]] * 4, flush=True)
            print("slow:", slow.result()[1] == ids[0], flush=True)
            rebeam.shutdown()
    '''))
    check(r)
    assert lines(r) == ["past the busy one: True", "slow: True"]


def test_a_group_name_cannot_be_an_actors_too(tmp_path):
    r = run_rebeam(tmp_path, script('''
        class Named(Worker):
            name = "pool"

        if __name__ == "__main__":
            Supervisor(modules=[Group(Worker(), 2, "pool")])
            try:
                spawn(Named())
            except rebeam.StartError as e:
                print("refused:", "group" in str(e), flush=True)
            try:
                members("nobody")
            except NoProcess:
                print("members of nobody: NoProcess", flush=True)
            rebeam.shutdown()
    '''))
    check(r)
    assert lines(r) == ["refused: True", "members of nobody: NoProcess"]


def test_groups_work_in_library_mode_spawned_and_seen_by_the_members_themselves(tmp_path):
    r = run_python(tmp_path, script('''
        class Asker(GenPy):
            @receive("members")
            def ask(self, source, name):
                return [p.id for p in members(name)]

        if __name__ == "__main__":
            spawned = spawn(Group(Worker(), 2, "pool"))
            asker = spawn(Asker())
            ids = [p.id for p in spawned]
            print("spawned:", ids == [p.id for p in members("pool")], flush=True)
            print("seen alike:", call(asker, "members", "pool")[1] == ids, flush=True)
            print("broadcast:", broadcast("pool", "who") == [("ok", i) for i in ids], flush=True)
            rebeam.shutdown()
    '''))
    check(r)
    assert lines(r) == ["spawned: True", "seen alike: True", "broadcast: True"]
