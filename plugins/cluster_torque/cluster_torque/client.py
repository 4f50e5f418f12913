"""The scheduler calls: qsub, one qstat for all tracked jobs, one qdel; every call with a timeout.

Unknown ids: both qstat programs query each id operand on its own and keep going after one is unknown
(Torque 6.1.3 ``qstat.c`` prints one XML document per operand, OpenPBS merges all into one JSON object),
so stdout still describes the known jobs while stderr says ``qstat: Unknown Job Id [Error] ID`` and the
exit status is 153. The query therefore reads stdout whatever the exit status and accepts an id as
"gone" only when stderr names it. If an asked id is neither reported nor named (a qstat that gave up
early, or an error message we do not know), it asks once more for every job and filters here, so one
purged job never hides the others.

OpenPBS master's ``qstat -f -F json`` reports only the first operand's job (see
``_JSON_FIRST_OPERAND_ONLY``): when PBS Pro leaves asked jobs out without disowning them, the query
asks for them in the ``qstat -f -w`` text format, which lists every operand, and uses text for that
qstat from then on (one call per poll again).

A qsub that failed transiently or timed out may have created the job all the same (the server made it,
then the answer was lost). Each submission therefore carries a unique token in the job's Variable_List
(``-v CLUSTER_CORE_TOKEN=<hex>``, see :func:`tagged_args`), and before qsub runs again one qstat of
every job (finished ones included) is asked whether a job carries it; only a definite "no" allows
another try (:func:`submit`, :func:`find_by_token`).
"""

from __future__ import annotations

import getopt
import logging
import os
import re
import uuid
from pathlib import Path
from typing import Mapping, NoReturn, Optional, Sequence

import attrs

from cluster_core.backend import (Commands, QueueJob, Result, SchedulerError, SubmitError, ask_patiently,
                                  files_existing, first_line, job_id_from_output, keyword_for_error,
                                  output_appeared, submit_retrying)

from . import ids, parse
from .dialect import PBSPRO, TORQUE

log = logging.getLogger("cluster_core.torque")  # shown by `cluster -v`, with the core's

BACKEND = "torque"  # commands are looked up in $CLUSTER_TORQUE_BIN / torque.bin_dir before PATH
SUBMIT_TIMEOUT = 60.0
QUERY_TIMEOUT = 30.0
CANCEL_TIMEOUT = 30.0
RETRIES = 2
BACKOFF = 1.0

# Messages after which the same call can simply be made again.
TRANSIENT = (
    r"Connection to server timed out",
    r"Pbs Server is currently too busy",
    r"cannot connect to server",
    r"Connection refused",
    r"Communication failure",
    r"End of File",
    r"Premature end of message",
    r"server is busy",
)
# Transient messages that say qsub never reached the server, or was turned away before a job was made:
# qsub runs again without asking whether the job exists.
NOT_SUBMITTED = (
    r"cannot connect to server",
    r"Connection refused",
    r"Pbs Server is currently too busy",
)
TORQUE_COMMANDS = Commands(BACKEND, TRANSIENT, NOT_SUBMITTED)
#: qdel's complaints about jobs that already ended (or were purged): not an error for a cancel.
CANCEL_HARMLESS = (r"Unknown Job Id", r"invalid state for job", r"Job has finished", r"job has already finished",
                   r"Request invalid for state of job", r"Job is in wrong state", r"previously deleted")
UNKNOWN_JOB_EXIT = 153
#: What qrls says of a job that is not held: ended, purged, or (Torque) running.
RELEASE_HARMLESS = (*CANCEL_HARMLESS, r"can't be set from the job's current state")
#: The job variable that carries each submission's token (in Variable_List: ``qstat -f`` shows it).
TOKEN_VARIABLE = "CLUSTER_CORE_TOKEN"
#: How long a submission keeps asking whether a job whose qsub failed transiently exists (seconds).
CHECK_PATIENCE = 600.0

_UNKNOWN_RE = re.compile(r"Unknown Job Id(?: Error)?\s+(\S+)", re.IGNORECASE)
# OpenPBS without -x: "qstat: 15.vm Job has finished, use -x or -H to obtain historical job information"
_FINISHED_RE = re.compile(r"qstat:\s+(\S+)\s+Job has finished", re.IGNORECASE)
_ROOT_RE = re.compile(r"can not be run as root|cannot be run as root", re.IGNORECASE)


