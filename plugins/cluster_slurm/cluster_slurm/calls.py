"""Every call to a Slurm command: sbatch, squeue, sacct, scancel, sinfo. One call per batch of jobs.

Commands go through :class:`cluster_core.backend.Commands`: argument lists, a timeout, slurm.bin_dir, and
retries for the transient failures of a busy or restarting slurmctld.
"""

from __future__ import annotations

import getpass
import logging
import uuid
from pathlib import Path
from typing import Any, Mapping, NoReturn, Optional, Sequence

from cluster_core.backend import (Commands, Detection, QueueJob, Result, SchedulerError, SubmitError, ask_patiently,
                                  chunks, error_summary, first_line, harmless_failure, job_id_from_output,
                                  keyword_for_error, known_ids, merge_records, submit_retrying)

from . import parse

log = logging.getLogger("cluster_core.slurm")

#: Messages of a controller that is busy, restarting or briefly unreachable: worth another try.
TRANSIENT = (
    r"Socket timed out",
    r"Unable to contact slurm controller",
    r"Resource temporarily unavailable",
    r"temporarily unable to accept job",
    r"Zero Bytes were transmitted or received",
    r"Communication connection failure",
    r"Transport endpoint is not connected",
    r"backup controller in standby mode",
)
#: sbatch failures that prove the request never reached the controller: retried without asking first.
NOT_SUBMITTED = (r"Unable to contact slurm controller", r"Connection refused",
                 r"temporarily unable to accept job")
SLURM = Commands("slurm", TRANSIENT, NOT_SUBMITTED)
#: scancel's complaints about jobs that already ended (only its lines with "error" are read).
CANCEL_HARMLESS = ("already completing or completed", "Invalid job id specified")
#: What scontrol release says of jobs that ended or were purged (one that runs: nothing, exit 0); of an
#: array that ended it says "123_0-2: Job has already finished" and then "slurm_suspend error: No error".
RELEASE_HARMLESS = ("Job has already finished", "error: No error$", *CANCEL_HARMLESS)
#: squeue with a fixed few ids per call: a list this long still fits any command line.
CHUNK = 500
DETECT_TIMEOUT = 3.0
QUERY_TIMEOUT = 30.0
SUBMIT_TIMEOUT = 60.0


def run(args: Sequence[str], **kwargs: Any) -> Result:
    """A Slurm command, from slurm.bin_dir / $CLUSTER_SLURM_BIN first."""
    return SLURM.run(args, **kwargs)


def which(command: str) -> Optional[str]:
    return SLURM.which(command)


def detect() -> Detection:
    """Slurm is usable when sbatch and squeue exist and ``scontrol ping`` says the controller is UP.

    scontrol ping answers in ~10 ms either way; sinfo and squeue retry a dead controller for 9-18 s.
    """
    for command in ("sbatch", "squeue", "scontrol"):
        if which(command) is None:
            return Detection(False, SLURM.missing([command]) or f"{command} not found")
    try:
        res = run(["scontrol", "ping"], timeout=DETECT_TIMEOUT, check=False)
    except SchedulerError as exc:
        return Detection(False, f"the Slurm controller did not answer: {exc}")
    text = (res.stdout + res.stderr).strip()
    if res.returncode == 0 and " is UP" in text:
        return Detection(True, text.splitlines()[0])
    first = text.splitlines()[0] if text else f"scontrol ping exited with {res.returncode}"
    return Detection(False, f"the Slurm controller is not answering: {first}")


SUBMIT_RETRIES = 3
SUBMIT_BACKOFF = 1.0


