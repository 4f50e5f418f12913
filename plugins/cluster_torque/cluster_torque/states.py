"""PBS job states and exit codes mapped onto cluster-core's one state model.

Letters (both dialects unless noted): Q queued, W waiting for its start time, T in transit, H held,
R running, E exiting, S suspended, U suspended by workstation activity (PBS Pro), B array begun
(PBS Pro), M moved to another server (PBS Pro), C completed (Torque), F finished (PBS Pro), X finished
subjob (PBS Pro).

A finished job's outcome comes from its exit status, which both servers report the same way: the
script's own code, 256+N when PBS killed it with signal N (271 = SIGTERM from qdel, or a dependency
that can never be met), and negative JOB_EXEC_* codes for limits and start failures. The codes differ
between the two: walltime is -11 on Torque and -29 on PBS Pro. Verified on this machine (Torque 6.1.3,
OpenPBS 23.06): a job deleted while queued, or deleted because its afterok parent failed on OpenPBS, has
no exit status at all; OpenPBS marks every qdel'd job with substate 91 (terminated), even a root job
whose exit status then reads 0.
"""

from __future__ import annotations

from typing import Optional

from cluster_core.backend import State

ACTIVE = {
    "Q": State.PENDING, "W": State.PENDING, "T": State.PENDING,
    "H": State.HELD,
    "R": State.RUNNING, "B": State.RUNNING,
    "E": State.COMPLETING,
    "S": State.SUSPENDED, "U": State.SUSPENDED,
}
FINISHED_LETTERS = frozenset("CFX")

# Torque src/include/pbs_job.h (6.1.3)
TORQUE_EXIT = {
    -10: (State.OUT_OF_MEMORY, "exceeded its memory limit"),   # JOB_EXEC_OVERLIMIT_MEM
    -11: (State.TIMEOUT, "exceeded its walltime limit"),       # JOB_EXEC_OVERLIMIT_WT
    -12: (State.TIMEOUT, "exceeded its CPU time limit"),       # JOB_EXEC_OVERLIMIT_CPUT
}
# OpenPBS src/include/job.h (master, 23.06)
PBSPRO_EXIT = {
    -20: (State.NODE_FAIL, "lost its mother superior node"),   # JOB_EXEC_RERUN_MS_FAIL
    -26: (State.OUT_OF_MEMORY, "exceeded its vmem limit"),     # JOB_EXEC_KILL_VMEM
    -27: (State.OUT_OF_MEMORY, "exceeded its memory limit"),   # JOB_EXEC_KILL_MEM
    -28: (State.TIMEOUT, "exceeded its CPU time limit"),       # JOB_EXEC_KILL_CPUT
    -29: (State.TIMEOUT, "exceeded its walltime limit"),       # JOB_EXEC_KILL_WALLTIME
    -31: (State.OUT_OF_MEMORY, "exceeded its high-water memory limit"),  # PBS Pro KILL_HPMEM
}
PBSPRO_SUBSTATE_TERMINATED = 91  # qdel'd (also by the server for a dependency); OpenPBS job.h
TORQUE_SUBSTATE_ABORT = 55       # deleted by the server (e.g. unmet dependency); Torque pbs_job.h


def finished_state(exitcode: Optional[int], *, pbspro: bool, substate: Optional[int] = None,
                   letter: str = "") -> tuple[State, Optional[str]]:
    """The outcome of a finished (C, F or X) job and a short reason."""
    if pbspro and substate == PBSPRO_SUBSTATE_TERMINATED:
        return State.CANCELLED, "deleted (qdel)"
    if exitcode is None:
        if letter == "X":
            return State.UNKNOWN, "subjob finished; PBS reported no exit status"
        return State.CANCELLED, "deleted before it ran (no exit status)"
    if exitcode == 0:
        return State.COMPLETED, None
    table = PBSPRO_EXIT if pbspro else TORQUE_EXIT
    if exitcode in table:
        return table[exitcode]
    if exitcode > 256:
        return State.CANCELLED, f"killed by signal {exitcode - 256}"
    if exitcode < 0:
        return State.FAILED, f"PBS could not run the job (JOB_EXEC code {exitcode})"
    return State.FAILED, f"exited with status {exitcode}"


def normalise(letter: Optional[str], exitcode: Optional[int], *, pbspro: bool,
              substate: Optional[int] = None) -> tuple[State, Optional[str]]:
    """State and reason for one job from its state letter, exit status and (PBS Pro) substate."""
    code = (letter or "").strip().upper()[:1]
    if code in FINISHED_LETTERS:
        return finished_state(exitcode, pbspro=pbspro, substate=substate, letter=code)
    if code in ACTIVE:
        return ACTIVE[code], None
    if code == "M":
        return State.UNKNOWN, "moved to another server"
    return State.UNKNOWN, f"unknown PBS state {letter!r}"