_transient = TORQUE_COMMANDS.is_transient


def call(args: Sequence[str], *, timeout: float, retries: int = RETRIES, retry_timeouts: bool = True,
         cwd: Optional[str] = None) -> Result:
    """Run a scheduler command (check=False); retry transient failures. A timeout is retried only with
    ``retry_timeouts``. Not for qsub: :func:`submit` asks whether the job exists before another try."""
    return TORQUE_COMMANDS.run(args, timeout=timeout, retries=retries, backoff=BACKOFF, check=False,
                               retry_timeouts=retry_timeouts, cwd=cwd)


# --- qsub ---------------------------------------------------------------------------------------------

def root_refusal() -> Optional[str]:
    """Why submitting as root will not work, or None when not root."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return None
    return ("cannot submit as root: Torque's qsub refuses root outright ('qsub can not be run as root'), and "
            "OpenPBS runs root jobs only with acl_roots set and then mishandles them (its mom ignores root "
            "processes: no memory accounting, a qdel'd job reports exit status 0). Submit as a normal user")


_KEYWORD_HINTS = (
    (re.compile(r"Unknown queue|unknown queue|illegal -q", re.I), "partition"),
    (re.compile(r"illegal -N|job name", re.I), "name"),
    (re.compile(r"illegal -t|illegal -J|array", re.I), "array"),
    (re.compile(r"walltime", re.I), "time"),
    (re.compile(r"illegal -a", re.I), "begin"),
    (re.compile(r"illegal -p", re.I), "priority"),
    (re.compile(r"illegal -A|account", re.I), "account"),
    (re.compile(r"depend", re.I), "depends"),
    (re.compile(r"illegal -[oe]\b", re.I), "outfile"),
    (re.compile(r"illegal -d|working directory", re.I), "workdir"),
    (re.compile(r"cannot send environment|illegal -v", re.I), "export"),
)


def keyword_for(message: str) -> Optional[str]:
    """The job keyword a qsub error message is about, when it can be told."""
    return keyword_for_error(message, _KEYWORD_HINTS)


def job_id_from_qsub(stdout: str) -> str:
    """The id qsub printed: its last line that is a job id (warnings may come first)."""
    return job_id_from_output(stdout, ids.ID_RE, "qsub")


def new_token() -> str:
    return uuid.uuid4().hex


# Every qsub option that takes an argument, Torque 6.1.3 and OpenPBS 23.06 together: enough to find the
# -v options among directive words.
_QSUB_OPTIONS = "a:A:b:c:C:d:D:e:EfF:GhIj:J:k:K:l:L:m:M:nN:o:Op:P:q:r:R:S:t:T:u:v:Vw:W:xXz"


def _last_value(words: Sequence[str], flag: str) -> tuple[bool, Optional[str]]:
    """(readable, value of the last ``-<flag>`` or None) among qsub option words."""
    try:
        opts, rest = getopt.getopt(list(words), _QSUB_OPTIONS)
    except getopt.GetoptError:
        return False, None
    if rest:
        return False, None
    values = [v for o, v in opts if o == f"-{flag}"]
    return True, (values[-1] if values else None)


def script_sets_variables(script: Path, prefix: str) -> bool:
    """Whether a script's own directive lines may hold a ``-v`` (a word starting with -v); unreadable: yes."""
    if not prefix:
        return False  # an empty prefix turns directives off
    try:
        text = Path(script).read_text(errors="replace")
    except OSError:
        return True
    flag = re.compile(r"(?:^|\s)-v")
    return any(line.lstrip().startswith(prefix) and flag.search(line.lstrip()[len(prefix):])
               for line in text.splitlines())


