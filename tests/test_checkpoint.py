"""Checkpointing without a scheduler: the runner saves a function when signalled and resumes it, the job
script passes the scheduler's signals on and requeues, and the core checks the keywords and the backend.

Real processes throughout: the runner and the script run as the scheduler would start them, and the
signals are real. The waits are for a real file the function writes (never a sleep in place of a wait).
"""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import cluster_core as cc
from cluster_core.checkpoint import REQUEUE_EXIT, SAVED_EXIT, Resume, is_checkpointable
from cluster_core.errors import OptionError
from cluster_core.keywords import check_arguments
from cluster_core.script import (atomic_write, checkpointed, function_command, job_files, payload_for, read_exit_file,
                                 render_script, requeued)
from cluster_core.testing.conformance import wait_for


def counting(total: int, progress: str) -> dict:
    """``total`` steps of 20 ms, saved as they go; each run notes where it started."""
    state = cc.checkpoint_state({"done": 0, "starts": []})
    state["starts"].append((cc.requeues(), state["done"]))
    while state["done"] < total:
        time.sleep(0.02)
        state["done"] += 1
        Path(progress).write_text(str(state["done"]))
    return state


def no_state(total: int, progress: str) -> int:
    for i in range(total):
        time.sleep(0.02)
        Path(progress).write_text(str(i + 1))
    return total


class Counter(cc.Checkpointable):
    """Its attributes are its state: the default ``checkpoint`` saves the object as it is."""

    def __init__(self) -> None:
        self.done = 0
        self.runs = 0

    def __call__(self, total: int, progress: str) -> tuple[int, int]:
        self.runs += 1
        while self.done < total:
            time.sleep(0.02)
            self.done += 1
            Path(progress).write_text(str(self.done))
        return self.done, self.runs


class Halving(cc.Checkpointable):
    """A checkpoint that changes the arguments of the next run: what is left to do."""

    def __call__(self, todo: int, progress: str) -> int:
        done = 0
        while done < todo:
            time.sleep(0.02)
            done += 1
            self.left = todo - done
            Path(progress).write_text(str(done))
        return todo

    def checkpoint(self, todo: int, progress: str) -> Resume:
        return Resume(type(self)(), (self.left, progress))


class DelayedLike:
    """Not our class: submitit's Checkpointable returns an object with function/args/kwargs."""

    def __init__(self, function, *args, **kwargs):
        self.function, self.args, self.kwargs = function, args, kwargs


class SubmititStyle:
    def __init__(self) -> None:
        self.done = 0

    def __call__(self, total: int, progress: str) -> int:
        while self.done < total:
            time.sleep(0.02)
            self.done += 1
            Path(progress).write_text(str(self.done))
        return self.done

    def checkpoint(self, *args, **kwargs):
        return DelayedLike(self, *args, **kwargs)


def _progress(path: Path) -> int:
    try:
        return int(path.read_text() or 0)
    except (FileNotFoundError, ValueError):
        return 0


class Runner:
    """The node's side of one function job: ``python -m cluster_core.runner ... --checkpoint``."""

    def __init__(self, tmp_path: Path, function, args, max_requeue: int = 3):
        self.files = job_files(tmp_path, "ckpt")
        self.progress = tmp_path / "progress"
        atomic_write(self.files.pickle_in, payload_for(function, (*args, str(self.progress)), {}), mode=0o600)
        self.command = function_command(self.files, max_requeue=max_requeue)

    def start(self) -> subprocess.Popen:
        self.progress.unlink(missing_ok=True)
        return subprocess.Popen(["/bin/bash", "-c", "exec " + self.command], stderr=subprocess.PIPE, text=True)

    def signal_after(self, proc: subprocess.Popen, steps: int, sig: int = signal.SIGUSR1) -> tuple[int, str]:
        wait_for(lambda: _progress(self.progress) >= steps, 30, f"{steps} steps of work")
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=30)
        return proc.returncode, err

    def finish(self, proc: subprocess.Popen) -> tuple[int, str]:
        _, err = proc.communicate(timeout=60)
        return proc.returncode, err

    def result(self):
        return pickle.loads(self.files.pickle_out.read_bytes())


