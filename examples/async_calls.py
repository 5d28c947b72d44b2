"""Futures and asyncio: many calls in flight at once, from threads or from coroutines.

    rebeam async_calls.py       # or: python async_calls.py (library mode)

Two slow actors answer lookups. The script asks them many questions at once: with futures
(`call_async` and `concurrent.futures.as_completed`), then from an asyncio coroutine (`acall`,
`acast`) while a heartbeat task keeps running. A third actor is an asyncio service: its
`async def` handler awaits the other two, and with `max_concurrency` it serves several
requests at once. Last, a handler's exception is turned back into the exception it was
(`RemoteError.reraise`).
"""

import asyncio
import concurrent.futures as cf
import time

import rebeam
from rebeam import GenPy, Supervisor, acall, acast, call_async, receive

CITIES = {"Athens": 31.7, "Cairo": 33.0, "Oslo": 12.5, "Lima": 19.2}


class Weather(GenPy):
    """Answers one lookup at a time, slowly, as a remote service would."""

    def __init__(self, name):
        self.name = name

    @receive("temperature")
    def temperature(self, source, city):
        time.sleep(0.2)
        return CITIES[city]  # an unknown city raises KeyError: the caller gets a RemoteError

    @receive("note")
    def note(self, source, text):
        print(f"noted: {text}", flush=True)


class Report(GenPy):
    """An asyncio service: its handler awaits the other actors, all of them at once, and up
    to three requests are in flight together (each awaiting its own lookups)."""

    name = "report"
    max_concurrency = 3

    @receive("hottest")
    async def hottest(self, source, cities):
        answers = await asyncio.gather(*(acall(f"weather-{i % 2}", "temperature", c) for i, c in enumerate(cities)))
        return max(zip((value for _, value in answers), cities, strict=True))[1]


def with_futures():
    # Each city goes to one of two actors: the four lookups take two rounds, not four.
    futures = {call_async(f"weather-{i % 2}", "temperature", city): city for i, city in enumerate(CITIES)}
    answers = {futures[f]: f.result()[1] for f in cf.as_completed(futures)}
    print("with futures:", dict(sorted(answers.items())), flush=True)


async def with_asyncio():
    beats = 0

    async def heartbeat():
        nonlocal beats
        while True:
            await asyncio.sleep(0.02)
            beats += 1

    task = asyncio.create_task(heartbeat())
    answers = await asyncio.gather(*(acall(f"weather-{i % 2}", "temperature", c) for i, c in enumerate(CITIES)))
    task.cancel()
    print("with asyncio:", dict(zip(CITIES, (value for _, value in answers), strict=True)), flush=True)
    print("the event loop kept running:", beats > 0, flush=True)
    print("note delivered:", await acast("weather-0", "note", "all four looked up"), flush=True)

    print("hottest:", (await acall("report", "hottest", list(CITIES)))[1], flush=True)
    pairs = [["Athens", "Oslo"], ["Cairo", "Lima"], ["Oslo", "Lima"]]
    answers = await asyncio.gather(*(acall("report", "hottest", pair) for pair in pairs))
    print("hottest of each pair, served together:", [value for _, value in answers], flush=True)

    status, err = await acall("weather-1", "temperature", "Atlantis")
    try:
        err.reraise()
    except KeyError as e:
        print(f"unknown city: {status}, KeyError {e}, raised remotely ({type(e.__cause__).__name__})", flush=True)


if __name__ == "__main__":
    Supervisor(modules=[Weather("weather-0"), Weather("weather-1"), Report()])
    with_futures()
    asyncio.run(with_asyncio())
    rebeam.shutdown()
