"""The ``cluster`` command (also ``python -m cluster_core``). Each subcommand imports what it needs.

Job ids on the command line are found again through the job records (:mod:`cluster_core.registry`), so
any shell can follow, wait for, read and cancel a job that another process submitted; an array's id means
every task of it, and a task is named as the scheduler prints it (``274_3``, ``274[3].server``).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from typing import TYPE_CHECKING, Any, Mapping, NoReturn, Optional, Sequence, Union

if TYPE_CHECKING:
    from pathlib import Path

    from .job import Job, Task
    from .keywords import OptionSpec
    from .records import QueueJob

# Exit codes, the same for every subcommand (see EPILOG).
OK, FAILED, USAGE, TIMEOUT, INTERRUPTED = 0, 1, 2, 124, 130

EPILOG = """\
exit codes: 0 success (every job completed, for wait/get/submit --wait); 1 a job ended otherwise, or an
error of the scheduler or the system; 2 a usage error or a job id nobody knows (named at once);
124 wait --timeout ran out (the jobs go on running). Ctrl-C ends it as SIGINT does (a shell shows 130);
the jobs go on running.
"""


def _options_table() -> tuple[OptionSpec, ...]:
    from .keywords import OPTIONS
    return OPTIONS


# sbatch's short flags for job keywords (and -N/-n as sbatch has them)
SHORT_FLAGS = {"cores": "-c", "time": "-t", "partition": "-p", "name": "-J", "array": "-a", "depends": "-d",
               "outfile": "-o", "errfile": "-e", "account": "-A", "qos": "-q", "nodes": "-N", "tasks": "-n"}


class _Parser(argparse.ArgumentParser):
    """argparse, with the closest flag suggested for one it does not know (``--corse`` -> ``--cores``)."""

    def error(self, message: str) -> NoReturn:
        import difflib
        import re
        unknown = re.findall(r"(?<![\w-])(--?[\w-]+)", message.partition("unrecognized arguments:")[2])
        known = sorted(f for f in _all_flags(self) if f.startswith("--"))
        for flag in unknown:
            close = difflib.get_close_matches(flag.split("=")[0], known, n=2, cutoff=0.6)
            if close:
                message += f"; did you mean {' or '.join(close)}?"
                break
        super().error(message)


def _all_flags(parser: argparse.ArgumentParser, value_only: bool = False) -> set[str]:
    """The flags of a parser and its subcommands' (only those that take a value, with ``value_only``)."""
    flags: set[str] = set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                flags |= _all_flags(sub, value_only)
        elif action.option_strings and not (value_only and action.nargs == 0):
            flags.update(action.option_strings)
    return flags


def _value_flags_of(parser: argparse.ArgumentParser, argv: Sequence[str]) -> set[str]:
    """The flags taking a value of the subcommand named in ``argv`` (and of the top level)."""
    subs = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
    command = next((w for w in argv if subs is not None and w in subs.choices), None)
    flags = {f for a in parser._actions if a.option_strings and a.nargs != 0 for f in a.option_strings}
    if command is not None and subs is not None:
        flags |= _all_flags(subs.choices[command], value_only=True)
    return flags


def _attach_dash_values(argv: Sequence[str], value_flags: set[str]) -> list[str]:
    """``--extra --signal=B:USR1@60`` as ``--extra=--signal=B:USR1@60``: argparse would read a value that
    starts with a dash as the next option."""
    out: list[str] = []
    words = list(argv)
    i = 0
    while i < len(words):
        word = words[i]
        if word == "--":
            out.extend(words[i:])
            break
        if word in value_flags and i + 1 < len(words) and words[i + 1].startswith("-") and words[i + 1] != "--":
            out.append(f"{word}={words[i + 1]}" if word.startswith("--") else word + words[i + 1])
            i += 2
            continue
        out.append(word)
        i += 1
    return out


def _parse_pairs(pairs: Sequence[str], what: str) -> dict[str, str]:
    from .errors import OptionError
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise OptionError(f"{what} {pair!r}: expected KEY=VALUE", keyword=pair)
        out[key.strip()] = value
    return out


