"""`RemoteError.reraise()` end to end: a handler's exception raised in the caller as its own type."""

from __future__ import annotations

from helpers import check, lines, run_rebeam


def test_remote_exceptions_reraise_as_their_own_types(tmp_path):
    r = run_rebeam(tmp_path, '''
        import rebeam
        from rebeam import GenPy, Supervisor, receive
        from rebeam.errors import RemoteError
        from scriptlib import retry_call

        class AppError(Exception):
            pass

        class Failing(GenPy):
            name = "failing"

            @receive("key")
            def key(self, source, _):
                return {}["missing"]

            @receive("value")
            def value(self, source, _):
                raise ValueError("not a number")

            @receive("app")
            def app(self, source, _):
                raise AppError("the app failed")  # LINE-OF-APP-ERROR

            @receive("local")
            def local(self, source, _):
                class Local(Exception):
                    pass
                raise Local("defined in the handler")

        if __name__ == "__main__":
            Supervisor(modules=[Failing()], max_restarts=10)
            for subject in ("key", "value", "app", "local"):
                status, err = retry_call("failing", subject)  # each crash restarts the actor
                try:
                    err.reraise()
                except RemoteError as e:
                    print(subject, "-> RemoteError", e.remote_type, flush=True)
                except Exception as e:
                    cause = e.__cause__
                    print(subject, "->", type(e).__name__, e.args, "from", type(cause).__name__, flush=True)
                    if subject == "app":
                        print("is the script's class:", type(e) is AppError, flush=True)
                        print("cause names the line:", "LINE-OF-APP-ERROR" in cause.remote_traceback, flush=True)
            rebeam.shutdown()
    ''')
    check(r)
    out = lines(r)
    assert "key -> KeyError ('missing',) from RemoteError" in out
    assert "value -> ValueError ('not a number',) from RemoteError" in out
    assert "app -> AppError ('the app failed',) from RemoteError" in out
    assert "is the script's class: True" in out and "cause names the line: True" in out
    assert "local -> RemoteError Failing.local.<locals>.Local" in out