def tagged_args(args: Sequence[str], directives: Sequence[str], script: Path, token: str,
                directives_in_script: bool) -> Optional[list[str]]:
    """``args`` with ``-v`` naming the job's own variables and ``CLUSTER_CORE_TOKEN=token``, or None when
    the token cannot be added without changing the job's variables.

    Both servers keep only the last ``-v`` (Torque 6.1.3 and OpenPBS 23.06 alike; a ``-v`` on the command
    line replaces the script's ``#PBS -v``), so the token goes into a ``-v`` that repeats the last one of
    ``directives`` (the rendered options, in the script or in ``args``). A user's own script whose
    ``#PBS`` lines may set variables of their own, with no ``-v`` from the options, gets no token."""
    readable, exported = _last_value(directives, "v")
    if not readable:
        return None
    if exported is None and not directives_in_script:
        _, prefix = _last_value(directives, "C")
        if prefix is None:
            prefix = os.environ.get("PBS_DPREFIX", "#PBS")
        if script_sets_variables(script, prefix):
            log.debug("%s may set job variables of its own (#PBS -v): submitted without a token, so a "
                      "transient qsub failure will not be retried", script)
            return None
    variables = f"{exported},{TOKEN_VARIABLE}={token}" if exported else f"{TOKEN_VARIABLE}={token}"
    return [*args, "-v", variables]


def submit(script: Path, extra_args: Sequence[str], *, workdir: Optional[str] = None,
           token: Optional[str] = None, outputs: Sequence[Optional[str]] = (), dialect: str = TORQUE) -> str:
    """``qsub [args] script``; returns the job id.

    ``token`` is the value ``extra_args`` put into the job's Variable_List (:func:`tagged_args`). A qsub
    that failed transiently or timed out may have created the job: qstat is asked for a job carrying the
    token (:func:`find_by_token`), and qsub runs again only when there is none. Without a token such a
    failure is reported, never retried. A message that says qsub never reached the server is retried at
    once. ``outputs`` (the job's stdout and stderr files) tell a job that ran and is no longer listed."""
    args = ["qsub", *extra_args, str(script)]
    cwd = workdir if (workdir and os.path.isdir(workdir)) else None  # PBS_O_WORKDIR follows qsub's cwd
    # with -V, a token in qsub's own environment (a job submitting jobs) would reach the job as well
    env = {k: v for k, v in os.environ.items() if k != TOKEN_VARIABLE}
    before = files_existing(outputs)

    def attempt() -> str:
        res = TORQUE_COMMANDS.run(args, timeout=SUBMIT_TIMEOUT, retries=0, check=False, env=env, cwd=cwd)
        if res.returncode == 0:
            return job_id_from_qsub(res.stdout)
        message = ((res.stderr or "") + (res.stdout or "")).strip()
        raise SchedulerError(f"qsub failed (exit {res.returncode}): {message[:2000]}", command=args,
                             returncode=res.returncode, output=message, transient=_transient(message))

    def find(exc: SchedulerError) -> Optional[str]:
        if token is None:
            raise SubmitError(f"{first_line(exc)}; the job may or may not have been queued, and it is not submitted "
                              "again (check with qstat before submitting it yourself)", command=args,
                              returncode=exc.returncode, output=exc.output, transient=True)
        return find_by_token(dialect, token, str(exc), before)

    def refused(exc: SchedulerError) -> NoReturn:
        message = exc.output or ""
        if exc.returncode is None and not exc.transient:  # qsub missing or not runnable
            raise SubmitError(str(exc), command=args, output=exc.output)
        if exc.returncode is not None and _ROOT_RE.search(message):
            raise SubmitError(root_refusal() or message, command=args, returncode=exc.returncode, output=message)
        if not exc.transient:
            raise SubmitError(f"qsub refused the job (exit {exc.returncode}): {message[:2000]}",
                              keyword=keyword_for(message), command=args, returncode=exc.returncode, output=message)
        raise SubmitError(str(exc), command=args, returncode=exc.returncode, output=exc.output, transient=True)

    return submit_retrying(attempt, TORQUE_COMMANDS, find=find, refused=refused, retries=RETRIES, backoff=BACKOFF,
                           logger=log)


def token_query_args(dialect: str) -> list[str]:
    """One qstat of every job the server lists, with its Variable_List: Torque ``qstat -x`` (XML; its -u
    does not combine with -x, and completed jobs stay for keep_completed), PBS Pro ``qstat -f -w -x``
    (text, with the finished jobs of its history; -u does not combine with -f)."""
    return ["qstat", "-x"] if dialect == TORQUE else ["qstat", "-f", "-w", "-x"]


