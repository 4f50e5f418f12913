"""What the jobs of tests/test_futures.py run: a small module of its own, so that the node (or a warm
worker) imports only this, not the test module and pytest."""

import os
import time


def add(a, b=0):
    return a + b


def fail(n):
    raise ValueError(f"bad input {n}")


def divide(a, b):
    return a / b


def after_gate(gate, value):
    """Return ``value`` once the file ``gate`` exists (the job waits; the test creates the file)."""
    while not os.path.exists(gate):
        time.sleep(0.02)
    return value
