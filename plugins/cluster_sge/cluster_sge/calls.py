"""Every call to a Grid Engine command: qsub, qstat, qacct, qdel, qconf. One call per batch of jobs.

Commands go through :class:`cluster_core.backend.Commands` for ``sge``, so ``$CLUSTER_SGE_BIN`` or the
config's ``sge.bin_dir`` come before PATH (Torque and OpenPBS also install a ``qsub``).

The jobs it deleted are written down where every process of the user reads them (:func:`mark_deleted`):
accounting cannot tell a deleted job from one killed by a signal, and a job deleted before it started is
in no record at all. Besides, the plugin remembers a little per process, only to ask less: when it
submitted a job (to bound the qacct search), who owns the jobs it has seen (to ask qstat about those
users only), the tasks of the arrays it submitted and the final records it has read (a finished job is
never looked up twice).

A qsub that failed transiently or timed out may have been accepted all the same (the qmaster made the
job, then the answer was lost). Each submission carries a unique token in its job context (``-ac
CLUSTER_CORE_TOKEN=<hex>``), and before qsub runs again the qmaster is asked whether one of this user's
jobs carries it; only a definite "no" allows another try (:func:`submit`, :func:`find_by_token`).
"""

from __future__ import annotations

import datetime
import getpass
import logging
import re
import shutil
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Mapping, NoReturn, Optional, Sequence

from cluster_core.backend import (Commands, argv_words, Detection, QueueJob, Result, SchedulerError, State, SubmitError,
                                  ask_patiently, chunks, error_summary, files_existing, first_line, job_id_from_output,
                                  keyword_for_error,
                                  known_ids, merge_records, output_appeared, submit_retrying)

from . import deleted, parse, render

log = logging.getLogger("cluster_core.sge")

BACKEND = "sge"
#: Messages of a qmaster that is starting, busy or briefly unreachable: worth another try.
TRANSIENT = (
    r"unable to contact qmaster",
    r"unable to send message to qmaster",
    r"commlib error",
    r"got send error",
    r"failed receiving gdi request",
    r"can't unpack gdi request",
    r"qmaster is in startup",
    r"Connection refused",
)
#: Transient messages that say qsub never reached the qmaster: qsub runs again without asking whether
#: the job exists.
NOT_SUBMITTED = (
    r"Connection refused",
    r"unable to contact qmaster",
    r"qmaster is in startup",
)
#: qdel's complaints about jobs that already ended or are being deleted: not an error for a cancel.
CANCEL_HARMLESS = ("does not exist", "already in deletion", "has deleted", "has registered the job")
RELEASE_HARMLESS = ("does not exist",)  # a job that ended; one that runs: exit 0
#: messages and qacct's dates are parsed: keep them in English whatever the user's locale
SGE = Commands(BACKEND, TRANSIENT, NOT_SUBMITTED, env={"LC_ALL": "C"})
#: The job context variable (qsub -ac) that carries each submission's token.
TOKEN_CONTEXT = "CLUSTER_CORE_TOKEN"
SUBMIT_RETRIES = 3
SUBMIT_BACKOFF = 1.0
#: How long a submission keeps asking whether a job whose qsub failed transiently exists (seconds).
CHECK_PATIENCE = 600.0
#: How far the qmaster's submission time of a finished job may lie outside the failed qsub's run (clocks
#: of the submit host and the qmaster that disagree) to be taken for the job it made.
SUBMIT_CLOCK_SLACK = 5.0
#: qstat -j asks about this many jobs at once.
CHUNK = 200
DETECT_TIMEOUT = 3.0
QUERY_TIMEOUT = 30.0
SUBMIT_TIMEOUT = 60.0
#: How far back qacct looks for a finished job whose submission time this process does not know.
LOOKBACK = 7 * 86400.0
#: Margin for clocks of the submit host and the qmaster that disagree.
CLOCK_SLACK = 3600.0

_lock = threading.RLock()
_submitted: dict[str, float] = {}       # job number -> when it was submitted (seconds since the epoch)
_owners: dict[str, str] = {}            # job number -> owner
_array_tasks: dict[str, list[int]] = {}  # array job number -> its Grid Engine task numbers
_final: dict[str, QueueJob] = {}        # id -> finished record, never asked again
_mine: set[str] = set()                 # job numbers this process's submissions made