def find_by_token(dialect: str, token: str, failure: str,
                  before: Optional[Mapping[str, bool]] = None) -> Optional[str]:
    """The id of the job carrying ``token``, or None when qstat definitely lists none. While qstat fails it
    is asked again (with back-off, up to CHECK_PATIENCE seconds): an unanswered question is no "no", and
    reading it as one submits the job twice. SubmitError when it never answers, or when no job carries the
    token but the job's output files appeared since qsub ran (it ran and the server forgot it)."""
    args = token_query_args(dialect)
    marker = f"{TOKEN_VARIABLE}={token}"
    history = "qstat -f -x" if dialect == PBSPRO else "qstat -f"
    hint = (f"it is not submitted again, so as not to run it twice. If it exists, it carries {marker} in its "
            f"Variable_List ({history} shows it)")
    def ask() -> list[str]:
        res = TORQUE_COMMANDS.run(args, timeout=QUERY_TIMEOUT, retries=0, check=False)
        message = ((res.stderr or "") + (res.stdout or "")).strip()
        readable = dialect != TORQUE or "<Data" in res.stdout or not res.stdout.strip()
        if res.returncode == 0 and readable:
            return parse.ids_carrying(res.stdout, marker, xml=dialect == TORQUE)
        raise SchedulerError(f"qstat failed (exit {res.returncode}): {message[:500]}", command=args,
                             returncode=res.returncode, output=message,
                             transient=res.returncode != 0 and _transient(message))

    def give_up(err: SchedulerError) -> SubmitError:
        return SubmitError(f"{first_line(failure)}, and qstat cannot tell whether the job was created "
                           f"({first_line(err, 'no answer')}); {hint}", command=err.command,
                           returncode=err.returncode, output=err.output, transient=True)

    found = ask_patiently(ask, give_up, waiting="qsub failed and qstat cannot be asked whether the job exists",
                          patience=CHECK_PATIENCE, delay=BACKOFF, logger=log)
    if found:
        return found[0]
    if output_appeared(before or {}):
        raise SubmitError(f"{first_line(failure)}; no job the server lists carries {marker}, but the job's output "
                          f"files appeared since: it was created and has run. It is not submitted again, so as not "
                          f"to run it twice", command=args, transient=True)
    return None


# --- qstat --------------------------------------------------------------------------------------------

def qstat_args(dialect: str, job_ids: Optional[Sequence[str]], text: bool = False,
               history: bool = False) -> list[str]:
    """Torque: ``qstat -x -t [ids]`` (XML; -t lists array tasks, and without it ``qstat -x 'N[].vm'``
    returns every job). PBS Pro: ``qstat -f -F json -x -t [ids]`` (-x adds finished jobs, which PBS Pro
    shows only in history), or ``qstat -f -w -x -t`` text when its JSON cannot be read. Never ``-u``
    with JSON (openpbs#2675): user and queue are filtered here. Without ids PBS Pro lists current jobs
    only (its history can hold days of jobs) unless ``history``."""
    if dialect == TORQUE:
        args = ["qstat", "-x", "-t"]
    else:
        args = ["qstat", "-f", "-w"] if text else ["qstat", "-f", "-F", "json"]
        if job_ids or history:
            args.append("-x")
        args.append("-t")
    return args + list(job_ids or [])


def unknown_ids(stderr: str) -> set[str]:
    """Ids qstat says it cannot show: unknown (purged, or never existed), or finished outside the
    history it was asked for."""
    text = stderr or ""
    return {m.group(1) for m in _UNKNOWN_RE.finditer(text)} | {m.group(1) for m in _FINISHED_RE.finditer(text)}


def _parse(dialect: str, stdout: str, text: bool) -> list[QueueJob]:
    if text:
        return parse.parse_qstat_f(stdout)
    return parse.parse_torque_xml(stdout) if dialect == TORQUE else parse.parse_pbs_json(stdout)


