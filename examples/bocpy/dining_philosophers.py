"""Dining philosophers demo using cowns."""

import argparse
import logging
from typing import NamedTuple

from rebeam.boc import Cown, quiesce, wait, when


class Fork:
    """A fork that tracks how many times it is used."""

    def __init__(self, hunger: int):
        """Create a fork with an associated philosopher hunger counter."""
        self.hunger = hunger
        self.uses = 0

    def use(self):
        """Increment the usage counter when a philosopher eats."""
        self.uses += 1


class Philosopher(NamedTuple("Philosopher", [("index", int), ("left", Cown),
                                             ("right", Cown), ("hunger", Cown)])):
    """Philosopher that coordinates access to two forks."""

    def eat(self: "Philosopher"):
        """Attempt to eat; reschedule until hunger reaches zero."""
        index = self.index

        # BOC acquires both forks atomically in cown-id order, so the classic deadlock cannot occur.
        @when(self.left, self.right, self.hunger)
        def take_bite(left: Cown[Fork], right: Cown[Fork], hunger: Cown[int],
                      index=index):
            left.value.use()
            right.value.use()
            print(f"Philosopher {index} has taken a bite")
            hunger.value -= 1
            if hunger.value > 0:
                Philosopher(index, left, right, hunger).eat()
            else:
                print(f"Philosopher {index} is full")


def main():
    """Run the dining philosophers example."""
    parser = argparse.ArgumentParser("Dining Philosophers")
    parser.add_argument("--hunger", "-g", type=int, default=4)
    parser.add_argument("--philosophers", "-p", type=int, default=5)
    parser.add_argument("--loglevel", "-l", type=str, default=logging.WARNING)
    args = parser.parse_args()

    logging.basicConfig(level=args.loglevel)
    forks = [Cown(Fork(args.hunger)) for _ in range(args.philosophers)]
    for i in range(args.philosophers):
        Philosopher.eat(Philosopher(i, forks[i-1], forks[i], Cown(args.hunger)))

    quiesce()

    for i, f in enumerate(forks):
        with f as fork:
            print(f"Fork {i}: uses={fork.uses}, hunger={fork.hunger}")

    wait()


if __name__ == "__main__":
    main()
