"""Quickstart: a supervised pipeline that survives the crashes you trigger.

    rebeam main.py              # a bad record crashes the parser; it is restarted, work goes on
    rebeam main.py --segfault   # also crash a whole worker process with a segfault

Three actors, spread across worker processes: `parser` turns "city,temperature" lines into
records, `stats` keeps running totals, and `alerts` counts hot readings. Each runs one message
at a time, so their state needs no locks. The supervisor restarts whatever crashes.
"""

import ctypes
import sys
import time

import rebeam
from rebeam import ONE_FOR_ONE, GenPy, Supervisor, call, receive, response_ok, start


class Parser(GenPy):
    name = "parser"

    @receive("line")
    def line(self, source, text):
        city, temp = text.split(",")          # a malformed line raises: the actor crashes
        record = {"city": city.strip(), "temp": float(temp)}
        # call, not cast: the record is counted before the parser answers, so whoever asks
        # `stats` next sees it (FIFO holds per sender, and the next asker is the script).
        call("stats", "record", record)
        if record["temp"] > 30:
            call("alerts", "hot", record)
        return response_ok(record)

    @receive("segfault")
    def segfault(self, source, _):
        ctypes.string_at(0)                   # a crash in C: the whole worker process dies


class Stats(GenPy):
    name = "stats"

    @start()
    def init(self):
        self.state.update(count=0, total=0.0)

    @receive("record")
    def record(self, source, record):
        self.state["count"] += 1
        self.state["total"] += record["temp"]

    @receive("summary")
    def summary(self, source, _):
        n = self.state["count"]
        return response_ok({"records": n, "mean": round(self.state["total"] / n, 2) if n else None})


class Alerts(GenPy):
    name = "alerts"

    @start()
    def init(self):
        self.state["hot"] = []

    @receive("hot")
    def hot(self, source, record):
        self.state["hot"].append(record["city"])
        print(f"hot in {record['city']}: {record['temp']} °C")

    @receive("list")
    def list(self, source, _):
        return self.state["hot"]


LINES = ["Lisbon, 24.5", "Seville, 35.1", "this line is broken", "Oslo, 12.0", "Athens, 31.7"]


def call_parser(text):
    """Sends a line to the parser. Right after a crash its supervisor is restarting it and the
    name is free for a moment (as in Erlang), so a call then gets NoProcess: try again."""
    for _ in range(500):
        status, value = call("parser", "line", text)
        if not (status == "error" and isinstance(value, rebeam.NoProcess)):
            return status, value
        time.sleep(0.01)
    return status, value


def main():
    Supervisor(modules=[Parser(), Stats(), Alerts()], strategy=ONE_FOR_ONE)
    for text in LINES:
        status, value = call_parser(text)
        if status == "ok":
            print(f"parsed {value}")
        else:
            print(f"parser crashed on {text!r}: {value}  -> restarted by its supervisor")

    if "--segfault" in sys.argv:
        before = rebeam.whereis("parser")
        status, value = call("parser", "segfault")
        print(f"segfault: {status}, {type(value).__name__}: {value}")
        after = rebeam.whereis("parser")
        while after is None or after == before:  # its supervisor is restarting it
            time.sleep(0.01)
            after = rebeam.whereis("parser")
        print(f"parser restarted in a fresh worker: {before} -> {after}")
        print(f"parsed {call_parser('Cairo, 33.0')[1]}")

    print("summary:", call("stats", "summary")[1])
    print("hot cities:", call("alerts", "list")[1])
    rebeam.shutdown(0)


if __name__ == "__main__":
    main()