def submit(script: Path, options: Mapping[str, Any], arguments: Sequence[str] = ()) -> str:
    """``sbatch --parsable [arguments] script``; the job id. SubmitError names the keyword at fault.

    A submission that timed out or met a transient error may still have reached the controller, so
    each carries a unique ``--comment`` and, before another try, squeue is asked whether a job with that
    comment exists: a retry never makes a second copy of the job.
    """
    token = f"cluster-core:{uuid.uuid4().hex}"
    args = ["sbatch", "--parsable", f"--comment={token}", *arguments, str(script)]

    def attempt() -> str:
        try:
            res = run(args, timeout=SUBMIT_TIMEOUT, retries=0, transient=TRANSIENT)
        except SchedulerError as exc:
            # sbatch still retrying by itself (2 minutes) when its time was up: not run again, which
            # would wait as long for the same answer
            if exc.returncode is None and parse.SBATCH_RETRYING.search(exc.output or ""):
                said = error_summary(exc.output, strip=parse.SBATCH_ERROR_PREFIXES)
                raise queue_full(exc, said, f"for {SUBMIT_TIMEOUT:g} s") from None
            raise
        if res.stderr.strip():
            log.info("sbatch said: %s", res.stderr.strip())
        return job_id_from_output(res.stdout, parse.SBATCH_ID, "sbatch")

    def refused(exc: SchedulerError) -> NoReturn:
        _refused(exc, script, options)

    return submit_retrying(attempt, SLURM, find=lambda exc: _find_by_comment(token, exc), refused=refused,
                           retries=SUBMIT_RETRIES, backoff=SUBMIT_BACKOFF, logger=log)


def queue_full(exc: SchedulerError, said: str, tried: str) -> SubmitError:
    """The SubmitError for a controller that keeps answering "try again" (EAGAIN) to a submission: what a
    full queue (MaxJobCount) gives. ``said`` is Slurm's message, ``tried`` how long it was tried."""
    return SubmitError(
        f"slurmctld refused the job {tried} ({said}): the cluster holds as many jobs as its MaxJobCount "
        "allows (an array counts one per task; see `scontrol show config | grep MaxJobCount`), or the "
        "controller is overloaded. Submit fewer tasks at once, or once some jobs have ended; this "
        "submission created no job", command=exc.command, returncode=exc.returncode, output=exc.output)


#: How long a submission keeps asking whether a job whose sbatch failed transiently exists (seconds).
CHECK_PATIENCE = 600.0


def _find_by_comment(token: str, cause: SchedulerError) -> Optional[str]:
    """The id of this user's job carrying ``token`` as its comment, or None when the controller says it
    has none. While squeue fails it is asked again (:func:`ask_patiently`); SubmitError when it never
    answers: whether the job exists cannot be told, and it is not submitted again."""
    def give_up(exc: SchedulerError) -> SubmitError:
        return SubmitError(
            f"sbatch failed ({first_line(cause)}) and squeue cannot tell whether the job was created "
            f"({first_line(exc)}); it is not submitted again, so as not to run it twice. Look for it with: "
            f"squeue -u {getpass.getuser()} -t all -o '%i %k' | grep {token}",
            command=exc.command, returncode=exc.returncode, output=exc.output, transient=True)

    out = ask_patiently(lambda: run(["squeue", "-h", "-t", "all", "-u", getpass.getuser(), "-o", "%i|%k"],
                                    timeout=QUERY_TIMEOUT, retries=0, transient=TRANSIENT).stdout,
                        give_up, waiting="sbatch failed and squeue cannot be asked whether the job exists",
                        patience=CHECK_PATIENCE, delay=SUBMIT_BACKOFF, logger=log)
    for line in out.splitlines():
        job_id, _, comment = line.partition("|")
        if comment.strip() == token:
            return job_id.strip().split("_")[0]
    return None


def _refused(exc: SchedulerError, script: Path, options: Mapping[str, Any]) -> NoReturn:
    """Turn sbatch's failure into a SubmitError naming the keyword at fault where it can be told."""
    if exc.returncode is None or exc.transient:  # missing command, timeout, controller away
        raise SubmitError(f"sbatch could not submit {script}: {exc}", command=exc.command,
                          returncode=exc.returncode, output=exc.output, transient=exc.transient) from None
    message = error_summary(exc.output, strip=parse.SBATCH_ERROR_PREFIXES)
    keyword = keyword_for_error(exc.output, parse.SUBMIT_ERRORS, options)
    about = f" ({keyword}={options[keyword]!r})" if keyword is not None and keyword in options else ""
    raise SubmitError(f"Slurm refused job {script.name}: {message}{about}", keyword=keyword,
                      command=exc.command, returncode=exc.returncode, output=exc.output) from None