def forget() -> None:
    """Drop what this process remembers about jobs (tests whose cell restarts and reuses numbers)."""
    with _lock:
        for store in (_submitted, _owners, _array_tasks, _final, _mine):
            store.clear()


def _run(args: Sequence[str], **kwargs: Any) -> Result:
    return SGE.run(args, **kwargs)


# --- detect ---------------------------------------------------------------------------------------

def detect() -> Detection:
    """Usable when qsub, qstat, qacct and qdel are Grid Engine's (``qstat -help`` names it, unlike
    Torque's or OpenPBS's qstat) and the qmaster answers ``qstat -g c``. Both answer in ~60 ms, up or down."""
    missing = SGE.missing(("qsub", "qstat", "qacct", "qdel"))
    if missing:
        return Detection(False, missing)
    qstat = SGE.which("qstat")
    try:
        res = _run(["qstat", "-help"], timeout=DETECT_TIMEOUT, check=False)
    except SchedulerError as exc:
        return Detection(False, f"{qstat} -help failed: {exc}")
    version = (res.stdout or res.stderr).strip().splitlines()[0] if (res.stdout or res.stderr).strip() else ""
    if not re.match(r"(SGE|OGS/GE|UGE|AGE|GE|Univa Grid Engine|Altair Grid Engine|Grid Engine)\b", version):
        return Detection(False, f"{qstat} is not Grid Engine's qstat (it says {version[:60]!r}); "
                                "point sge.bin_dir at Grid Engine's commands")
    try:
        res = _run(["qstat", "-g", "c"], timeout=DETECT_TIMEOUT, check=False)
    except SchedulerError as exc:
        return Detection(False, f"the Grid Engine qmaster did not answer: {exc}")
    text = (res.stdout + res.stderr).strip()
    if res.returncode == 0 and "CLUSTER QUEUE" in text:
        return Detection(True, f"{version}: the qmaster answers ({_queue_count(text)} cluster queues)")
    first = next((line for line in text.splitlines() if line.strip()), f"exit {res.returncode}")
    return Detection(False, f"the Grid Engine qmaster is not answering: {first}")


def _queue_count(text: str) -> int:
    return sum(1 for line in text.splitlines()[2:] if line.strip())


# --- submit ---------------------------------------------------------------------------------------

def shell_for(script: Path) -> tuple[str, ...]:
    """``-S`` for a user's own script, from its ``#!`` line: Grid Engine's default mode starts a job
    with the queue's shell and ignores the ``#!`` line. A script without one runs under bash."""
    try:
        with open(script, "rb") as fh:
            first = fh.readline(512).decode(errors="replace").strip()
    except OSError:
        return render.SHELL
    if not first.startswith("#!"):
        return render.SHELL
    words = first[2:].split()
    if not words:
        return render.SHELL
    if Path(words[0]).name == "env" and len(words) > 1:  # #!/usr/bin/env python3
        found = shutil.which(words[1])
        return ("-S", found) if found else render.SHELL
    return ("-S", words[0])


def submit_args(script: Path, options: Mapping[str, Any], directives_in_script: bool) -> list[str]:
    """The qsub command line: every option as argv words, the script last.

    For a script the core wrote, ``-C ''`` turns off Grid Engine's reading of its ``#$`` lines: they
    carry the same options, but its directive parser drops quote characters (``-wd "/a 'b'"`` becomes
    ``/a b``), while argv words arrive exactly. A user's own script keeps its ``#$`` lines; the command
    line overrides them, and ``-S`` follows the script's ``#!`` line.
    """
    directives = render.render(options)
    if not directives_in_script:
        directives = [shell_for(script) if d == render.SHELL else d for d in directives]
    args = ["qsub", "-terse", "-w", render.verify_level()]
    if directives_in_script:
        args += ["-C", ""]
    return args + argv_words(directives) + [str(script)]


