"""The tiny function every function-job row runs (imported by name by every tool, so no tool pickles code)."""


def square(x):
    return x * x