def test_runner_saves_on_the_warning_and_the_next_run_goes_on_from_there(tmp_path):
    run = Runner(tmp_path, counting, (200,))
    code, err = run.signal_after(run.start(), 20)
    assert code == REQUEUE_EXIT, err
    assert "SIGUSR1: checkpoint saved; requeue 1 of at most 3" in err
    assert run.files.checkpoint.exists() and not run.files.pickle_out.exists()
    saved = pickle.loads(run.files.checkpoint.read_bytes())
    assert saved["requeues"] == 1 and saved["state"]["done"] >= 20

    code, err = run.signal_after(run.start(), saved["state"]["done"] + 10, signal.SIGTERM)  # preempted
    assert code == SAVED_EXIT and "SIGTERM: checkpoint saved (2 of at most 3)" in err
    code, err = run.finish(run.start())
    assert code == 0, err
    state = run.result()["value"]
    assert state["done"] == 200
    starts = state["starts"]
    assert [r for r, _ in starts] == [0, 1, 2] and starts[0][1] == 0
    assert 20 <= starts[1][1] < starts[2][1] < 200  # each run went on from the last one's save
    assert not run.files.checkpoint.exists()  # spent: a resubmission starts afresh


def test_runner_past_max_requeue_ignores_the_warning_and_dies_of_sigterm(tmp_path):
    run = Runner(tmp_path, counting, (60,), max_requeue=1)
    code, _ = run.signal_after(run.start(), 5)
    assert code == REQUEUE_EXIT
    code, err = run.signal_after(run.start(), _progress(run.progress) + 5)  # a second warning: no more requeues
    assert code == 0, err  # worked on to the end
    assert "not saving a checkpoint: requeued 1 times already (max_requeue=1)" in err
    assert run.result()["value"]["done"] == 60

    run = Runner(tmp_path, counting, (10_000,), max_requeue=0)
    code, err = run.signal_after(run.start(), 5, signal.SIGTERM)
    assert code == -signal.SIGTERM, err  # ended as the signal ends a job that saves nothing
    assert not run.files.checkpoint.exists()


def test_a_warning_after_the_function_returned_does_not_kill_the_finished_job(tmp_path):
    """The time-limit warning can come between the function's return and the interpreter's exit (seen
    when a job's last run ends just as it is warned): the job still ends as its function did."""
    program = ("import os, signal\n"
               "from cluster_core.checkpoint import Armed\n"
               f"armed = Armed({str(tmp_path / 'ckpt.pkl')!r}, 3, print, (), {{}}, None)\n"
               "armed.arm()\n"
               "armed.done()\n"
               "os.kill(os.getpid(), signal.SIGUSR1)\n"
               "print('finished', flush=True)\n")
    proc = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60)
    assert (proc.returncode, proc.stdout) == (0, "finished\n"), proc.stderr


def test_runner_with_nothing_to_save_is_not_requeued(tmp_path):
    run = Runner(tmp_path, no_state, (60,))
    code, err = run.signal_after(run.start(), 5)
    assert code == 0 and "SIGUSR1: not saving a checkpoint: nothing to save" in err
    assert run.result() == {"ok": True, "value": 60}


@pytest.mark.parametrize("make, check", [
    (Counter, lambda value: value[0] == 80 and value[1] == 2),  # its attributes came back: 2 runs in all
    (lambda: Halving(), lambda value: 0 < value < 80),  # the second run was given only what was left
    (SubmititStyle, lambda value: value == 80),
])
def test_checkpointable_objects_save_themselves(tmp_path, make, check):
    obj = make()
    assert is_checkpointable(obj) and not is_checkpointable(counting)
    run = Runner(tmp_path, obj, (80,))
    code, err = run.signal_after(run.start(), 10)
    assert code == REQUEUE_EXIT, err
    code, err = run.finish(run.start())
    assert code == 0, err
    assert "resumed from the checkpoint of run 1" in err
    assert check(run.result()["value"]), run.result()