# qstat executables whose -F json answer holds only the first operand's job: OpenPBS master (cd7ab5eda,
# reporting 23.06.06) keeps the "Jobs" object of qstat.c display_statjob() in a local variable that is set
# on the first call only, so the jobs of every later operand are dropped without a word (exit 0).
_JSON_FIRST_OPERAND_ONLY: set[str] = set()


def _qstat_path() -> str:
    return TORQUE_COMMANDS.which("qstat") or "qstat"


def _ask(dialect: str, job_ids: Optional[Sequence[str]], history: bool = False,
         text: bool = False) -> tuple[list[QueueJob], set[str], Result, bool]:
    """One qstat call (plus a text retry when PBS Pro's JSON cannot be read): records, unknown ids,
    result, and whether the text format was read. PBS Pro is asked for text straight away when its qstat
    is known to drop operands from JSON."""
    if dialect == PBSPRO and job_ids and len(job_ids) > 1 and _qstat_path() in _JSON_FIRST_OPERAND_ONLY:
        text = True
    args = qstat_args(dialect, job_ids, text=text, history=history)
    res = call(args, timeout=QUERY_TIMEOUT)
    try:
        records = _parse(dialect, res.stdout, text=text)
    except parse.ParseError as exc:
        if dialect != PBSPRO or text:
            raise SchedulerError(f"{exc}", command=args, returncode=res.returncode, output=res.stdout) from None
        log.debug("%s; asking again for qstat -f text", exc)
        text = True
        args = qstat_args(dialect, job_ids, text=True, history=history)
        res = call(args, timeout=QUERY_TIMEOUT)
        records = _parse(dialect, res.stdout, text=True)
    gone = unknown_ids(res.stderr)
    message = ((res.stderr or "") + (res.stdout or "")).strip()
    # With ids, an error that names none of them may concern only some (query() then asks for all jobs);
    # without ids, or when the server cannot be reached at all, there is nothing left to try.
    if res.returncode != 0 and not records and not gone and (not job_ids or _transient(message)):
        raise SchedulerError(f"qstat failed (exit {res.returncode}): {message[:2000]}", command=args,
                             returncode=res.returncode, output=message, transient=_transient(message))
    return records, gone, res, text


def query(dialect: str, job_ids: Optional[Sequence[str]], user: Optional[str] = None,
          partition: Optional[str] = None) -> list[QueueJob]:
    """The records for ``job_ids`` (their spelling kept), or every job of ``user`` in ``partition``."""
    if not job_ids:
        records, _, _, _ = _ask(dialect, None)
        return [r for r in records if (not user or r.user == user) and (not partition or r.partition == partition)]
    asked = list(dict.fromkeys(str(j).strip() for j in job_ids))
    records, gone, res, text = _ask(dialect, asked)
    result = match(asked, records)
    lost = [j for j in asked if j not in result and not _named(j, gone)]
    if lost and dialect == PBSPRO and not text and len(asked) > 1 and (res.returncode == 0 or gone):
        # PBS Pro answers every operand of -x -t ids (finished ones from the history) or names it as
        # unknown: a job missing while qstat explained every error is the JSON defect above. Ask in text,
        # and from now on for text.
        log.debug("qstat -F json dropped %s without a word; asking again in text, and from now on", lost)
        _JSON_FIRST_OPERAND_ONLY.add(_qstat_path())
        more, more_gone, res, _ = _ask(dialect, lost, text=True)
        result.update(match(lost, more))
        gone |= more_gone
        lost = [j for j in lost if j not in result and not _named(j, gone)]
    if lost and res.returncode != 0:
        log.debug("qstat (exit %s) neither reported nor disowned %s; asking for every job", res.returncode, lost)
        everything, _, _, _ = _ask(dialect, None, history=True)
        result.update(match(lost, everything))
    out: list[QueueJob] = []
    for job_id in asked:
        out.extend(result.get(job_id, ()))
    return out


def _named(job_id: str, names: set[str]) -> bool:
    jid = ids.try_parse(job_id)
    return any((jid is not None and (other := ids.try_parse(n)) is not None and jid.same_job(other))
               or n == job_id for n in names)


