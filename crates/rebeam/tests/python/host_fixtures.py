"""Actors the Rust host's tests spawn as ``host_fixtures:Class``."""

import os
import time

import numpy as np

from rebeam import GenPy, on, receive, response_error, start


class Echo(GenPy):
    def __init__(self, gain=1.0, label="echo"):
        self.gain, self.label = gain, label

    @receive("echo")
    def echo(self, source, message):
        return message

    @receive("scale")
    def scale(self, source, message):
        return {"pose": np.asarray(message["pose"]) * self.gain, "n": len(message["joints"]), "label": self.label}

    @receive("types")
    def types(self, source, message):
        return {k: type(v).__name__ for k, v in message.items()}

    @receive("fail")
    def fail(self, source, message):
        raise ValueError(f"told to fail with {message!r}")

    @receive("refuse")
    def refuse(self, source, message):
        return response_error({"why": "refused"})

    @receive("sleep")
    def sleep(self, source, seconds):
        time.sleep(seconds)

    @receive("opaque")
    def opaque(self, source, message):
        return object()

    @receive("pid")
    def pid(self, source, message):
        return os.getpid()

    @receive("die")
    def die(self, source, message):
        os._exit(3)


class Listener(GenPy):
    """Keeps what it hears on a topic pattern, for the host to read back."""

    def __init__(self, pattern="actuator.**"):
        self.pattern = pattern
        self.heard = []

    @start()
    def subscribe(self):
        on(self.pattern, lambda topic, payload: self.heard.append([topic, payload]))

    @receive("heard")
    def get_heard(self, source, message):
        return self.heard


class Geometry(GenPy):
    """Builds and checks geometry with rebeam.geometry, for the Rust round trip."""

    @receive("pose")
    def pose(self, source, message):
        from rebeam import geometry as g

        # What the host sent is checked in the shapes the Rust types wrote, then moved.
        t = g.as_transform(message["transform"])
        t[:3, 3] += g.as_vec3(message["by"])
        return g.envelope(
            {
                "transform": t,
                "rotation": g.as_quaternion(message["rotation"]),
                "speed": g.quantity(message["speed"]["value"] * 2, message["speed"]["unit"]),
            },
            node="py",
            frame_id=message["frame_id"],
        )

    @receive("bad_pose")
    def bad_pose(self, source, message):
        return {"transform": message}


#: How many Model objects have been finalized in this worker.
FINALIZED = [0]


class Model:
    """Stands for what a handle keeps in its worker (weights, a tensor): never sent anywhere."""

    def __init__(self, scale):
        self.scale = scale
        self.lock = __import__("threading").Lock()  # does not pickle: it could not cross

    def __del__(self):
        FINALIZED[0] += 1


class Models(GenPy):
    """Makes objects that stay here, and uses the ones a host's handles name."""

    @receive("load")
    def load(self, source, message):
        import rebeam

        return {"model": rebeam.handle(Model(message["scale"])), "size": 3}

    @receive("infer")
    def infer(self, source, message):
        model = message["model"]
        return {"y": model.scale * message["x"], "kind": type(model).__name__}

    @receive("counts")
    def counts(self, source, message):
        from rebeam import handles

        return {"finalized": FINALIZED[0], "held": handles.held(), "pid": os.getpid()}

    @receive("fail")
    def fail(self, source, message):
        raise RuntimeError("the holder crashes")

    @receive("die")
    def die(self, source, message):
        os._exit(3)


class Talker(GenPy):
    """Publishes what the host asks, as Python code would."""

    @receive("say")
    def say(self, source, message):
        from rebeam import geometry, publish

        for topic, value in message:
            if value == "envelope":
                value = geometry.envelope(geometry.vec3(1, 2, 3), node="talker", frame_id="base")
            elif value == "tuple":
                value = (1, 2)
            publish(topic, value)
        return len(message)
