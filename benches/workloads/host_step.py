"""The one policy function of the host benchmark (benches/host), with no rebeam import, so the
bench's embedded interpreter (PyO3, in the host's own process) can call it as it is."""

#: How far each step moves the joints towards zero.
GAIN = 0.02


def step(state):
    """One control step: the joints move towards zero (a list of floats in, a dict out)."""
    return {"joints": [j - GAIN * j for j in state["joints"]]}
