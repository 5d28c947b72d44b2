"""A CPU-bound parallel map with rebeam.Executor, where one task crashes its worker midway.

Run it with ``rebeam main.py`` (or plain ``python main.py``). ``concurrent.futures`` users know
the shape: ``rebeam.Executor`` is a drop-in ``ProcessPoolExecutor``. The difference shows at
task 13, which kills its own process as a segfault or a C extension's ``abort()`` would: with
``ProcessPoolExecutor`` that breaks the whole pool (every pending future raises
``BrokenProcessPool``); here only that task's future raises ``rebeam.WorkerCrashed``, the
worker is replaced, and the map goes on.
"""

import concurrent.futures as cf
import os

import rebeam

TASKS = 40
CRASHES_AT = 13


def count_primes(n: int) -> int:
    """Primes below ``n``, the slow way: real CPU work, one task per number."""
    if n == CRASHES_AT * 1000:
        os._exit(1)  # dies as a segfault would: no exception, no cleanup
    return sum(all(k % d for d in range(2, int(k**0.5) + 1)) for k in range(2, n))


def main() -> None:
    limits = [i * 1000 for i in range(1, TASKS + 1)]
    with rebeam.Executor() as ex:
        futures = {ex.submit(count_primes, n): n for n in limits}
        done = 0
        results = {}
        # tqdm(cf.as_completed(futures), total=len(futures)) shows the same progress as a bar.
        for f in cf.as_completed(futures):
            done += 1
            n = futures[f]
            try:
                results[n] = f.result()
            except rebeam.WorkerCrashed:
                print(f"task {n}: its worker crashed; the rest go on", flush=True)
            if done % 10 == 0:
                print(f"progress: {done}/{len(futures)}", flush=True)
        # map gives results in order; chunksize sends several numbers per task.
        small = list(ex.map(count_primes, range(100, 1100, 100), chunksize=4))
    print(f"finished: {len(results)} of {TASKS} tasks", flush=True)
    print(f"primes below 40000: {results[40000]}", flush=True)
    print(f"primes below 100..1000 by 100: {small}", flush=True)


if __name__ == "__main__":
    main()
