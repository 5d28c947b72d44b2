"""The Python half of the robot-host example: a policy the Rust host calls every tick."""

import time

import numpy as np

from rebeam import GenPy, receive, requires_armed
from rebeam.geometry import as_transform


class Policy(GenPy):
    """A proportional controller towards a target joint configuration."""

    def __init__(self, gain=0.5, target=None):
        self.gain = gain
        self.target = np.asarray(target if target is not None else [0.0] * 6)

    @receive("step")
    @requires_armed
    def step(self, source, state):
        joints = np.asarray(state["joints"])
        pose = as_transform(state["pose"])  # (4, 4), row-major, float64
        if state.get("stall_ms"):
            time.sleep(state["stall_ms"] / 1000)  # the host asked for a missed deadline
        command = joints + self.gain * (self.target - joints)
        return {"joints": command, "height": float(pose[2, 3])}

    @receive("fault")
    def fault(self, source, message):
        raise RuntimeError("a simulated fault in the policy")