def max_array_size() -> int:
    """Tasks one array may hold: Slurm's MaxArraySize (indices 0..MaxArraySize-1), 1001 by default."""
    try:
        config = parse.parse_scontrol_config(run(["scontrol", "show", "config"], timeout=QUERY_TIMEOUT,
                                                 retries=1, transient=TRANSIENT).stdout)
        return int(config["MaxArraySize"])
    except (SchedulerError, KeyError, ValueError) as exc:
        log.debug("MaxArraySize unknown (%s); using Slurm's default 1001", exc)
        return 1001


def _squeue(extra: Sequence[str]) -> str:
    args = ["squeue", "-h", "-t", "all", "-O", parse.SQUEUE_FORMAT, *extra]
    try:
        # squeue itself retries a controller it cannot reach for ~18 s; one more try after that
        return run(args, timeout=QUERY_TIMEOUT, retries=1, backoff=1.0, transient=TRANSIENT).stdout
    except SchedulerError as exc:
        if "Invalid job id specified" in exc.output:  # every id of the call is gone (a single id: rc 1)
            return ""
        raise


_sacct_warned: set[str] = set()


def _sacct(ids: Sequence[str]) -> list[QueueJob]:
    """Finished jobs from the accounting database; [] when accounting is off or sacct fails."""
    if not ids:
        return []
    try:
        res = run(["sacct", "-X", "-n", "-P", "-o", parse.SACCT_FORMAT, "-j", ",".join(ids)],
                  timeout=QUERY_TIMEOUT, retries=1, backoff=1.0, transient=TRANSIENT)
    except SchedulerError as exc:
        # said once per kind of failure: with accounting down, every poll would repeat it
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        quiet = "accounting storage is disabled" in exc.output or first in _sacct_warned
        _sacct_warned.add(first)
        log.log(logging.DEBUG if quiet else logging.WARNING, "sacct cannot tell about jobs %s: %s "
                "(jobs it alone knows are settled from their exit files)", ",".join(ids[:10]), exc)
        return []
    return parse.parse_sacct(res.stdout)


def parse_queue(job_ids: Optional[Sequence[str]], user: Optional[str],
                partition: Optional[str]) -> list[QueueJob]:
    """squeue for live and recently ended jobs, then sacct for the ids squeue has forgotten."""
    if job_ids is None:
        extra = []
        if user:
            extra += ["-u", user]
        if partition:
            extra += ["-p", partition]
        return parse.parse_squeue(_squeue(extra))
    ids = parse.job_ids(job_ids)
    if not ids:
        return []
    live: list[QueueJob] = []
    for chunk in chunks(ids, CHUNK):
        live += parse.parse_squeue(_squeue(["-j", ",".join(chunk)]))
    known = known_ids(live)
    arrays = {j.array_id for j in live if j.array_id}
    # arrays too: squeue forgets each finished task MinJobAge after it ended
    ask = [i for i in ids if i not in known or i in arrays]
    return merge_records(live, _sacct(ask))


def release(job_ids: Sequence[str]) -> bool:
    """One ``scontrol release`` for all ids (comma-separated); ids that ended are not an error."""
    ids = [str(j) for j in job_ids]
    if not ids:
        return True
    try:
        run(["scontrol", "release", ",".join(ids)], timeout=QUERY_TIMEOUT, retries=2, backoff=1.0,
            transient=TRANSIENT)
    except SchedulerError as exc:
        if not harmless_failure(exc.output, RELEASE_HARMLESS, relevant="error"):
            raise
    return True


def cancel(job_ids: Sequence[str]) -> bool:
    """One ``scancel`` for all ids; ids that already ended are not an error."""
    ids = [str(j) for j in job_ids]
    if not ids:
        return True
    try:
        run(["scancel", *ids], timeout=QUERY_TIMEOUT, retries=2, backoff=1.0, transient=TRANSIENT)
    except SchedulerError as exc:
        if not harmless_failure(exc.output, CANCEL_HARMLESS, relevant="error"):
            raise
    return True