def _to_json(obj: Any) -> str:
    import cattrs

    from .records import State
    conv = cattrs.Converter()
    conv.register_unstructure_hook(State, lambda s: s.value)
    return json.dumps(conv.unstructure(obj), indent=2, default=str)


def _print_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> None:
    if not rows:
        return
    cells = [[("" if r.get(c) is None else str(r.get(c))) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    print("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths)).rstrip())
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip())


def _find(ids: Sequence[str], backend: Optional[str]) -> list[Union[Job, Task]]:
    from .job import find_jobs
    return find_jobs(list(ids), backend)


def _elapsed(rec: Optional[QueueJob]) -> Optional[str]:
    if rec is None or not rec.start_time:
        return None
    end = rec.end_time or time.time()
    seconds = int(max(0, end - rec.start_time))
    days, rest = divmod(seconds, 86400)
    text = time.strftime("%H:%M:%S", time.gmtime(rest))
    return f"{days}-{text}" if days else text


def _row(unit: Union[Job, Task], full: bool = False) -> dict[str, Any]:
    """What the commands print about one job or task (the record's outcome merged with the scheduler's)."""
    rec = unit.record
    row: dict[str, Any] = {
        "id": unit.id, "name": unit.name, "backend": unit.backend.name, "state": unit.state.value,
        "exitcode": unit.exitcode, "elapsed": _elapsed(rec), "nodes": ",".join(rec.nodes) if rec else None,
        "reason": rec.reason if rec else None}
    if full:
        row.update(outfile=_str(unit.outfile), errfile=_str(unit.errfile), runtime=unit.runtime)
    return row


def _str(path: object) -> Optional[str]:
    return None if path is None else str(path)


def _describe_job(job: Union[Job, Task]) -> dict[str, Any]:
    """A submitted job as `submit --json` and `status --json` print it: the real paths of every file."""
    from .job import Job
    info: dict[str, Any] = {"id": job.id, "name": job.name, "backend": job.backend.name,
                            "script": _str(job.scriptfile if isinstance(job, Job) else _task_script(job))}
    if isinstance(job, Job) and job.tasks:
        info.update(outfile=None, errfile=None, tasks=[
            {"index": t.index, "id": t.id, "outfile": _str(t.outfile), "errfile": _str(t.errfile),
             "script": _str(_task_script(t))} for t in job.tasks])
    else:
        info.update(outfile=_str(job.outfile), errfile=_str(job.errfile))
    return info


def _task_script(task: Task) -> Optional[Path]:
    """The script a task ran: its own where the backend ran it as a job of its own, else its array's."""
    return task.files.script if (task._own_id and task.files) else task.job.scriptfile


# --- subcommands ------------------------------------------------------------------------------------

def cmd_submit(args: argparse.Namespace) -> int:
    from .job import Job
    options: dict[str, Any] = _parse_pairs(args.keyword or [], "keyword")
    for spec in _options_table():
        value = getattr(args, "opt_" + spec.name, None)
        if value is not None:
            options[spec.name] = value
    words = list(args.command)
    if words and words[0] == "--":
        words = words[1:]
    if not words:
        print("cluster submit: give the command to run, e.g. cluster submit --cores 2 -- ./run.sh", file=sys.stderr)
        return USAGE
    if len(words) == 1 and os.path.isfile(words[0]):  # a script: submitted as it is, its directives kept
        from .job import FileJob
        job = FileJob(words[0], backend=args.backend, profile=args.profile, **options).submit()
    else:
        command = words[0] if len(words) == 1 else shlex.join(words)
        job = Job(command, backend=args.backend, profile=args.profile, **options).submit()
    info = _describe_job(job)
    if not args.wait:
        print(_to_json(info) if args.json else job.id)
        return OK
    if not args.json:
        print(job.id, file=sys.stderr)
    job.wait(timeout=args.timeout)
    units: Sequence[Union[Job, Task]] = job.tasks or [job]
    info.update(state=job.state.value, exitcode=job.exitcode if not job.tasks else None, runtime=job.runtime)
    if args.json:
        if job.tasks:
            for row, task in zip(info["tasks"], job.tasks):
                row.update(state=task.state.value, exitcode=task.exitcode, stdout=task.stdout, stderr=task.stderr)
        else:
            info.update(stdout=job.stdout, stderr=job.stderr)
        print(_to_json(info))
    else:
        for unit in units:
            sys.stdout.write(unit.stdout or "")
            sys.stderr.write(unit.stderr or "")
    for unit in units:
        code = unit.exitcode
        if unit.state.value != "completed" or code:
            return code if isinstance(code, int) and 0 < code < 256 else FAILED
    return OK


def cmd_wait(args: argparse.Namespace) -> int:
    from .errors import WaitTimeout
    from .job import wait
    found = _find(args.ids, args.backend)
    try:
        ok = wait(found, timeout=args.timeout)
        code = OK if ok else FAILED
    except WaitTimeout as exc:
        print(f"cluster: {exc}", file=sys.stderr)
        code = TIMEOUT
    rows = [_row(u) for u in found]
    if args.json:
        print(_to_json([{k: r[k] for k in ("id", "state", "exitcode")} for r in rows]))
    else:
        _print_table(rows, ["id", "state", "exitcode"])
    return code


SNAKEMAKE = {"completed": "success", "pending": "running", "held": "running", "running": "running",
             "suspended": "running", "completing": "running"}


def cmd_status(args: argparse.Namespace) -> int:
    from .errors import UnknownJobError
    from .job import Job
    from .records import State
    try:
        found = _find(args.ids, args.backend)
    except UnknownJobError as exc:
        if args.format != "snakemake":
            raise
        # a job nobody knows any more cannot be running: a workflow engine must hear "failed"
        print(f"cluster: {exc}", file=sys.stderr)
        for _ in args.ids:
            print("failed")
        return OK
    states = [u.state for u in found]
    if args.json:
        out = []
        for unit, state in zip(found, states):
            info = _describe_job(unit)
            info.update(_row(unit, full=True))
            if isinstance(unit, Job) and unit.tasks:
                for row, task in zip(info["tasks"], unit.tasks):
                    row.update(state=task.state.value, exitcode=task.exitcode)
            record = getattr(getattr(unit, "job", unit), "_registry_record", None)
            if record is not None and record.stem:
                info["record"] = {k: getattr(record, k) for k in ("kind", "host", "user", "cwd", "submit_time",
                                                                   "options", "command")}
            out.append(info)
        print(_to_json(out))
    elif args.format == "snakemake":
        for state in states:
            print(SNAKEMAKE.get(state.value, "failed"))
        return OK
    else:
        for state in states:
            print(state.value)
    return OK if all(s is not State.UNKNOWN for s in states) else FAILED


def cmd_get(args: argparse.Namespace) -> int:
    import pickle

    from .errors import JobError
    found = _find([args.id], args.backend)[0]
    try:
        value = found.get(timeout=args.timeout)
    except JobError as exc:
        print(f"cluster: {exc}", file=sys.stderr)
        return FAILED
    if args.pickle:
        with open(args.pickle, "wb") as fh:
            pickle.dump(value, fh)
        return OK
    if args.json:
        try:
            print(json.dumps(value, indent=2))
        except TypeError as exc:
            print(f"cluster: the result of job {found.id} is not JSON ({exc}); use --pickle FILE", file=sys.stderr)
            return FAILED
        return OK
    tasks = getattr(found, "tasks", None)
    values = value if tasks else [value]
    for item in values:
        if found.is_function:
            print(item)
        else:
            sys.stdout.write(item or "")
    return OK


def cmd_logs(args: argparse.Namespace) -> int:
    from .errors import JobError
    found = _find([args.id], args.backend)[0]
    units = getattr(found, "tasks", None) or [found]
    paths = [u.errfile if args.err else u.outfile for u in units]
    if any(p is None for p in paths):
        raise JobError(f"job {found.id}: its output files are not known (it was not submitted by cluster-core)")
    headers = len(units) > 1
    if not args.follow:
        for unit, path in zip(units, paths):
            if headers:
                print(f"==> task {unit.index} ({unit.id}): {path} <==", flush=True)
            try:
                with open(path, "rb") as fh:
                    sys.stdout.buffer.write(fh.read())
            except FileNotFoundError:
                print(f"cluster: {path} does not exist (yet)", file=sys.stderr)
        sys.stdout.flush()
        return OK
    offsets = [0] * len(paths)
    last = None
    while True:
        done = found.done
        for i, (unit, path) in enumerate(zip(units, paths)):
            try:
                with open(path, "rb") as fh:
                    fh.seek(offsets[i])
                    data = fh.read()
            except FileNotFoundError:
                continue
            if data:
                if headers and last != i:
                    print(f"\n==> task {unit.index} ({unit.id}) <==", flush=True)
                    last = i
                sys.stdout.buffer.write(data)
                sys.stdout.flush()
                offsets[i] += len(data)
        if done:
            return OK
        time.sleep(0.5)


def cmd_queue(args: argparse.Namespace) -> int:
    import fnmatch

    from .queue import Queue
    if args.ids:
        rows = []
        for unit in _find(args.ids, args.backend):
            rows += [_row(t) for t in (getattr(unit, "tasks", None) or [unit])]
    else:
        since = None
        if args.since is not None:
            from .job import _since
            since = _since(args.since)
        q = Queue(user=None if args.all_users else (args.user or "self"), partition=args.partition,
                  backend=args.backend, history=args.all or since is not None, since=since).update(force=True)
        rows = []
        for j in q.jobs.values():
            rows.append({"id": j.id, "name": j.name, "user": j.user, "partition": j.partition,
                         "state": j.state.value, "exitcode": j.exitcode, "cores": j.cores,
                         "elapsed": _elapsed(j), "nodes": ",".join(j.nodes) or None, "reason": j.reason})
    if args.state:
        rows = [r for r in rows if r["state"] in args.state]
    if args.name:
        rows = [r for r in rows if r.get("name") and fnmatch.fnmatchcase(r["name"], args.name)]
    if args.json:
        print(_to_json(rows))
        return OK
    if rows:
        columns = ["id", "name", "user", "partition", "state", "exitcode", "elapsed", "nodes", "reason"]
        _print_table(rows, [c for c in columns if any(r.get(c) is not None for r in rows) or c in ("id", "state")])
    else:
        print("no jobs", file=sys.stderr)
    return OK


def cmd_cancel(args: argparse.Namespace) -> int:
    from .job import cancel
    cancel(_find(args.ids, args.backend))
    return OK


def cmd_release(args: argparse.Namespace) -> int:
    from .job import release
    release(_find(args.ids, args.backend))
    return OK


def cmd_keywords(args: argparse.Namespace) -> int:
    from .help import option_help
    if args.json:
        print(json.dumps(option_help(mode="table"), indent=2, default=str))
    else:
        print(option_help(mode="string"))
    return OK


def cmd_profile(args: argparse.Namespace) -> int:
    from . import config
    if args.action == "list":
        profiles = config.get_profile()
        if args.json:
            print(json.dumps({n: p.kwargs for n, p in profiles.items()}, indent=2))
        else:
            for name, prof in sorted(profiles.items()):
                print(f"{name}: " + " ".join(f"{k}={v}" for k, v in prof.text().items()))
        return OK
    if not args.name:
        print(f"cluster profile {args.action}: name the profile", file=sys.stderr)
        return USAGE
    if args.action == "show":
        prof = config.get_profile(args.name)
        if prof is None:
            print(f"cluster: no profile named {args.name!r}", file=sys.stderr)
            return FAILED
        print(json.dumps(prof.kwargs, indent=2) if args.json else
              "\n".join(f"{k} = {v}" for k, v in prof.text().items()))
        return OK
    if args.action == "set":
        prof = config.set_profile(args.name, _parse_pairs(args.pairs, "profile keyword"))
        print(f"profile {prof.name}: " + " ".join(f"{k}={v}" for k, v in prof.text().items()))
        return OK
    if not config.del_profile(args.name):
        print(f"cluster: no profile named {args.name!r}", file=sys.stderr)
        return FAILED
    return OK


def cmd_config(args: argparse.Namespace) -> int:
    from . import config
    if args.action == "path":
        print(config.config_path())
        return OK
    if args.action == "list":
        data = config.options()
        if args.json:
            print(json.dumps(data, indent=2))
        else:
            for section, items in data.items():
                for key, value in items.items():
                    print(f"{section}.{key} = {value}")
        return OK
    if not args.key:
        print(f"cluster config {args.action}: name the setting, e.g. core.backend", file=sys.stderr)
        return USAGE
    if args.action == "get":
        value = config.get_option(args.key)
        if value is None:
            return FAILED
        print(value)
    elif args.action == "set":
        if args.value is None:
            print("cluster config set: give a setting and a value, e.g. core.backend slurm", file=sys.stderr)
            return USAGE
        config.set_option(args.key, args.value)
    else:
        config.set_option(args.key, None)
    return OK


def cmd_clean(args: argparse.Namespace) -> int:
    from .job import clean_dir
    if args.older_than is not None:
        from . import registry
        from .casts import parse_time
        from .errors import OptionError
        try:
            age = parse_time(args.older_than)
        except ValueError as exc:
            raise OptionError(f"--older-than {args.older_than!r}: {exc}", keyword="older_than") from None
        removed = registry.prune(age)
        print(f"removed {removed} job records older than {args.older_than}", file=sys.stderr)
        if args.directory is None:
            return OK
    # asks unless --yes; with no terminal to answer, clean_dir refuses (nothing deleted) and says so
    removed_files = clean_dir(args.directory, suffix=args.suffix, confirm=not args.yes,
                              outputs=not args.keep_outputs)
    print(f"removed {len(removed_files)} job files", file=sys.stderr)
    return OK


def cmd_backends(args: argparse.Namespace) -> int:
    from .plugins import list_backends
    rows = list_backends()
    if args.json:
        print(_to_json(rows))
        return OK
    _print_table([{"backend": ("* " if r.selected else "  ") + r.name,
                   "available": "yes" if r.available else "no", "priority": r.priority,
                   "distribution": r.distribution or "-", "reason": r.reason} for r in rows],
                 ["backend", "available", "priority", "distribution", "reason"])
    return OK


# --- parser -----------------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    from . import __version__
    parser = _Parser(prog="cluster", description="Submit and track jobs on Slurm, Torque/PBS, "
                                     "Grid Engine or this machine, with one interface.", epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"cluster-core {__version__}")
    parser.add_argument("--log-level", default=None,
                        help="debug, info, warn, error or critical (default: warn, or core.log_level)")
    parser.add_argument("-v", "--verbose", action="store_true", help="same as --log-level debug")
    sub = parser.add_subparsers(dest="cmd", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    def add(name: str, help_: str, **kwargs: Any) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help_, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
                              **kwargs)

    def common(p: argparse.ArgumentParser, json_flag: bool = True, backend: bool = True) -> None:
        if backend:
            p.add_argument("--backend", "-b", help="backend name (default: the job record's, then config, "
                                                   "$CLUSTER_BACKEND, detection)")
        if json_flag:
            p.add_argument("--json", action="store_true", help="print JSON for scripts")

    p = add("submit", "submit a command as a job",
            description="Submit a command. Job keywords come as --KEYWORD VALUE (sbatch's short flags and "
                        "names work: -c 2, -t 1:00:00, -p short, -J name, --cpus-per-task 2), or -k KEY=VALUE "
                        "(see `cluster keywords`); the command follows, after -- if it has options. Prints the "
                        "job's id (an array's id with --array: status, wait, get, logs and cancel of it apply to "
                        "every task). Output paths may hold %j (job id), %x (name), %A and %a (array id and "
                        "task index), %u (user), on every backend.")
    common(p)
    p.add_argument("--profile", "-P", help="a saved profile of keywords")
    p.add_argument("-k", "--keyword", action="append", metavar="KEY=VALUE", help="any job keyword or alias")
    p.add_argument("--wait", "-w", action="store_true", help="wait, print the output, exit with the job's code")
    p.add_argument("--timeout", type=float, help="with --wait: give up after this many seconds")
    opts = p.add_argument_group("job keywords")
    taken = {o for a in p._actions for o in a.option_strings}
    for spec in _options_table():
        flags = [f"--{spec.name.replace('_', '-')}"] + ([SHORT_FLAGS[spec.name]] if spec.name in SHORT_FLAGS else [])
        # the aliases too (sbatch's names: --cpus-per-task, --job-name, --output), not listed in the help
        hidden = [f for f in (f"--{a.replace('_', '-')}" for a in spec.aliases) if f not in taken]
        taken.update(flags + hidden)
        kind: dict[str, Any] = {"action": "store_const", "const": "true"} if spec.type == "bool" else \
            {"action": "append", "metavar": "V"} if spec.type == "depends" else {"metavar": "V"}
        more = " (repeat to add more)" if spec.type == "depends" else ""
        opts.add_argument(*flags, dest="opt_" + spec.name, help=spec.help.replace("%", "%%") + more, **kind)
        if hidden:
            opts.add_argument(*hidden, dest="opt_" + spec.name, help=argparse.SUPPRESS, **kind)
    p.add_argument("command", nargs=argparse.REMAINDER, help="the command (one quoted string or words)")
    p.set_defaults(func=cmd_submit)

    p = add("wait", "wait for jobs to finish",
            description="Wait until every job (every task of an array) has ended. Exit 0 when all completed, "
                        "1 when some ended otherwise, 2 at once for ids nobody knows, 124 on --timeout.")
    common(p)
    p.add_argument("ids", nargs="+", metavar="ID")
    p.add_argument("--timeout", type=float, help="give up after this many seconds (exit 124)")
    p.set_defaults(func=cmd_wait)

    p = add("status", "print the state of jobs, one word per id",
            description="One word per id, in order: pending, held, running, suspended, completing, completed, "
                        "failed, cancelled, timeout, out_of_memory, node_fail, preempted or unknown (an array: "
                        "its most active task's while any runs, else its first bad end). Exit 0 when every "
                        "state is known. --format snakemake prints running, success or failed, as Snakemake's "
                        "cluster-generic executor expects of --cluster-generic-status-cmd.")
    common(p)
    p.add_argument("ids", nargs="+", metavar="ID")
    p.add_argument("--format", choices=["state", "snakemake"], default="state")
    p.set_defaults(func=cmd_status)

    p = add("get", "print a job's output: a shell job's stdout, a function job's return value",
            description="Wait for the job, then print a shell job's stdout or a function job's return value "
                        "(an array: every task's, in order). Exit 1 with the error when it failed.")
    common(p)
    p.add_argument("id", metavar="ID")
    p.add_argument("--timeout", type=float, help="give up waiting after this many seconds")
    p.add_argument("--pickle", metavar="FILE", help="write the return value to FILE as a pickle")
    p.set_defaults(func=cmd_get)

    p = add("logs", "print a job's stdout (or stderr) file")
    common(p, json_flag=False)
    p.add_argument("id", metavar="ID")
    p.add_argument("--err", "-e", action="store_true", help="stderr instead of stdout")
    p.add_argument("--follow", "-f", action="store_true", help="keep printing until the job ends")
    p.set_defaults(func=cmd_logs)

    p = add("queue", "list jobs",
            description="Your jobs the scheduler lists; with --all also every job you submitted through "
                        "cluster-core (from the job records: how each ended, also after the scheduler forgot it).")
    common(p)
    p.add_argument("ids", nargs="*", metavar="ID", help="only these jobs (an array: each task)")
    p.add_argument("--all", "-a", action="store_true", help="history too: the job records of every job you submitted")
    p.add_argument("--since", help="with history: only jobs submitted this long ago or later (2d, 12h, 90m)")
    p.add_argument("--name", "-n", help="only jobs whose name matches (a glob: 'align*')")
    p.add_argument("--user", "-u", help="whose jobs (default: yours)")
    p.add_argument("--all-users", action="store_true", help="every user's jobs")
    p.add_argument("--partition")
    p.add_argument("--state", action="append", help="only jobs in this state (repeatable)")
    p.set_defaults(func=cmd_queue)

    p = add("cancel", "cancel jobs (an array's id cancels every task)")
    common(p, json_flag=False)
    p.add_argument("ids", nargs="+", metavar="ID")
    p.set_defaults(func=cmd_cancel)

    p = add("release", "let held jobs (submitted with --hold) run (an array's id releases every task)")
    common(p, json_flag=False)
    p.add_argument("ids", nargs="+", metavar="ID")
    p.set_defaults(func=cmd_release)

    p = add("keywords", "list every job keyword")
    common(p, backend=False)
    p.set_defaults(func=cmd_keywords)

    p = add("profile", "list, show, set or delete profiles")
    common(p, backend=False)
    p.add_argument("action", choices=["list", "show", "set", "delete"])
    p.add_argument("name", nargs="?")
    p.add_argument("pairs", nargs="*", metavar="KEY=VALUE")
    p.set_defaults(func=cmd_profile)

    p = add("config", "get or set settings")
    common(p, backend=False)
    p.add_argument("action", choices=["get", "set", "unset", "list", "path"])
    p.add_argument("key", nargs="?")
    p.add_argument("value", nargs="?")
    p.set_defaults(func=cmd_config)

    p = add("clean", "delete job files cluster-core wrote, or old job records")
    p.add_argument("directory", nargs="?", help="default: the job directory")
    p.add_argument("--yes", "-y", action="store_true", help="do not ask")
    p.add_argument("--keep-outputs", action="store_true", help="keep stdout/stderr files")
    p.add_argument("--suffix", help="only files of jobs with this suffix keyword (default: any)")
    p.add_argument("--older-than", metavar="AGE", help="delete the job records of jobs submitted longer ago "
                                                       "than AGE (30d, 12h) instead of job files")
    p.set_defaults(func=cmd_clean)

    p = add("backends", "list installed backends and whether each is usable here")
    common(p, backend=False)
    p.set_defaults(func=cmd_backends)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(_attach_dash_values(argv, _value_flags_of(parser, argv)))
    from .errors import ClusterError, OptionError, UnknownJobError
    from .logme import setup
    try:
        setup("debug" if args.verbose else args.log_level, default="warning")
        code: int = args.func(args)
        sys.stdout.flush()  # a reader that left (`| head`) is seen here, not as a traceback at exit
        return code
    except (OptionError, UnknownJobError) as exc:
        print(f"cluster: error: {exc}", file=sys.stderr)
        return USAGE
    except ClusterError as exc:
        print(f"cluster: error: {exc}", file=sys.stderr)
        return FAILED
    except KeyboardInterrupt:
        print("cluster: interrupted (submitted jobs keep running)", file=sys.stderr)
        _die_of_sigint()
        return INTERRUPTED
    except BrokenPipeError:  # `cluster queue | head`: the reader left; nothing more to say
        import os
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return OK


def _die_of_sigint() -> None:
    """End as a process killed by Ctrl-C does (the parent sees the signal, not an exit code), so that a
    program running this one (a shell script, a workflow engine) knows the user interrupted it."""
    import os
    import signal
    sys.stdout.flush()
    sys.stderr.flush()
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGINT)


def status_main() -> int:
    """``cluster-status ID...``: ``cluster status`` as one word, for tools that run it without a shell."""
    return main(["status", *sys.argv[1:]])


def cancel_main() -> int:
    """``cluster-cancel ID...``: ``cluster cancel`` as one word (Snakemake runs its cancel command without
    a shell, so ``--cluster-generic-cancel-cmd "cluster cancel"`` names no program)."""
    return main(["cancel", *sys.argv[1:]])


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