def submit(script: Path, options: Mapping[str, Any], directives_in_script: bool) -> str:
    """``qsub -terse [words] -ac CLUSTER_CORE_TOKEN=<hex> script``; the job number. SubmitError names the
    keyword at fault.

    A qsub that timed out or met a transient error may still have been accepted: the qmaster is asked for
    a job carrying the token (:func:`find_by_token`) and qsub runs again only when there is none. The
    token goes last, after any ``-sc`` of the user's, which would replace the whole context."""
    args = submit_args(script, options, directives_in_script)
    token = uuid.uuid4().hex
    args = [*args[:-1], "-ac", f"{TOKEN_CONTEXT}={token}", args[-1]]
    name = render.job_name(str(options["name"])) if options.get("name") else None
    before = files_existing((options.get("outfile"), options.get("errfile")))
    started = time.time()

    def attempt() -> str:
        res = _run(args, timeout=SUBMIT_TIMEOUT, retries=0, transient=TRANSIENT)
        number = job_id_from_output(res.stdout, parse.QSUB_ID, "qsub")
        if res.stderr.strip():
            log.info("qsub said: %s", res.stderr.strip())
        _remember(number, time.time(), options)
        m = re.search(r"^\d+\.(\d+-\d+:\d+)\s*$", res.stdout.strip(), re.MULTILINE)
        if m:
            with _lock:
                _array_tasks[number] = parse.expand_tasks(m.group(1))
        return number

    def find(exc: SchedulerError) -> Optional[str]:
        number = find_by_token(token, str(exc), started=started, name=name, before=before)
        if number:
            _remember(number, started, options)
        return number

    def refused(exc: SchedulerError) -> NoReturn:
        _refused(exc, script, options)

    return submit_retrying(attempt, SGE, find=find, refused=refused, retries=SUBMIT_RETRIES,
                           backoff=SUBMIT_BACKOFF, logger=log)


def _remember(number: str, when: float, options: Mapping[str, Any]) -> None:
    with _lock:
        _submitted[number] = when
        _owners[number] = getpass.getuser()
        _mine.add(number)
    if options.get("array"):
        try:
            (_, spec), *_ = render.array_flags(str(options["array"]))
            with _lock:
                _array_tasks.setdefault(number, parse.expand_tasks(spec))
        except Exception as exc:  # the tasks are then asked of accounting, as for a job not submitted here
            log.debug("tasks of array %s unknown: %s", number, exc)


def _refused(exc: SchedulerError, script: Path, options: Mapping[str, Any]) -> NoReturn:
    """Turn qsub's failure into a SubmitError naming the keyword at fault where it can be told."""
    if exc.returncode is None or exc.transient:  # missing command, timeout, qmaster away
        raise SubmitError(f"qsub could not submit {script}: {exc}", command=exc.command,
                          returncode=exc.returncode, output=exc.output, transient=exc.transient) from None
    message = error_summary(exc.output, strip=parse.QSUB_ERROR_PREFIXES, drop=(r"Exiting\.",))
    keyword = keyword_for_error(exc.output, parse.submit_errors(render.setting("memory_resource"),
                                                                render.setting("gpu_resource")), options)
    about = f" ({keyword}={options[keyword]!r})" if keyword is not None and keyword in options else ""
    if parse.NO_QUEUE.search(exc.output):
        asked = ", ".join(f"{k}={options[k]!r}" for k in parse.NO_QUEUE_KEYWORDS if k in options)
        about = (f": no queue of this cluster can ever run it (qsub -w {render.verify_level()}); "
                 f"{'it asked for ' + asked if asked else 'check its extra= options'}")
    raise SubmitError(f"Grid Engine refused job {script.name}: {message}{about}", keyword=keyword,
                      command=exc.command, returncode=exc.returncode, output=exc.output) from None


def _since(entry: parse.QstatEntry, since: float) -> bool:
    """Whether a job was submitted or started at ``since`` or later (or qstat gives no time for it)."""
    times = [t for t in (entry.submit_time, entry.start_time) if t is not None]
    return not times or max(times) >= since


def _ask_for_token(token: str, user: str, since: float) -> tuple[Optional[str], list[parse.QstatEntry]]:
    """One look: (the number of the job of ``user`` carrying ``token``, or None; the user's jobs that have
    ended, with those that left qstat while it was asked). ``qstat -s prsz -u user`` lists every live and
    recently finished job, ``qstat -j numbers`` the contexts of the live ones submitted (or started) since
    ``since`` by the qmaster's clock."""
    def ask(args: list[str], read: Any) -> Any:
        out = _run(args, timeout=QUERY_TIMEOUT, retries=0, transient=TRANSIENT).stdout
        try:
            return read(out)
        except ValueError as exc:  # unreadable: no answer, which asking again may give
            raise SchedulerError(str(exc), command=args, output=out, transient=True) from None

    entries = ask(["qstat", "-xml", "-s", "prsz", "-u", user], parse.parse_qstat_xml)
    ended = [e for e in entries if "z" in e.state]
    live = {e.number: e for e in entries if "z" not in e.state and _since(e, since)}
    numbers = list(live)
    contexts: dict[str, dict[str, str]] = {}
    for chunk in chunks(numbers, CHUNK):
        contexts.update(ask(["qstat", "-xml", "-j", ",".join(chunk)], parse.parse_job_contexts))
    for number in numbers:
        if contexts.get(number, {}).get(TOKEN_CONTEXT) == token:
            return number, ended
    # a job listed live that qstat -j no longer knows has just ended: its context can no longer be read
    return None, ended + [live[n] for n in numbers if n not in contexts]


