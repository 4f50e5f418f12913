"""Runs a pickled function job on the compute node: ``python -m cluster_core.runner IN OUT``.

With ``--checkpoint CKPT MAX`` the function may save itself when warned (SIGUSR1 before the time limit,
SIGTERM when preempted) and the runner then exits with :data:`cluster_core.checkpoint.REQUEUE_EXIT`; the
next run starts from ``CKPT`` (see :mod:`cluster_core.checkpoint`).

The result file holds ``{"ok": True, "value": ...}`` or ``{"ok": False, "error": exc, "traceback": text}``,
written 0600 under a temporary name and renamed, so a half-written result never reads as success.
Every job pays this module's imports, so it needs only ``os``, ``sys`` and ``pickle``: cloudpickle is
imported only when the standard pickler cannot write the result (a value of a class the job defined by
value, a lambda), and when the input holds a function pickled by value (its unpickling imports it).
"""

from __future__ import annotations

import io  # loaded at interpreter start already, as os and sys are
import os
import pickle
import sys


def _dump(result: dict[str, object]) -> bytes:
    try:
        # by reference, as the standard pickler does, is what cloudpickle would do for these values too;
        # it refuses what it cannot find under its module and name, and cloudpickle then writes it by value
        return pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:
        pass
    import cloudpickle
    try:
        data: bytes = cloudpickle.dumps(result)
        return data
    except Exception as exc:  # an unpicklable return value or exception: keep what can be kept
        if result.get("ok"):
            detail = f"the function's return value cannot be pickled: {type(exc).__name__}: {exc}"
            data = cloudpickle.dumps({"ok": False, "error": None, "traceback": detail, "error_repr": detail})
            return data
        data = cloudpickle.dumps({"ok": False, "error": None, "traceback": result.get("traceback", ""),
                                  "error_repr": repr(result.get("error"))})
        return data


def _write_private(path: str, data: bytes) -> None:
    """0600 under a temporary name in the same directory, then renamed into place."""
    head, name = os.path.split(path)
    tmp = os.path.join(head, f".{name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def task_call(fh: io.BufferedReader, task: int, tasks: int) -> tuple[tuple[object, ...], dict[str, object]]:
    """An array task's own ``(args, kwargs)`` from an input file :func:`cluster_core.script.payload_for`
    wrote: the last 8 bytes give where the offsets table starts, its ``task``-th entry where the call is."""
    if not 0 <= task < tasks:
        raise IndexError(f"task {task}: this job's array has tasks 0 to {tasks - 1}")
    fh.seek(-8, os.SEEK_END)
    table = int.from_bytes(fh.read(8), "little")
    fh.seek(table + 8 * task)
    fh.seek(int.from_bytes(fh.read(8), "little"))
    call: tuple[tuple[object, ...], dict[str, object]] = pickle.load(fh)
    return call


USAGE = "usage: python -m cluster_core.runner INPUT.pkl OUTPUT.pkl [--task N] [--checkpoint CKPT.pkl MAX_REQUEUE]"


def _arguments(argv: list[str]) -> tuple[str, str, int | None, tuple[str, int] | None] | None:
    """(input, output, task index, (checkpoint file, max requeues)) or None for a bad command line."""
    if len(argv) < 2:
        return None
    src, dst, rest = argv[0], argv[1], argv[2:]
    task: int | None = None  # (no typing import: every job pays this module's imports)
    checkpoint: tuple[str, int] | None = None
    try:
        while rest:
            if rest[0] == "--task" and len(rest) >= 2:
                task, rest = int(rest[1]), rest[2:]
            elif rest[0] == "--checkpoint" and len(rest) >= 3:
                checkpoint, rest = (rest[1], int(rest[2])), rest[3:]
            else:
                return None
    except ValueError:
        return None
    if (task is not None and task < 0) or (checkpoint is not None and checkpoint[1] < 0):
        return None
    return src, dst, task, checkpoint


def main(argv: list[str]) -> int:
    parsed = _arguments(argv)
    if parsed is None:
        print(USAGE, file=sys.stderr)
        return 2
    src, dst, task, checkpoint = parsed
    armed = None
    try:
        with open(src, "rb") as fh:
            head = pickle.load(fh)
            for entry in reversed(head.get("sys_path", [])):
                if entry not in sys.path:
                    sys.path.insert(1, entry)
            imported: dict[str, object] = {}
            for statement in head.get("imports", ()):  # the job's imports keyword
                exec(statement, imported)  # noqa: S102 - import statements, checked at submission
            payload = pickle.load(fh)
            if task is None:
                args, kwargs = payload["args"], payload["kwargs"]
            elif "calls" in payload:  # written by cluster-core 0.x before calls were stored one by one
                args, kwargs = payload["calls"][task]
            else:
                args, kwargs = task_call(fh, task, payload["tasks"])
        if imported:  # the names the function's code may use and its module does not define
            imported.pop("__builtins__", None)
            namespace = getattr(payload["function"], "__globals__", None)
            for target in (namespace, sys.modules["__main__"].__dict__):
                if target is not None:
                    for name, value in imported.items():
                        target.setdefault(name, value)
        function = payload["function"]
        if checkpoint is not None:  # warned, the function saves itself and the script requeues the job
            from .checkpoint import Armed
            armed = Armed(checkpoint[0], checkpoint[1], function, args, kwargs, _write_private)
            armed.restore()
            function, args, kwargs = armed.function, armed.args, armed.kwargs
            armed.arm()
        value = function(*args, **kwargs)
        result = {"ok": True, "value": value}
        code = 0
    except BaseException as exc:  # the job's own failure, reported to the submitter
        import traceback
        tb = traceback.format_exc()
        sys.stderr.write(tb)
        result = {"ok": False, "error": exc, "traceback": tb, "error_repr": repr(exc)}
        code = 1
    if armed is not None:
        armed.done()  # no requeue from here on; a resubmission starts afresh
    _write_private(dst, _dump(result))
    sys.stdout.flush()
    return code


if __name__ == "__main__":
    os.umask(0o077)
    sys.exit(main(sys.argv[1:]))
