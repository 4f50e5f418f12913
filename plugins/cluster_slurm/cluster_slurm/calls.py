"""Every call to a Slurm command: sbatch, squeue, sacct, scancel, sinfo. One call per batch of jobs.

Commands go through :func:`cluster_core.commands.run`: argument lists, a timeout, and retries for the
transient failures of a busy or restarting slurmctld.
"""

from __future__ import annotations

import getpass
import logging
import re
import time
import uuid
from pathlib import Path
from typing import Any, Iterable, Mapping, NoReturn, Optional, Sequence

from cluster_core import commands
from cluster_core.errors import SchedulerError, SubmitError
from cluster_core.records import Detection, QueueJob

from . import parse, render

log = logging.getLogger("cluster_core.slurm")


def run(args: Sequence[str], **kwargs: Any) -> commands.Result:
    """commands.run, looking in slurm.bin_dir / $CLUSTER_SLURM_BIN first."""
    return commands.run(args, backend="slurm", **kwargs)


def which(command: str) -> Optional[str]:
    return commands.which(command, backend="slurm")

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
#: squeue with a fixed few ids per call: a list this long still fits any command line.
CHUNK = 500
DETECT_TIMEOUT = 3.0
QUERY_TIMEOUT = 30.0
SUBMIT_TIMEOUT = 60.0


def detect() -> Detection:
    """Slurm is usable when sbatch and squeue exist and ``scontrol ping`` says the controller is UP.

    scontrol ping answers in ~10 ms either way; sinfo and squeue retry a dead controller for 9-18 s.
    """
    for command in ("sbatch", "squeue", "scontrol"):
        if which(command) is None:
            return Detection(False, f"{command} not found (PATH, slurm.bin_dir or commands.{command})")
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


def submit(script: Path, options: Mapping[str, Any], directives_in_script: bool) -> str:
    """``sbatch --parsable [words] script``; the job id. SubmitError names the keyword at fault.

    A submission that timed out or met a transient error may still have reached the controller, so
    each carries a unique ``--comment`` and, before another try, squeue is asked whether a job with that
    comment exists: a retry never makes a second copy of the job.
    """
    token = f"cluster-core:{uuid.uuid4().hex}"
    args = ["sbatch", "--parsable", f"--comment={token}"]
    if not directives_in_script:
        args += render.argv_words(render.render(options))
    args.append(str(script))
    attempt = 0
    while True:
        attempt += 1
        try:
            res = run(args, timeout=SUBMIT_TIMEOUT, retries=0, transient=TRANSIENT)
            break
        except SchedulerError as exc:
            if not exc.transient:
                _refused(exc, script, options)
            if not _never_reached(exc):
                # the job may have been created all the same: only a definite "no such job" allows a retry
                already = _find_by_comment(token, exc)
                if already:
                    log.warning("sbatch failed transiently (%s) but job %s was created; not submitting again",
                                str(exc).splitlines()[0], already)
                    return already
            if attempt > SUBMIT_RETRIES:
                _refused(exc, script, options)
            delay = SUBMIT_BACKOFF * 2 ** (attempt - 1)
            log.warning("%s; retrying in %.0f s (attempt %d of %d)", str(exc).splitlines()[0], delay, attempt,
                        SUBMIT_RETRIES + 1)
            time.sleep(delay)
    if res.stderr.strip():
        log.info("sbatch said: %s", res.stderr.strip())
    try:
        return parse.parse_sbatch(res.stdout)
    except ValueError as exc:
        raise SubmitError(f"sbatch gave no job id for {script}: {exc}", command=list(args),
                          output=res.stdout + res.stderr) from None


#: sbatch failures that prove the request never reached the controller: retried without asking first.
NOT_SUBMITTED = (r"Unable to contact slurm controller", r"Connection refused",
                 r"temporarily unable to accept job")


def _never_reached(exc: SchedulerError) -> bool:
    return exc.returncode is not None and any(re.search(p, exc.output or str(exc)) for p in NOT_SUBMITTED)


#: How long a submission keeps asking whether a job whose sbatch failed transiently exists (seconds).
CHECK_PATIENCE = 600.0


def _find_by_comment(token: str, cause: SchedulerError) -> Optional[str]:
    """The id of this user's job carrying ``token`` as its comment, or None when the controller says it
    has none. While squeue itself fails it is asked again (with back-off, up to CHECK_PATIENCE seconds):
    an unanswered question is no "no", and reading it as one submits the job twice. SubmitError when it
    never answers: whether the job exists cannot be told, and it is not submitted again."""
    deadline = time.monotonic() + CHECK_PATIENCE
    delay = SUBMIT_BACKOFF
    while True:
        try:
            out = run(["squeue", "-h", "-t", "all", "-u", getpass.getuser(), "-o", "%i|%k"],
                      timeout=QUERY_TIMEOUT, retries=0, transient=TRANSIENT).stdout
            break
        except SchedulerError as exc:
            if not exc.transient or time.monotonic() + delay > deadline:
                raise SubmitError(
                    f"sbatch failed ({str(cause).splitlines()[0]}) and squeue cannot tell whether the job "
                    f"was created ({str(exc).splitlines()[0]}); it is not submitted again, so as not to run "
                    f"it twice. Look for it with: squeue -u {getpass.getuser()} -t all -o '%i %k' | grep {token}",
                    command=exc.command, returncode=exc.returncode, output=exc.output, transient=True) from None
            log.warning("sbatch failed and squeue cannot be asked whether the job exists (%s); asking again "
                        "in %.0f s", str(exc).splitlines()[0], delay)
            time.sleep(delay)
            delay = min(delay * 2, 30.0)
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
    message = parse.error_summary(exc.output)
    keyword = parse.submit_error_keyword(exc.output, dict(options))
    about = f" ({keyword}={options[keyword]!r})" if keyword in options else ""
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


def _chunks(items: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


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
    ids = []
    for job_id in dict.fromkeys(str(j).strip() for j in job_ids):
        if parse.JOB_ID_RE.match(job_id):
            ids.append(job_id)
        else:
            log.debug("%r is not a Slurm job id; left out", job_id)
    if not ids:
        return []
    live: list[QueueJob] = []
    for chunk in _chunks(ids, CHUNK):
        live += parse.parse_squeue(_squeue(["-j", ",".join(chunk)]))
    known = parse.known_ids(live)
    arrays = {j.array_id for j in live if j.array_id}
    # arrays too: squeue forgets each finished task MinJobAge after it ended
    ask = [i for i in ids if i not in known or i in arrays]
    return parse.merge(live, _sacct(ask))


def cancel(job_ids: Sequence[str]) -> bool:
    """One ``scancel`` for all ids; ids that already ended are not an error."""
    ids = [str(j) for j in job_ids]
    if not ids:
        return True
    try:
        run(["scancel", *ids], timeout=QUERY_TIMEOUT, retries=2, backoff=1.0, transient=TRANSIENT)
    except SchedulerError as exc:
        errors = [line for line in exc.output.splitlines() if "error" in line.lower()]
        harmless = ("already completing or completed", "Invalid job id specified")
        if not errors or not all(any(h in line for h in harmless) for line in errors):
            raise
    return True
