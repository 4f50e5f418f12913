"""The ``cluster`` command (also ``python -m cluster_core``). Each subcommand imports what it needs."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from typing import Any, Optional, Sequence


def _options_table():
    from .options import OPTIONS
    return OPTIONS


def _parse_pairs(pairs: Sequence[str], what: str) -> dict[str, str]:
    from .errors import OptionError
    out = {}
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


def _print_table(rows: list[dict], columns: Sequence[str]) -> None:
    if not rows:
        return
    cells = [[("" if r.get(c) is None else str(r.get(c))) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    print("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths)).rstrip())
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip())


# --- subcommands ------------------------------------------------------------------------------------

def cmd_submit(args) -> int:
    from .job import Job
    options = _parse_pairs(args.keyword or [], "keyword")
    for spec in _options_table():
        value = getattr(args, "opt_" + spec.name, None)
        if value is not None:
            options[spec.name] = value
    words = list(args.command)
    if words and words[0] == "--":
        words = words[1:]
    if not words:
        raise SystemExit("cluster submit: give the command to run, e.g. cluster submit --cores 2 -- ./run.sh")
    command = words[0] if len(words) == 1 else shlex.join(words)
    job = Job(command, backend=args.backend, profile=args.profile, **options).submit()
    info = {"id": job.id, "name": job.name, "backend": job.backend.name, "script": str(job.scriptfile),
            "outfile": str(job.outfile), "errfile": str(job.errfile)}
    if not args.wait:
        print(_to_json(info) if args.json else job.id)
        return 0
    if not args.json:
        print(job.id, file=sys.stderr)
    job.wait(timeout=args.timeout)
    info.update(state=job.state.value, exitcode=job.exitcode, runtime=job.runtime)
    if args.json:
        info.update(stdout=job.stdout, stderr=job.stderr)
        print(_to_json(info))
    else:
        sys.stdout.write(job.stdout or "")
        sys.stderr.write(job.stderr or "")
    code = job.exitcode
    return code if isinstance(code, int) and 0 <= code < 256 else (0 if job.state.value == "completed" else 1)


def cmd_wait(args) -> int:
    from .job import wait
    from .queue import tracker
    from .plugins import get_backend
    be = get_backend(args.backend).name
    ok = wait(list(args.ids), timeout=args.timeout, backend=be)
    rows = [{"id": i, "state": (tracker(be).record(i).state.value if tracker(be).record(i) else "unknown"),
             "exitcode": tracker(be).record(i).exitcode if tracker(be).record(i) else None} for i in args.ids]
    if args.json:
        print(_to_json(rows))
    else:
        _print_table(rows, ["id", "state", "exitcode"])
    return 0 if ok else 1


def cmd_queue(args) -> int:
    from .queue import Queue
    q = Queue(user=None if args.all else (args.user or "self"), partition=args.partition,
              backend=args.backend).update(force=True)
    jobs = list(q.jobs.values())
    if args.state:
        jobs = [j for j in jobs if j.state.value in args.state]
    if args.json:
        print(_to_json(jobs))
        return 0
    rows = [{"id": j.id, "name": j.name, "user": j.user, "partition": j.partition, "state": j.state.value,
             "exitcode": j.exitcode, "cores": j.cores, "reason": j.reason} for j in jobs]
    if rows:
        _print_table(rows, ["id", "name", "user", "partition", "state", "exitcode", "cores", "reason"])
    else:
        print(f"no jobs on {q.backend.name}", file=sys.stderr)
    return 0


def cmd_cancel(args) -> int:
    from .plugins import get_backend
    get_backend(args.backend).cancel(list(args.ids))
    return 0


def cmd_keywords(args) -> int:
    from .options import option_help
    if args.json:
        print(json.dumps(option_help(mode="table"), indent=2, default=str))
    else:
        print(option_help(mode="string"))
    return 0


def cmd_profile(args) -> int:
    from . import config
    if args.action == "list":
        profiles = config.get_profile()
        if args.json:
            print(json.dumps({n: p.kwargs for n, p in profiles.items()}, indent=2))
        else:
            for name, prof in sorted(profiles.items()):
                print(f"{name}: " + " ".join(f"{k}={v}" for k, v in prof.kwargs.items()))
        return 0
    if not args.name:
        raise SystemExit(f"cluster profile {args.action}: name the profile")
    if args.action == "show":
        prof = config.get_profile(args.name)
        if prof is None:
            print(f"cluster: no profile named {args.name!r}", file=sys.stderr)
            return 1
        print(json.dumps(prof.kwargs, indent=2) if args.json else
              "\n".join(f"{k} = {v}" for k, v in prof.kwargs.items()))
        return 0
    if args.action == "set":
        prof = config.set_profile(args.name, _parse_pairs(args.pairs, "profile keyword"))
        print(f"profile {prof.name}: " + " ".join(f"{k}={v}" for k, v in prof.kwargs.items()))
        return 0
    if args.action == "delete":
        if not config.del_profile(args.name):
            print(f"cluster: no profile named {args.name!r}", file=sys.stderr)
            return 1
        return 0
    raise SystemExit(f"unknown profile action {args.action}")


def cmd_config(args) -> int:
    from . import config
    if args.action == "path":
        print(config.config_path())
    elif args.action == "list":
        data = config.options()
        if args.json:
            print(json.dumps(data, indent=2))
        else:
            for section, items in data.items():
                for key, value in items.items():
                    print(f"{section}.{key} = {value}")
    elif args.action == "get":
        if not args.key:
            raise SystemExit("cluster config get: name the setting, e.g. core.backend")
        value = config.get_option(args.key)
        if value is None:
            return 1
        print(value)
    elif args.action == "set":
        if not args.key or args.value is None:
            raise SystemExit("cluster config set: give a setting and a value, e.g. core.backend slurm")
        config.set_option(args.key, args.value)
    elif args.action == "unset":
        config.set_option(args.key, None)
    return 0


def cmd_clean(args) -> int:
    from .job import clean_dir
    removed = clean_dir(args.directory, confirm=not args.yes and sys.stdin.isatty(),
                        outputs=not args.keep_outputs)
    print(f"removed {len(removed)} job files", file=sys.stderr)
    return 0


def cmd_backends(args) -> int:
    from .plugins import list_backends
    rows = list_backends()
    if args.json:
        print(_to_json(rows))
        return 0
    _print_table([{"backend": ("* " if r.selected else "  ") + r.name,
                   "available": "yes" if r.available else "no", "priority": r.priority,
                   "reason": r.reason} for r in rows], ["backend", "available", "priority", "reason"])
    return 0


# --- parser -----------------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    from . import __version__
    parser = argparse.ArgumentParser(prog="cluster", description="Submit and track jobs on Slurm, Torque/PBS, "
                                     "Grid Engine or this machine, with one interface.")
    parser.add_argument("--version", action="version", version=f"cluster-core {__version__}")
    parser.add_argument("--log-level", default=None,
                        help="debug, info, warn, error or critical (default: warn, or core.log_level)")
    parser.add_argument("-v", "--verbose", action="store_true", help="same as --log-level debug")
    sub = parser.add_subparsers(dest="cmd", metavar="COMMAND")
    sub.required = True

    def common(p, json_flag=True, backend=True):
        if backend:
            p.add_argument("--backend", "-b", help="backend name (default: config, $CLUSTER_BACKEND, detection)")
        if json_flag:
            p.add_argument("--json", action="store_true", help="print JSON for scripts")

    p = sub.add_parser("submit", help="submit a command as a job",
                       description="Submit a command. Job keywords come as --KEYWORD VALUE or -k KEY=VALUE "
                                   "(see `cluster keywords`); the command follows, after -- if it has options.")
    common(p)
    p.add_argument("--profile", "-p", help="a saved profile of keywords")
    p.add_argument("-k", "--keyword", action="append", metavar="KEY=VALUE", help="any job keyword or alias")
    p.add_argument("--wait", "-w", action="store_true", help="wait, print the output, exit with the job's code")
    p.add_argument("--timeout", type=float, help="with --wait: give up after this many seconds")
    opts = p.add_argument_group("job keywords")
    for spec in _options_table():
        if spec.type == "bool":
            opts.add_argument(f"--{spec.name.replace('_', '-')}", dest="opt_" + spec.name, action="store_const",
                              const="true", help=spec.help.replace("%", "%%"))
        else:
            opts.add_argument(f"--{spec.name.replace('_', '-')}", dest="opt_" + spec.name, metavar="V",
                              help=spec.help.replace("%", "%%"))
    p.add_argument("command", nargs=argparse.REMAINDER, help="the command (one quoted string or words)")
    p.set_defaults(func=cmd_submit)

    p = sub.add_parser("wait", help="wait for jobs to finish")
    common(p)
    p.add_argument("ids", nargs="+")
    p.add_argument("--timeout", type=float)
    p.set_defaults(func=cmd_wait)

    p = sub.add_parser("queue", help="list jobs")
    common(p)
    p.add_argument("--user", "-u", help="whose jobs (default: yours)")
    p.add_argument("--all", "-a", action="store_true", help="every user's jobs")
    p.add_argument("--partition")
    p.add_argument("--state", action="append", help="only jobs in this state (repeatable)")
    p.set_defaults(func=cmd_queue)

    p = sub.add_parser("cancel", help="cancel jobs")
    common(p, json_flag=False)
    p.add_argument("ids", nargs="+")
    p.set_defaults(func=cmd_cancel)

    p = sub.add_parser("keywords", help="list every job keyword")
    common(p, backend=False)
    p.set_defaults(func=cmd_keywords)

    p = sub.add_parser("profile", help="list, show, set or delete profiles")
    common(p, backend=False)
    p.add_argument("action", choices=["list", "show", "set", "delete"])
    p.add_argument("name", nargs="?")
    p.add_argument("pairs", nargs="*", metavar="KEY=VALUE")
    p.set_defaults(func=cmd_profile)

    p = sub.add_parser("config", help="get or set settings")
    common(p, backend=False)
    p.add_argument("action", choices=["get", "set", "unset", "list", "path"])
    p.add_argument("key", nargs="?")
    p.add_argument("value", nargs="?")
    p.set_defaults(func=cmd_config)

    p = sub.add_parser("clean", help="delete job files cluster-core wrote")
    p.add_argument("directory", nargs="?", help="default: the job directory")
    p.add_argument("--yes", "-y", action="store_true", help="do not ask")
    p.add_argument("--keep-outputs", action="store_true", help="keep stdout/stderr files")
    p.set_defaults(func=cmd_clean)

    p = sub.add_parser("backends", help="list installed backends and whether each is usable here")
    common(p, backend=False)
    p.set_defaults(func=cmd_backends)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from .errors import ClusterError
    from .logme import setup
    try:
        setup("debug" if args.verbose else args.log_level, default="warning")
        return args.func(args)
    except ClusterError as exc:
        print(f"cluster: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("cluster: interrupted (submitted jobs keep running)", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
