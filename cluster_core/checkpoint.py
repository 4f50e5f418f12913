"""Checkpointing: a function job that saves itself when warned and, requeued, goes on from where it stopped.

The warning comes before the job's time limit (the scheduler's signal, ``checkpoint_before`` seconds
ahead; the local runner's own timer) or when the job is preempted (the scheduler's SIGTERM). A function
says how to save itself in one of two ways:

- a callable object whose class derives from :class:`Checkpointable` (or has a ``checkpoint`` method,
  as submitit's ``Checkpointable`` does): when warned, ``checkpoint(*args, **kwargs)`` is called with
  the job's arguments and returns what to call on the next run, a :class:`Resume` (by default the object
  itself, as it is at that moment, with the same arguments), or None to save nothing;
- a plain function that calls :func:`checkpoint_state` with its initial state and then changes that
  object as it works: when warned, the object is saved as it is, and on the next run
  ``checkpoint_state`` returns it instead of the initial one. :func:`keep_state` replaces the object
  (for a state that is a number or a tuple).

A job is checkpointed when it is submitted with ``max_requeue`` > 0 (3 by default for a Checkpointable):
that many times at most it saves itself and is requeued under the same id; ``get()`` returns the final
result. What is saved must pickle (cloudpickle). A signal interrupts the function between two Python
statements: keep the state consistent at every statement (assign a new object whole rather than
changing two fields one after the other), or save it in ``checkpoint``.

This module is imported on the node by :mod:`cluster_core.runner`, so it needs the standard library only.
"""

from __future__ import annotations

import os
import pickle
import signal
import sys
from typing import Any, Callable, Optional

__all__ = ["Checkpointable", "Resume", "checkpoint_state", "keep_state", "requeues", "REQUEUE_EXIT",
           "SAVED_EXIT"]

#: The runner's exit code for "warned, the function saved itself: run it again"; the job script then
#: requeues the job. After a save on SIGTERM (preemption, a cancel, the time limit itself) the runner exits
#: with :data:`SAVED_EXIT` instead and the scheduler decides: it requeues a preempted job itself, and a
#: cancelled one must stay cancelled.
REQUEUE_EXIT = 75
SAVED_EXIT = 76

_NOTHING: Any = object()


class Resume:
    """What the next run of a checkpointed job calls: ``function(*args, **kwargs)``."""

    __slots__ = ("function", "args", "kwargs")

    def __init__(self, function: Callable[..., Any], args: Any = (), kwargs: Optional[dict[str, Any]] = None):
        self.function, self.args, self.kwargs = function, tuple(args), dict(kwargs or {})

    def __repr__(self) -> str:
        return f"Resume({self.function!r}, args={self.args!r}, kwargs={self.kwargs!r})"


