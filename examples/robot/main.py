"""Robot: a motor that moves only while the host has armed the system.

    rebeam main.py        then, in another terminal, `rebeam ctl arm` and `rebeam ctl disarm`
                          when it asks
    python host.py        the same, with host.py typing those commands for you

Two pieces of Python and a host:

- `policy`, a function child, plans: ten times a second it publishes the next target on the
  topic "policy.target". It keeps planning whatever the safety state.
- `motor`, an actor, drives a simulated motor. It subscribes to "policy.target", keeps the
  newest target, and sends itself a "move". Its move handler is `@requires_armed`: the
  governor refuses it before it starts unless the host has armed the system. A move
  integrates the position towards the target in small steps, checking `rebeam.cancelled()`
  at each one.
- The host (you at a terminal, or host.py playing you) arms and disarms with `rebeam ctl`,
  through the control socket. Python itself can never arm or disarm: the end of this script
  reads the safety state, asks the host for each change, and waits for it.

The run shows: moves refused while disarmed, the motor following the policy once armed,
and stopping mid-move on disarm. Then it ends with rebeam.shutdown(0).
"""

import queue
import time

import rebeam
from rebeam import GenPy, SafetyInterrupt, Supervisor, call, cast, child, receive, requires_armed, start

SPEED = 2.0   # units per second: slower than the policy plans, so the motor is always moving
STEP = 0.01   # seconds per integration step
PERIOD = 0.1  # seconds between two targets of the policy
LONGEST_MOVE = 0.3  # seconds; then the motor looks at the newest target again


def policy():
    """Publishes a target ramp (0.5 more every tick) until the system stops it."""
    target = 0.0
    while True:
        target += 0.5
        rebeam.publish("policy.target", target)
        time.sleep(PERIOD)


class Motor(GenPy):
    name = "motor"

    @start()
    def init(self):
        self.state.update(position=0.0, target=0.0, queued=False, refused=False)
        rebeam.on("policy.target", self.on_target)

    def on_target(self, topic, target):
        """A new target from the policy: ask for a move there (refused unless armed)."""
        self.state["target"] = target
        if self.state["queued"] and rebeam.armed():
            return  # the move already waiting will head for this newest target
        self.state["queued"] = cast(self.pid, "move")
        if not self.state["queued"] and not self.state["refused"]:  # say it once
            self.state["refused"] = True
            print(f"target {target:.2f} refused: the system is {rebeam.safety_state()}")
            rebeam.publish("motor.refused", target)

    @requires_armed
    @receive("move")
    def move(self, source, _):
        """Drives towards the newest target, in small steps, for at most LONGEST_MOVE."""
        self.state.update(queued=False, refused=False)
        target = self.state["target"]
        end = time.monotonic() + LONGEST_MOVE
        try:  # the disarm's SafetyInterrupt lands in this thread, between two bytecodes
            rebeam.publish("motor.moving", target)
            while abs(target - self.state["position"]) > 1e-9 and time.monotonic() < end:
                if rebeam.cancelled():  # true at once on disarm
                    break
                error = target - self.state["position"]
                self.state["position"] += max(-SPEED * STEP, min(SPEED * STEP, error))
                time.sleep(STEP)
        except SafetyInterrupt:
            pass
        position = self.state["position"]
        if rebeam.cancelled():
            print(f"stopped by the disarm at {position:.2f} (target {target:.2f})")
            return position  # nobody gets this answer: the caller was told at once
        print(f"at {position:.2f} (target {target:.2f})")
        rebeam.publish("motor.position", position)
        return position

    @receive("where")
    def where(self, source, _):
        return round(self.state["position"], 2)


def ask_host(action: str, until: tuple) -> None:
    """Asks the host to run `rebeam ctl ACTION` (Python may not) and waits until it has."""
    print(f"waiting for the host to run `rebeam ctl {action}`", flush=True)
    while rebeam.safety_state() not in until:
        time.sleep(0.005)


if __name__ == "__main__":
    events: queue.SimpleQueue = queue.SimpleQueue()
    rebeam.on("motor.*", lambda topic, value: events.put((topic, value)))
    Supervisor(modules=[Motor(), child(policy, name="policy")])

    def wait_for(topic, accept=lambda value: True):
        while True:
            got, value = events.get(timeout=10)
            if got == topic and accept(value):
                return value

    print(f"host: the system starts {rebeam.safety_state()}")
    status, err = call("motor", "move")
    print(f"host: move while disarmed -> {status}: {type(err).__name__}")
    wait_for("motor.refused")

    ask_host("arm", until=("armed",))
    wait_for("motor.position", lambda position: position >= 1.0)
    wait_for("motor.moving")  # disarm in the middle of a move

    ask_host("disarm", until=("disarming", "disarmed"))
    stopped = call("motor", "where")[1]
    print(f"host: the motor stopped at {stopped:.2f}")
    wait_for("motor.refused")  # the policy still plans; the motor no longer moves
    held = call("motor", "where")[1]
    print(f"host: the motor holds at {held:.2f} ({'still' if held == stopped else 'MOVED'}), "
          f"safety {rebeam.safety_state()}")
    rebeam.shutdown(0)