def test_script_passes_the_warning_on_and_requeues(tmp_path):
    """The scheduler signals the batch shell only (Slurm's --signal=B:USR1): the script passes it on,
    writes "requeue" to the exit file (not an end) and runs the backend's requeue lines."""
    run = Runner(tmp_path, counting, (300,))
    marker = tmp_path / "requeued-by"
    command = checkpointed(run.command, [f"echo \"$CLUSTER_TEST_ID\" > {marker}"])
    script = tmp_path / "job.sh"
    script.write_text(render_script(command, exit_file=run.files.exit, workdir=str(tmp_path)))
    env = dict(os.environ, CLUSTER_TEST_ID="job-7")
    proc = subprocess.Popen(["/bin/bash", str(script)], env=env, stderr=subprocess.PIPE, text=True)
    code, err = run.signal_after(proc, 10)  # to the shell alone, not to its child
    assert code == 0, err
    assert marker.read_text() == "job-7\n"
    assert requeued(run.files.exit) and read_exit_file(run.files.exit) is None  # the job has not ended

    # SIGTERM (preempted, or cancelled): saved, not an end, but the scheduler decides whether it runs again
    marker.unlink()
    proc = subprocess.Popen(["/bin/bash", str(script)], env=env, stderr=subprocess.PIPE, text=True)
    code, err = run.signal_after(proc, _progress(run.progress) + 10, signal.SIGTERM)
    assert code == 128 + signal.SIGTERM, err
    assert requeued(run.files.exit) and not marker.exists()

    proc = subprocess.Popen(["/bin/bash", str(script)], env=env, stderr=subprocess.PIPE, text=True)
    code, err = run.finish(proc)
    assert code == 0, err
    assert "resumed from the checkpoint of run 2" in err
    ended = read_exit_file(run.files.exit)
    assert ended is not None and ended.returncode == 0 and not requeued(run.files.exit)
    assert run.result()["value"]["done"] == 300


def test_script_keeps_a_failure_and_sigterm_without_a_save(tmp_path):
    run = Runner(tmp_path, no_state, (10_000,))
    script = tmp_path / "job.sh"
    script.write_text(render_script(checkpointed(run.command, ["echo requeued"]), exit_file=run.files.exit))
    proc = subprocess.Popen(["/bin/bash", str(script)], stderr=subprocess.PIPE, text=True)
    code, err = run.signal_after(proc, 5, signal.SIGTERM)
    ended = read_exit_file(run.files.exit)
    assert ended is not None and ended.returncode == 128 + signal.SIGTERM, err
    assert "requeued" not in err


def test_keywords():
    assert check_arguments({"max_requeue": "2", "checkpoint_before": "90"}) == {"max_requeue": 2,
                                                                                "checkpoint_before": 90}
    assert check_arguments({"requeues": 0, "signal_before": "2m"}) == {"max_requeue": 0, "checkpoint_before": 120}
    assert check_arguments({"checkpoint_before": 45})["checkpoint_before"] == 45  # seconds, not minutes
    with pytest.raises(OptionError, match="max_requeue=-1: must be 0 or more") as err:
        check_arguments({"max_requeue": -1})
    assert err.value.keyword == "max_requeue"
    with pytest.raises(OptionError) as err:
        check_arguments({"checkpoint_before": "soon"})
    assert err.value.keyword == "checkpoint_before"


def test_job_defaults_and_refusals(toy):
    assert cc.Job(Counter()).options["max_requeue"] == 3  # it says how to save itself
    assert cc.Job(Counter(), max_requeue=0).options["max_requeue"] == 0
    assert "max_requeue" not in cc.Job(counting, (1, "x")).options
    with pytest.raises(OptionError, match="checkpointing is for function jobs") as err:
        cc.submit("sleep 100", max_requeue=2)
    assert err.value.keyword == "max_requeue"
    with pytest.raises(OptionError, match="the toy backend cannot requeue a running job in place") as err:
        cc.submit(Counter(), (10, "x"))
    assert err.value.keyword == "max_requeue"
    assert toy.procs == {}  # nothing was submitted
    job = cc.submit(counting, (3, str(Path("p").absolute())), checkpoint_before=30)  # ignored without max_requeue
    assert job.get(timeout=60)["done"] == 3