def match(asked: Sequence[str], records: list[QueueJob]) -> dict[str, list[QueueJob]]:
    """Records for each asked id, renamed to the asked spelling (the core matches ids exactly). For an
    array's id: every task the scheduler lists (``array_id`` = the asked id, ``id`` = the task's own
    name), and PBS Pro's own parent record; Torque's ``-t`` lists tasks only. A job qstat listed twice
    (asked for as ``3`` and as ``3.vm``) counts once."""
    # qstat answers each operand on its own: two spellings of one job (3 and 3.vm) list it twice
    parsed = [(ids.try_parse(r.id), r) for r in {r.id: r for r in records}.values()]
    out: dict[str, list[QueueJob]] = {}
    for job_id in asked:
        want = ids.try_parse(job_id)
        if want is None:
            continue
        hits: list[QueueJob] = []
        for jid, r in parsed:
            if jid is None:
                continue
            if want.same_job(jid):
                hits.insert(0, _renamed(r, job_id))
            elif want.is_array_parent and jid.is_subjob and want.same_job(jid.parent):
                hits.append(_with_array_id(r, job_id))
        if hits:
            out[job_id] = hits
    return out


def _renamed(r: QueueJob, job_id: str) -> QueueJob:
    return r if r.id == job_id else attrs.evolve(r, id=job_id)


def _with_array_id(r: QueueJob, parent_id: str) -> QueueJob:
    return r if r.array_id == parent_id else attrs.evolve(r, array_id=parent_id)


# --- qdel ---------------------------------------------------------------------------------------------

def cancel(job_ids: Sequence[str]) -> bool:
    """One ``qdel`` for every id; ids that already ended (or were purged) are not an error."""
    return TORQUE_COMMANDS.cancel(["qdel", *[str(j) for j in job_ids]], CANCEL_HARMLESS, timeout=CANCEL_TIMEOUT,
                                  retries=RETRIES, backoff=BACKOFF)


def release(job_ids: Sequence[str]) -> bool:
    """One ``qrls`` for every id (the user hold of ``qsub -h``); ids that ended, were purged or run are
    not an error."""
    try:
        return TORQUE_COMMANDS.cancel(["qrls", *[str(j) for j in job_ids]], RELEASE_HARMLESS,
                                      timeout=CANCEL_TIMEOUT, retries=RETRIES, backoff=BACKOFF)
    except SchedulerError as exc:
        # Torque's qrls of a purged job says nothing and exits 153 (PBSE_UNKJOBID, 15001, modulo 256)
        if exc.returncode == UNKNOWN_JOB_EXIT and not (exc.output or "").strip():
            return True
        raise


def server_answers(timeout: float = 3.0) -> tuple[bool, str]:
    """Whether the default server answers ``qstat -B`` within ``timeout`` seconds, and what it said."""
    try:
        res = TORQUE_COMMANDS.run(["qstat", "-B"], timeout=timeout, check=False)
    except SchedulerError as exc:
        return False, str(exc)
    if res.returncode != 0:
        message = ((res.stderr or "") + (res.stdout or "")).strip().splitlines()
        return False, f"qstat -B failed (exit {res.returncode}): {message[0] if message else 'no output'}"
    rows = [line.split()[0] for line in res.stdout.splitlines()[2:] if line.strip()]
    return True, f"server {rows[0]} answered" if rows else "server answered"


def max_array_size(dialect: str) -> Optional[int]:
    """The server's limit on tasks per array (None: no limit). When the server cannot be asked, the
    default: none for Torque, 10000 for PBS Pro."""
    pbspro = dialect == PBSPRO
    fallback = parse.PBSPRO_DEFAULT_MAX_ARRAY if pbspro else None
    args = ["qstat", "-B", "-f", "-F", "json"] if pbspro else ["qstat", "-B", "-f"]
    try:
        res = call(args, timeout=QUERY_TIMEOUT)
    except SchedulerError as exc:
        log.debug("cannot read the server's array size limit (%s); assuming %s", exc, fallback)
        return fallback
    if res.returncode != 0:
        log.debug("qstat -B -f failed (exit %s); assuming an array size limit of %s", res.returncode, fallback)
        return fallback
    try:
        return parse.max_array_size(res.stdout, pbspro)
    except parse.ParseError as exc:
        log.debug("%s; assuming an array size limit of %s", exc, fallback)
        return fallback