def find_by_token(token: str, failure: str, *, started: float, name: Optional[str] = None,
                  before: Optional[Mapping[str, bool]] = None) -> Optional[str]:
    """The number of this user's job carrying ``token``, or None when there definitely is none.

    A live job shows its context in ``qstat -j``; a job that has ended no longer does (nor does qacct).
    So when no live job carries the token, the job may have run and ended already: its output files,
    which did not exist before qsub (``before``), tell. Appeared: the one ended job named ``name`` that
    the qmaster received while qsub ran is it (none or several: SubmitError). Not appeared: the job never
    ran, and submitting again cannot run it twice. Nothing to tell by: an ended job named ``name`` of the
    last hour that this process did not submit means it cannot be told (SubmitError); none means no.

    While qstat fails it is asked again (with back-off, up to CHECK_PATIENCE seconds): an unanswered
    question is no "no", and reading it as one submits the job twice. SubmitError when it never answers."""
    user = getpass.getuser()
    marker = f"{TOKEN_CONTEXT}={token}"
    hint = (f"it is not submitted again, so as not to run it twice. If it exists, its context holds {marker} "
            f"(qstat -j <number> shows it)")
    first = first_line(failure, "qsub failed")

    def give_up(err: SchedulerError) -> SubmitError:
        return SubmitError(f"{first}, and qstat cannot tell whether the job was created "
                           f"({first_line(err, 'no answer')}); {hint}", command=err.command,
                           returncode=err.returncode, output=err.output, transient=True)

    number, ended = ask_patiently(lambda: _ask_for_token(token, user, started - CLOCK_SLACK), give_up,
                                  waiting="qsub failed and qstat cannot be asked whether the job exists",
                                  patience=CHECK_PATIENCE, delay=SUBMIT_BACKOFF, logger=log)
    if number:
        return number
    ran = output_appeared(before or {})
    if ran is False:
        return None
    with _lock:
        mine = set(_mine)
    named = [e for e in ended if e.number not in mine and (name is None or e.name == name)]
    if ran:
        low, high = started - SUBMIT_CLOCK_SLACK, time.time() + SUBMIT_CLOCK_SLACK
        # qstat gives a running job's start time only (a job that ended while qstat was asked)
        candidates = sorted({e.number for e in named if low <= (e.submit_time or e.start_time or 0.0) <= high})
        if len(candidates) == 1:
            log.info("no live job carries token %s, but the job's output files appeared and job %s, of its name, "
                     "was received while qsub ran and has ended: taken for it", token, candidates[0])
            return candidates[0]
        which = f"jobs {', '.join(candidates)} could each be it" if candidates else "it is no longer listed"
        raise SubmitError(f"{first}; the job was created and has run (its output files appeared), but {which}; "
                          f"it is not submitted again, so as not to run it twice", transient=True)
    low = started - CLOCK_SLACK
    candidates = sorted({e.number for e in named if e.submit_time is None or e.submit_time >= low})
    if not candidates:
        return None
    raise SubmitError(f"{first}; no live job carries its token, and ended job(s) {', '.join(candidates)} of the "
                      f"same name may be it; {hint}", transient=True)


def max_array_size() -> int:
    """Tasks one array may hold: the cluster's max_aj_tasks (75000 by default)."""
    try:
        text = _run(["qconf", "-sconf"], timeout=QUERY_TIMEOUT, retries=1, transient=TRANSIENT).stdout
        m = re.search(r"^max_aj_tasks\s+(\d+)", text, re.MULTILINE)
        if m and int(m.group(1)) > 0:
            return int(m.group(1))
    except SchedulerError as exc:
        log.debug("max_aj_tasks unknown (%s); using Grid Engine's default 75000", exc)
    return 75000


# --- parse_queue ----------------------------------------------------------------------------------