class Checkpointable:
    """Base class of a callable job that saves itself: override ``__call__`` (the work) and, when the
    object's attributes are not enough to go on from, ``checkpoint``."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define __call__")

    def checkpoint(self, *args: Any, **kwargs: Any) -> Optional[Resume]:
        """Called in the job when it is warned, with the job's arguments: what the next run calls.
        The default is this object as it is now (its attributes pickled), with the same arguments."""
        return Resume(self, args, kwargs)


#: ``max_requeue`` of a Checkpointable job that does not give it (submitit's default too).
DEFAULT_REQUEUES = 3


def is_checkpointable(function: Any) -> bool:
    """True for a callable that says how to save itself: an object with a ``checkpoint`` method."""
    return callable(getattr(function, "checkpoint", None)) and not _is_plain_function(function)


# --- inside the job -----------------------------------------------------------------------------------

_restored: Any = _NOTHING  # the state the last run saved, until checkpoint_state hands it out
_kept: Any = _NOTHING  # the object saved when the job is warned
_requeues = 0


def checkpoint_state(initial: Any) -> Any:
    """The state the job's last run saved, or ``initial`` on the first run; the object returned is the
    one saved when the job is warned (change it in place, or give a new one to :func:`keep_state`).
    Outside a checkpointed job it returns ``initial`` and saves nothing."""
    global _restored, _kept
    value = initial if _restored is _NOTHING else _restored
    _restored = _NOTHING
    _kept = value
    return value


def keep_state(value: Any) -> Any:
    """Save ``value`` (instead of the object :func:`checkpoint_state` returned) when the job is warned."""
    global _kept
    _kept = value
    return value


def requeues() -> int:
    """How many times this job saved itself and was requeued before this run (0 on the first run)."""
    return _requeues


# --- the runner's side --------------------------------------------------------------------------------

class Armed:
    """The checkpoint of one run: what it restored, and the signal handlers that save the next one."""

    def __init__(self, path: str, max_requeue: int, function: Callable[..., Any], args: Any, kwargs: Any,
                 write: Callable[[str, bytes], None]):
        self.path, self.max_requeue, self.write = path, max_requeue, write  # write: the runner's private writer
        self.function, self.args, self.kwargs = function, args, kwargs
        self.count = 0
        self.saving = False

    def restore(self) -> None:
        """Take the call (and state) the last run saved, when there is one."""
        global _restored, _requeues
        try:
            with open(self.path, "rb") as fh:
                saved = pickle.load(fh)  # written by cloudpickle: plain pickle reads it (cloudpickle imported)
        except FileNotFoundError:
            return
        self.function, self.args, self.kwargs = saved["function"], saved["args"], saved["kwargs"]
        self.count = _requeues = int(saved.get("requeues", 0))
        if "state" in saved:
            _restored = saved["state"]
        _note(f"resumed from the checkpoint of run {self.count} ({self.path})")

    def arm(self) -> None:
        for sig in (signal.SIGUSR1, signal.SIGTERM):
            signal.signal(sig, self._on_signal)

    def done(self) -> None:
        """The function ended (returned or raised): its checkpoint is spent. A time-limit warning that comes
        now is ignored (its default action would kill a job that has finished); SIGTERM ends it as usual."""
        signal.signal(signal.SIGUSR1, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass

    def _on_signal(self, signum: int, _frame: Any) -> None:
        name = signal.Signals(signum).name
        if self.saving:
            return  # the warning and the script's copy of it, or a TERM while saving
        why = None
        if self.count >= self.max_requeue:
            why = f"requeued {self.count} times already (max_requeue={self.max_requeue})"
        resume = None if why else self._what_to_save()
        if resume is None:
            _note(f"{name}: not saving a checkpoint: {why or 'nothing to save'}")
            if signum == signal.SIGTERM:  # end as the signal would have ended the job
                signal.signal(signum, signal.SIG_DFL)
                os.kill(os.getpid(), signum)
            return
        self.saving = True
        try:
            self._write(resume)
        except BaseException as exc:  # noqa: BLE001 - a failed save must not pass for a requeue
            _note(f"{name}: the checkpoint could not be saved: {type(exc).__name__}: {exc}")
            self.saving = False
            if signum == signal.SIGTERM:
                signal.signal(signum, signal.SIG_DFL)
                os.kill(os.getpid(), signum)
            return
        if signum == signal.SIGUSR1:
            _note(f"{name}: checkpoint saved; requeue {self.count + 1} of at most {self.max_requeue}")
        else:
            _note(f"{name}: checkpoint saved ({self.count + 1} of at most {self.max_requeue}); the scheduler "
                  "requeues the job if it was preempted")
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(REQUEUE_EXIT if signum == signal.SIGUSR1 else SAVED_EXIT)

    def _what_to_save(self) -> Optional[dict[str, Any]]:
        if is_checkpointable(self.function):
            method = getattr(self.function, "checkpoint")
            try:
                resume = method(*self.args, **self.kwargs)
            except Exception as exc:  # noqa: BLE001 - the user's checkpoint method failed: say so
                _note(f"{type(self.function).__name__}.checkpoint() raised {type(exc).__name__}: {exc}")
                return None
            if resume is None:
                return None
            if isinstance(resume, tuple):
                resume = Resume(*resume)
            # a Resume, or anything with function/args/kwargs (submitit's DelayedSubmission)
            return {"function": resume.function, "args": tuple(resume.args), "kwargs": dict(resume.kwargs)}
        if _kept is _NOTHING:
            return None
        return {"function": self.function, "args": self.args, "kwargs": self.kwargs, "state": _kept}

    def _write(self, saved: dict[str, Any]) -> None:
        import cloudpickle  # functions and classes defined in __main__ go by value, as at submission
        saved["requeues"] = self.count + 1
        self.write(self.path, cloudpickle.dumps(saved))


def _is_plain_function(obj: Any) -> bool:
    return type(obj).__name__ in ("function", "builtin_function_or_method", "method")


def _note(text: str) -> None:
    print(f"cluster-core: {text}", file=sys.stderr, flush=True)