def _qstat(users: Sequence[str]) -> list[parse.QstatEntry]:
    args = ["qstat", "-xml", "-r", "-u", ",".join(users)]
    res = _run(args, timeout=QUERY_TIMEOUT, retries=2, backoff=1.0, transient=TRANSIENT)
    try:
        return parse.parse_qstat_xml(res.stdout)
    except ValueError as exc:
        raise SchedulerError(str(exc), command=args, output=res.stdout) from None


def _error_reasons(numbers: Sequence[str]) -> dict[str, str]:
    """Why jobs sit in error state (one ``qstat -j`` for all of them); {} when qstat cannot tell."""
    if not numbers:
        return {}
    try:
        res = _run(["qstat", "-xml", "-j", ",".join(numbers)], timeout=QUERY_TIMEOUT, check=False)
    except SchedulerError as exc:
        log.debug("no error reasons for %s: %s", numbers, exc)
        return {}
    return parse.parse_error_reasons(res.stdout)


def qacct_args(numbers: Sequence[str], now: Optional[float] = None) -> list[str]:
    """One qacct call for these job numbers: ``-j N`` for one, else every job (``-j '*'``) started since
    the earliest of their submissions (qacct takes one job id or a name pattern, not a list)."""
    if len(numbers) == 1:
        return ["qacct", "-j", numbers[0]]
    now = time.time() if now is None else now
    with _lock:
        times = [_submitted.get(n) for n in numbers]
    known = [t for t in times if t is not None]
    begin = (min(known) - CLOCK_SLACK) if len(known) == len(times) else now - LOOKBACK
    return ["qacct", "-j", "*", "-b", datetime.datetime.fromtimestamp(begin).strftime("%Y%m%d%H%M.%S")]


def _qacct(numbers: Sequence[str]) -> list[QueueJob]:
    """Finished jobs from accounting; [] when qacct knows none of them (yet: it reads the accounting file,
    which the qmaster writes at each flush, every 15 s by default) or fails."""
    if not numbers:
        return []
    args = qacct_args(numbers)
    try:
        res = _run(args, timeout=QUERY_TIMEOUT, check=False)
    except SchedulerError as exc:
        log.warning("qacct cannot tell about jobs %s: %s", ",".join(numbers[:10]), exc)
        return []
    if res.returncode != 0:
        text = (res.stderr + res.stdout).strip()
        level = logging.DEBUG if re.search(r"not found|no such file|does not exist", text, re.I) else logging.WARNING
        log.log(level, "qacct %s: %s", " ".join(args[1:]), text[:300])
        return []
    records = parse.qacct_records(res.stdout, wanted=set(numbers))
    notes = deleted.read(numbers)
    cancelled = {r.id for r in records
                 if deleted.applies(notes.get(r.id, notes.get(r.array_id or r.id)), r.submit_time)}
    if not cancelled:
        return records
    return parse.qacct_records(res.stdout, wanted=set(numbers), cancelled=cancelled)


def _users_for(numbers: Sequence[str]) -> list[str]:
    """Whose jobs qstat must list: the owners this process knows, or everyone ('*') when any is unknown."""
    with _lock:
        owners = [_owners.get(n) for n in numbers]
    if any(o is None for o in owners):
        return ["*"]
    return sorted(set(owners))  # type: ignore[arg-type]


def list_jobs(user: Optional[str], partition: Optional[str]) -> list[QueueJob]:
    """Every job of ``user`` (everyone's for None) in ``partition`` that qstat shows."""
    entries = _qstat([user or "*"])
    records = parse.qstat_records(entries)
    errors = [r.id.split(".")[0] for r in records if r.raw_state and "E" in r.raw_state]
    if errors:
        records = parse.qstat_records(entries, errors=_error_reasons(sorted(set(errors))))
    if partition:
        records = [r for r in records if r.partition in (None, partition)]
    return records


def parse_queue(job_ids: Optional[Sequence[str]], user: Optional[str],
                partition: Optional[str]) -> list[QueueJob]:
    """One ``qstat -xml -r`` for live jobs, one ``qacct`` for those qstat no longer shows, and one
    ``qstat -j`` only when some job is in error state (for its reason)."""
    if job_ids is None:
        return list_jobs(user, partition)
    numbers: list[str] = []
    for job_id in dict.fromkeys(str(j).strip() for j in job_ids):
        try:
            numbers.append(parse.split_id(job_id)[0])
        except ValueError:
            log.debug("%r is not a Grid Engine job id; left out", job_id)
    numbers = list(dict.fromkeys(numbers))
    if not numbers:
        return []
    with _lock:
        final = {i: r for i, r in _final.items() if (r.array_id or i) in numbers}
    entries = _qstat(_users_for(numbers))
    wanted = set(numbers)
    live = parse.qstat_records(entries, wanted=wanted)
    errors = sorted({r.id.split(".")[0] for r in live if r.raw_state and "E" in r.raw_state})
    if errors:
        live = parse.qstat_records(entries, wanted=wanted, errors=_error_reasons(errors))
    with _lock:  # every job listed, so a later poll for any of them asks about its owner only
        for e in entries:
            if e.user:
                _owners.setdefault(e.number, e.user)
            if e.submit_time:
                _submitted.setdefault(e.number, e.submit_time)
    live_ids = {r.id for r in live}
    live_numbers = known_ids(live)
    ask = [n for n in numbers if n not in live_numbers or _array_incomplete(n, live_ids, final)]
    ask = [n for n in ask if not _settled(n, final)]
    finished = _qacct(ask)
    with _lock:
        for rec in finished:
            if rec.state.finished:
                _final[rec.id] = rec
                final[rec.id] = rec
    out = merge_records(live, list(final.values()))
    return out + _deleted_unrecorded(numbers, live_numbers, out)


def _array_incomplete(number: str, live_ids: set[str], final: dict[str, QueueJob]) -> bool:
    """True when an array still in qstat has tasks that left it and whose outcome is not known yet."""
    with _lock:
        tasks = _array_tasks.get(number)
    if tasks is None:  # not submitted here: its finished tasks are unknown, ask accounting
        return any(i.startswith(number + ".") for i in live_ids)
    return any(f"{number}.{t}" not in live_ids and f"{number}.{t}" not in final for t in tasks)


def _settled(number: str, final: dict[str, QueueJob]) -> bool:
    """True when every record this process needs for the job is already final."""
    with _lock:
        tasks = _array_tasks.get(number)
    if tasks is None:
        return number in final
    return all(f"{number}.{t}" in final for t in tasks)


def _deleted_unrecorded(numbers: Sequence[str], live_numbers: set[str], known: list[QueueJob]) -> list[QueueJob]:
    """CANCELLED records for deleted jobs (by any process: :mod:`.deleted`) that have left qstat and have no
    record of their own: a job deleted before it started never reaches the accounting file. The record
    carries the job number as its id, which the core applies to every task of an array not reported on
    its own."""
    ids = {j.id for j in known}
    gone = [n for n in numbers if n not in live_numbers and n not in ids]
    notes = deleted.read(gone) if gone else {}
    with _lock:
        gone = [n for n in gone if deleted.applies(notes.get(n), _submitted.get(n))]
    return [QueueJob(id=n, state=State.CANCELLED, reason="deleted (qdel)", raw_state="deleted") for n in gone]


# --- cancel ---------------------------------------------------------------------------------------

def qdel_ids(job_ids: Sequence[str]) -> list[str]:
    """Grid Engine's names for ids: "12" and "12.3" as they are, the core's "12[2]" as "12.3"."""
    out = []
    for job_id in job_ids:
        number, task = parse.split_id(str(job_id))
        out.append(f"{number}.{task}" if task is not None else number)
    return list(dict.fromkeys(out))


def _ids_for(action: str, job_ids: Sequence[str]) -> list[str]:
    try:
        return qdel_ids(job_ids)
    except ValueError as exc:
        raise SchedulerError(f"cannot {action}: {exc}") from None


def cancel(job_ids: Sequence[str]) -> bool:
    """One ``qdel`` for all ids; ids that already ended are not an error. The ids are noted as deleted
    first (:mod:`.deleted`), so that every process reads the job cancelled, not failed."""
    ids = _ids_for("cancel", job_ids)
    if not ids:
        return True
    deleted.mark(ids)
    return SGE.cancel(["qdel", *ids], CANCEL_HARMLESS, timeout=QUERY_TIMEOUT)


def release(job_ids: Sequence[str]) -> bool:
    """One ``qrls`` for all ids (the user hold of ``qsub -h``); ids that ended are not an error."""
    ids = _ids_for("release", job_ids)
    return SGE.cancel(["qrls", *ids], RELEASE_HARMLESS, timeout=QUERY_TIMEOUT) if ids else True
