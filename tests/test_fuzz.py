"""Property-based fuzzing of the job keywords: check_arguments, Job(...) and every backend's rendering.

The contract (DESIGN.md, "Errors a user can cause"): any value a user can pass either raises OptionError
(a ClusterError) whose message names the keyword and says what is allowed, or is accepted, and then every
backend renders it with no exception but OptionError, into directive lines that are one line each and
valid UTF-8; a Job built from it writes its script. Budgets are small and derandomized (no example
database), so CI is reproducible and the file takes seconds of CPU; the explicit @example cases are the
defects found so far (issue 12).
"""

from __future__ import annotations

import math
import string
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from cluster_core import Job
from cluster_core.errors import ClusterError, OptionError
from cluster_core.records import DEPENDENCY_KINDS, Dependency
from cluster_core.options import (MAX_ARRAY_INDEX, MAX_ARRAY_TASKS, MAX_COUNT, MAX_MEMORY_MB, MAX_TIME_SECONDS,
                                  OPTIONS, array_indices, check_arguments, directive_lines)

cluster_slurm_render = pytest.importorskip("cluster_slurm.render")
cluster_torque_render = pytest.importorskip("cluster_torque.render")
cluster_sge_render = pytest.importorskip("cluster_sge.render")
cluster_local_plugin = pytest.importorskip("cluster_local.plugin")
from cluster_torque.dialect import PBSPRO, TORQUE  # noqa: E402

FUZZ = settings(max_examples=400, deadline=None, derandomize=True, database=None, print_blob=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large, HealthCheck.filter_too_much])
SMALL = settings(FUZZ, max_examples=150)

SPECS = {key: spec for spec in OPTIONS for key in (spec.name, *spec.aliases)}
KEYWORDS = sorted(SPECS)
MAX_MESSAGE = 1000  # an error message stays readable whatever the value


# --- adversarial values -----------------------------------------------------------------------------

class BadStr:
    """An object whose __str__ raises. (Its __repr__ works, so that Hypothesis can report a failing example;
    BadRepr below checks that a raising __repr__ does not break an error message.)"""

    def __str__(self):
        raise RuntimeError("no str for you")

    def __repr__(self):
        return "BadStr()"


class BadRepr(BadStr):
    def __repr__(self):
        raise RuntimeError("no repr for you")


class NotAStr:
    """An object whose __str__ returns something that is not a string (str() raises TypeError)."""

    def __str__(self):
        return 42  # type: ignore[return-value]

    def __repr__(self):
        return "NotAStr()"


class BadIter:
    """An iterable that raises while being iterated."""

    def __iter__(self):
        yield "a"
        raise RuntimeError("iteration broke")


class RaisingId:
    """An object whose ``id`` property raises something other than AttributeError."""

    @property
    def id(self):
        raise RuntimeError("no id for you")


class HasId:
    """Anything with an ``id`` attribute counts as a job to depend on."""

    def __init__(self, id):
        self.id = id

    def __repr__(self):
        return f"HasId({self.id!r})"


HUGE_INTS = [10 ** 12, 2 ** 63, 10 ** 400, 10 ** 5000, -10 ** 5000, 2 ** 31, 2 ** 31 - 1]
EVIL_CHARS = "\x00\n\r\t\x0b\x0c\x1b\x7f\x85\u2028\ud800\udfff\udc80 ,:;%$\\'\"=@-[]/*?é𝕏٣"
evil_text = st.text(st.one_of(st.characters(), st.sampled_from(EVIL_CHARS)), max_size=30)
huge_text = st.sampled_from(["x" * 100_000, "9" * 5000, "1" * 5000 + "G", "0-" + "9" * 5000, "a," * 20_000,
                             "1" * 5000 + ":00", "1h" * 5000])


def _huge(i: int) -> int:
    """Huge ints are drawn by index: a strategy's repr shows its elements, and repr(10**5000) raises."""
    return HUGE_INTS[i]


huge_ints = st.integers(0, len(HUGE_INTS) - 1).map(_huge)
# as long as a text value may be (MAX_TEXT), each with something a backend refuses
long_text = st.sampled_from(["y" * 4096, "/tmp/" + "d:" * 2000, "/tmp/" + "a\\" * 2000, "/tmp/" + "s p," * 1000,
                             "$HOME" * 800, "2026-" + "1" * 4000])
ints = st.one_of(st.integers(-3, 3), st.integers(-2 ** 40, 2 ** 40), huge_ints)
floats = st.one_of(st.floats(), st.sampled_from([math.nan, math.inf, -math.inf, 1e308, 1.5, 0.0, -0.0, 2.0,
                                                 1e300, 5e-324]))
scalars = st.one_of(st.none(), st.booleans(), ints, floats, evil_text, huge_text, st.binary(max_size=8),
                    st.builds(BadStr), st.builds(NotAStr), st.builds(BadIter), st.builds(object),
                    st.builds(HasId, st.one_of(st.none(), ints, floats, evil_text)),
                    st.builds(Path, st.text(string.ascii_letters + "/._", min_size=1, max_size=10)),
                    st.builds(range, st.integers(-5, 20), st.integers(-5, 20), st.sampled_from([1, 2, -1])),
                    st.integers(0, 2).map(lambda i: [range(10 ** 12), range(0, 10 ** 400), range(5, 5)][i]))
containers = st.one_of(st.lists(scalars, max_size=4), st.tuples(scalars, scalars),
                       st.frozensets(st.sampled_from(["a", "b", 1])),
                       st.dictionaries(st.one_of(evil_text, ints), scalars, max_size=3))
anything = st.one_of(scalars, containers, st.lists(containers, max_size=2))


# --- plausible values, one strategy per keyword type (mostly valid, with edges) ---------------------

def _numbers(low, high):
    return st.one_of(st.integers(low, high), st.integers(low, high).map(str),
                     st.integers(low, high).map(float), st.integers(low, high).map(lambda n: f" {n} "))


words = st.text(string.ascii_letters + string.digits + "_.-:=", min_size=1, max_size=12)
job_ids = st.one_of(st.integers(-2, 10 ** 9), st.from_regex(r"\A[0-9]{1,7}(\[[0-9]{0,3}\])?(\.[a-z]{1,6})?\Z"),
                    st.from_regex(r"\A[0-9]{1,5}_[0-9]{1,3}\Z"), st.builds(HasId, st.integers(1, 99).map(str)))
unit = st.sampled_from(["", "k", "K", "m", "M", "MB", "g", "G", "GB", "GiB", "t", "T", "TB", "p", "P", "b", "iB"])
memory_text = st.builds(lambda n, u, sp: f"{n}{sp}{u}", st.one_of(st.integers(-2, 10 ** 7).map(str),
                        st.floats(0, 1e6).map(lambda f: f"{f:.3f}"), st.just(".5"), st.just("1e3")), unit,
                        st.sampled_from(["", " "]))
time_text = st.one_of(
    st.builds(lambda d, h, m, s: f"{d}-{h:02d}:{m:02d}:{s:02d}", st.integers(0, 400), st.integers(0, 30),
              st.integers(0, 70), st.integers(0, 70)),
    st.builds(lambda h, m, s: f"{h}:{m:02d}:{s:02d}", st.integers(0, 10 ** 6), st.integers(0, 70),
              st.integers(0, 70)),
    st.builds(lambda m, s: f"{m}:{s:02d}", st.integers(0, 10 ** 6), st.integers(0, 70)),
    st.lists(st.tuples(st.integers(0, 10 ** 5), st.sampled_from("wdhmsWDHMS")), min_size=1, max_size=4)
    .map(lambda parts: "".join(f"{n}{u}" for n, u in parts)),
    st.sampled_from(["90", "1.5", "0", "-5", "1:2:3:4", "2x", "", " ", "1d 2h", "1.h", "٣h", "soon"]))
array_part = st.builds(lambda a, n, step, kind: str(a) if kind == 0 else f"{a}-{a + n}" if kind == 1
                       else f"{a}-{a + n}:{step}", st.integers(0, 30), st.integers(-2, 30), st.integers(0, 5),
                       st.integers(0, 2))
array_text = st.builds(lambda parts, limit: ",".join(parts) + (f"%{limit}" if limit is not None else ""),
                       st.lists(array_part, min_size=1, max_size=3), st.none() | st.integers(0, 10))

PLAUSIBLE = {
    "int": _numbers(-1, 70),
    "signed": _numbers(-2000, 2000),
    "count": _numbers(-2, 20),
    "seconds": st.one_of(time_text, st.integers(-1, 10 ** 6), st.floats(-1, 1e5)),
    "memory": st.one_of(memory_text, st.integers(-1, 10 ** 7), st.floats(-1, 1e7)),
    "time": st.one_of(time_text, st.integers(-1, 10 ** 6), st.floats(-1, 1e5)),
    "bool": st.one_of(st.booleans(), st.sampled_from(["yes", "no", "true", "False", "on", "0", "1", 0, 1, 2])),
    "str": st.one_of(words, evil_text, st.integers(0, 99), long_text),
    "path": st.one_of(words.map(lambda w: "/tmp/" + w), evil_text, st.builds(Path, words), long_text),
    "words": st.one_of(words, st.lists(words, min_size=0, max_size=3), st.just("a, b  c")),
    "args": st.one_of(st.just("--tmp=10G"), st.just("-l nodes=1:ppn=4,mem=4gb"), st.just("'unbalanced"),
                      st.lists(words, max_size=3), evil_text),
    "depends": st.one_of(job_ids, st.lists(job_ids, max_size=3), st.just("12:13,14"), st.just(""),
                         st.builds(lambda k, i: f"{k}:{i}", st.sampled_from(DEPENDENCY_KINDS + ("bogus", "AfterAny")),
                                   st.from_regex(r"\A[0-9]{1,5}\Z")),
                         st.sampled_from(["singleton", "afterany:1:2,afternotok:3", "after:4,5", "afterany:",
                                          "singleton:1"]),
                         st.dictionaries(st.sampled_from(DEPENDENCY_KINDS + ("x",)),
                                         st.one_of(st.lists(job_ids, max_size=2), st.booleans()), max_size=2)),
    "export": st.one_of(st.sampled_from(["ALL", "NONE", "all", "A,B", "PATH", "1BAD", ""]),
                        st.dictionaries(st.from_regex(r"\A[A-Z_][A-Z0-9_]{0,5}\Z"), st.one_of(words, evil_text,
                                        st.integers()), max_size=3),
                        st.lists(st.sampled_from(["X=1", "Y=a b", "Z=a,b", "Q='q'", "ALL"]), max_size=3)),
    "array": st.one_of(array_text, st.integers(-1, 40), st.builds(range, st.integers(-2, 10), st.integers(-2, 30),
                       st.sampled_from([1, 2, 3, -1]))),
    "notify": st.one_of(st.sampled_from(["begin", "end", "fail", "all", "none", "END,FAIL", "begin end",
                                         "sometimes"]),
                        st.lists(st.sampled_from(["begin", "end", "fail", "all", "none", "x"]), max_size=3)),
    "email": st.one_of(st.builds(lambda a, b: f"{a}@{b}", words, words), evil_text),
    "imports": st.one_of(st.sampled_from(["sys", "os, sys", "numpy as np", "from os import path", "import a.b as c",
                                          "from . import x", "os; rm -rf /", "import", ""]),
                         st.lists(words, max_size=3), evil_text),
    "paths": st.one_of(words.map(lambda w: "/tmp/" + w), st.lists(words, max_size=3), evil_text,
                       st.builds(Path, words), st.just("/a:/b,/c")),
    "suffix": st.one_of(words, evil_text, st.just("cluster"), st.just("a" * 40)),
}
assert set(PLAUSIBLE) == {spec.type for spec in OPTIONS}


def value_for(keyword: str, adversarial: bool = True):
    plausible = PLAUSIBLE[SPECS[keyword].type]
    return st.one_of(plausible, plausible, anything) if adversarial else plausible


def keyword_variants(keyword: str):
    return st.sampled_from([keyword, keyword.upper(), keyword.replace("_", "-"), f" {keyword} "])


def option_dicts(adversarial: bool = True, exclude=(), max_size: int = 6):
    # one branch per keyword, built once (a flatmap would build and validate strategies for every draw)
    pair = st.one_of([st.tuples(keyword_variants(k) if adversarial else st.just(k), value_for(k, adversarial))
                      for k in KEYWORDS if SPECS[k].name not in exclude])
    return st.lists(pair, max_size=max_size).map(dict)


junk_keywords = st.one_of(st.integers(), st.none(), st.binary(max_size=4), st.tuples(st.integers()),
                          evil_text, huge_text, st.builds(BadStr))


# --- what every outcome must look like --------------------------------------------------------------

def check_error(exc: BaseException) -> None:
    """An error a user caused: ours, short, and naming the keyword it is about."""
    assert isinstance(exc, OptionError), f"{type(exc).__name__}: {exc}"
    assert isinstance(exc, ClusterError)
    message = str(exc)
    assert message and len(message) <= MAX_MESSAGE, message[:300]
    assert exc.keyword is not None, message
    if isinstance(exc.keyword, str) and len(exc.keyword) <= 40 and exc.keyword.isprintable():
        assert exc.keyword in message, message


def check_checked(checked: dict) -> None:
    """Accepted values have the documented types and bounds."""
    for name, value in checked.items():
        kind = SPECS[name].type
        if kind == "int":
            assert type(value) is int and 1 <= value <= MAX_COUNT, (name, value)
        elif kind == "signed":
            assert type(value) is int and abs(value) <= MAX_COUNT, (name, value)
        elif kind == "count":
            assert type(value) is int and 0 <= value <= MAX_COUNT, (name, value)
        elif kind == "seconds":
            assert type(value) is int and 0 <= value <= MAX_TIME_SECONDS, (name, value)
        elif kind == "memory":
            assert type(value) is int and 1 <= value <= MAX_MEMORY_MB, (name, value)
        elif kind == "time":
            assert type(value) is int and 1 <= value <= MAX_TIME_SECONDS, (name, value)
        elif kind == "bool":
            assert type(value) is bool
        elif kind in ("str", "path", "email", "suffix"):
            assert type(value) is str and value.strip(), (name, value)
            _clean_text(value)
        elif kind == "array":
            assert type(value) is str
            indices, limit = array_indices(value)
            assert indices and len(indices) <= MAX_ARRAY_TASKS and 0 <= indices[0] <= indices[-1] <= MAX_ARRAY_INDEX
            assert limit is None or limit >= 1
        elif kind == "depends":
            assert type(value) is tuple and value, (name, value)
            for dep in value:
                assert type(dep) is Dependency and dep.kind in DEPENDENCY_KINDS, (name, dep)
                assert (dep.job_id is None) == (dep.kind == "singleton")
                if dep.job_id is not None:
                    assert type(dep.job_id) is str
                    _clean_text(dep.job_id)
        else:  # words, args, export, notify, imports, paths: non-empty tuples of clean strings
            assert type(value) is tuple and value, (name, value)
            for item in value:
                assert type(item) is str, (name, item)
                _clean_text(item)


def _clean_text(text: str) -> None:
    text.encode("utf-8")  # no lone surrogates
    assert not any(c in text for c in "\n\r\0"), repr(text)


PREFIXES = {"slurm": ("#SBATCH", True), "torque": ("#PBS", False), "pbspro": ("#PBS", False),
            "sge": ("#$", False), "local": (None, False)}


def render_everywhere(checked: dict) -> dict:
    """Render checked options on every backend: each either gives clean directive lines or refuses the
    options with OptionError. Returns the lines per backend that rendered."""
    renderers = {
        "slurm": cluster_slurm_render.render,
        "torque": lambda o: cluster_torque_render.render(o, TORQUE),
        "pbspro": lambda o: cluster_torque_render.render(o, PBSPRO),
        "sge": cluster_sge_render.render,
        "local": cluster_local_plugin.render_options,
    }
    out = {}
    for backend, render in renderers.items():
        try:
            directives = render(dict(checked))
        except OptionError as exc:
            check_error(exc)
            continue
        assert all(type(d) is tuple and all(type(w) is str for w in d) for d in directives), directives
        prefix, escape = PREFIXES[backend]
        lines = directive_lines(directives, prefix or "#X", escape)
        for line in lines:
            line.encode("utf-8")
            assert "\n" not in line and "\r" not in line and "\0" not in line, (backend, line)
        out[backend] = lines
    return out


# --- check_arguments --------------------------------------------------------------------------------

@FUZZ
@given(options=option_dicts())
@example(options={"account": 10 ** 5000})
@example(options={"mem": 10 ** 400})
@example(options={"mem": "9" * 5000 + "G"})
@example(options={"mem": math.inf})
@example(options={"mem": math.nan})
@example(options={"nodes": 10 ** 5000})
@example(options={"nodes": math.inf})
@example(options={"cores": 10 ** 12})
@example(options={"cores": True})
@example(options={"time": 10 ** 400})
@example(options={"time": math.inf})
@example(options={"time": "9" * 5000})
@example(options={"time": "1" * 5000 + ":00"})
@example(options={"priority": 10 ** 5000})
@example(options={"priority": 2.0})
@example(options={"array": 10 ** 12})
@example(options={"array": 10 ** 5000})
@example(options={"array": "0-999999999999"})
@example(options={"array": range(10 ** 12)})
@example(options={"array": range(9, -1, -1)})
@example(options={"array": "0-9:0"})
@example(options={"array": "5-3"})
@example(options={"array": "0-9%0"})
@example(options={"array": "٠-٩"})
@example(options={"array": "0-9\n"})
@example(options={"outfile": b"x"})
@example(options={"name": "\ud800"})
@example(options={"name": BadStr()})
@example(options={"name": NotAStr()})
@example(options={"name": "a\0b"})
@example(options={"name": "x" * 100_000})
@example(options={"depends": 1.5})
@example(options={"depends": b"12"})
@example(options={"depends": 10 ** 5000})
@example(options={"depends": -1})
@example(options={"depends": {"12": 1}})
@example(options={"depends": BadIter()})
@example(options={"depends": HasId(BadStr())})
@example(options={"depends": RaisingId()})
@example(options={"export": 5})
@example(options={"export": b"PATH"})
@example(options={"export": {"A": BadStr()}})
@example(options={"export": []})
@example(options={"export": "A=\ud800"})
@example(options={"extra": "'a\nb'"})
@example(options={"extra": {"--tmp": "10G"}})
@example(options={"extra": b"--tmp"})
@example(options={"features": "a\0b"})
@example(options={"modules": BadIter()})
@example(options={"email": "a@\ud800"})
@example(options={"hold": BadStr()})
def test_check_arguments_raises_only_option_error(options):
    check_and_render(options)


def check_and_render(options):
    """Either an OptionError as check_error wants it, or checked values that render everywhere."""
    try:
        checked = check_arguments(options)
    except Exception as exc:
        check_error(exc)
        return
    check_checked(checked)
    render_everywhere(checked)


@FUZZ
@given(key=junk_keywords, value=anything)
@example(key=1, value=2)
@example(key=None, value=1)
@example(key=b"cores", value=1)
@example(key=BadStr(), value=1)
@example(key="x" * 100_000, value=1)
@example(key="\ud800", value=1)
def test_junk_keywords_raise_option_error(key, value):
    try:
        check_arguments({key: value})
    except Exception as exc:
        check_error(exc)


@pytest.mark.parametrize("value", [[("cores", 1)], "cores=1", 5, None])
def test_check_arguments_wants_a_mapping(value):
    with pytest.raises(OptionError):
        check_arguments(value)


@pytest.mark.parametrize("keyword,value,expected", [
    ("cores", 10 ** 5000, "at most 2147483647"), ("cores", math.nan, "whole number"), ("mem", 10 ** 400, "at most"),
    ("mem", math.inf, "finite"), ("time", 10 ** 400, "at most"), ("array", 10 ** 12, "below 10000000"),
    ("array", "0-999999999", "below 10000000"), ("array", "0-1999999", "at most 1000000 tasks"),
    ("outfile", b"x", "bytes"), ("depends", 1.5, "job id"), ("name", "\ud800", "surrogate"),
    ("account", 10 ** 5000, "account="), ("priority", 10 ** 5000, "priority="), ("extra", {"-a": 1}, "list"),
], ids=lambda v: v if isinstance(v, str) and v.isprintable() and len(v) < 20 else type(v).__name__)
def test_messages_say_what_is_allowed(keyword, value, expected):
    with pytest.raises(OptionError) as err:
        check_arguments({keyword: value})
    message = str(err.value)
    assert keyword + "=" in message and expected in message, message
    assert len(message) <= MAX_MESSAGE
    assert err.value.keyword == keyword


def test_messages_survive_values_that_cannot_be_shown():
    for value in (BadRepr(), [10 ** 5000], 10 ** 5000, -10 ** 5000, "x" * 100_000):
        with pytest.raises(OptionError) as err:
            check_arguments({"name": value}) if not isinstance(value, str) else check_arguments({"cores": value})
        check_error(err.value)
    with pytest.raises(OptionError, match="BadRepr object"):
        check_arguments({"partition": BadRepr()})
    with pytest.raises(OptionError, match="integer of 5001 digits"):
        check_arguments({"cores": 10 ** 5000})


def test_bounds_are_accepted_and_render():
    checked = check_arguments({"cores": MAX_COUNT, "nodes": 1, "mem": MAX_MEMORY_MB, "time": MAX_TIME_SECONDS // 60,
                               "array": f"{MAX_ARRAY_INDEX - 9}-{MAX_ARRAY_INDEX}", "priority": -1000})
    assert render_everywhere(checked)["slurm"]


def test_empty_depends_means_none():
    assert "depends" not in check_arguments({"depends": []})
    assert "depends" not in check_arguments({"depends": ""})


# --- rendering of accepted options ------------------------------------------------------------------

@FUZZ
@given(options=option_dicts(adversarial=False, max_size=10))
@example(options={"begin": "0001-01-01T00:00+14:00"})
@example(options={"begin": "9999-12-31T23:59-14:00"})
@example(options={"begin": "0999-01-01T10:00"})
@example(options={"begin": "x" * 4000})
@example(options={"outfile": "/tmp/" + "a\\" * 2000, "errfile": "/tmp/" + "d:" * 2000})
@example(options={"array": "0-9:3", "tasks": 7, "tasks_per_node": 3})
@example(options={"priority": 10 ** 9})
@example(options={"mem": 4096, "nodes": 3, "mem_per_cpu": None, "gpus": 5})
@example(options={"depends": ["1[].srv", "2[3].srv", "7"]})
@example(options={"features": ["a=b", "c"], "licenses": "x:2,y"})
def test_accepted_options_render_on_every_backend(options):
    check_and_render(options)


# --- Job(...) ---------------------------------------------------------------------------------------

def job_function(x=1):
    return x


commands = st.one_of(st.text(max_size=40), evil_text, st.sampled_from(["echo hi", "echo 'a\nb'", "  ", "",
                                                                         "dir/", "#comment", "'unbalanced"]),
                     st.just(job_function), st.binary(max_size=4), ints, st.builds(BadStr))


@pytest.fixture
def job_env(toy_arrays, tmp_path, monkeypatch):
    """Job construction and writing: the toy backend with native arrays, Torque's dialect fixed (no qstat
    is asked), job files under tmp_path."""
    monkeypatch.setenv("CLUSTER_TORQUE_DIALECT", "torque")
    return tmp_path / "jobs"


def _build_and_write(command, options, jobdir, backend=None):
    try:
        job = Job(command, backend=backend, jobdir=str(jobdir), **options)
    except Exception as exc:
        check_error(exc)
        return None
    assert isinstance(job.name, str) and job.name
    try:
        path = job.write()
    except Exception as exc:  # a backend may refuse the options (e.g. Grid Engine with nodes=2)
        check_error(exc)
        return None
    text = Path(path).read_bytes().decode("utf-8")
    assert text.startswith("#!/bin/bash\n")
    if job.command is not None:
        assert job.command.rstrip("\n") in text
    return job


@FUZZ
@given(command=commands, options=option_dicts(exclude=("jobdir", "array")))
@example(command="echo", options={"nodes": 10 ** 5000})
@example(command="\ud800", options={})
@example(command="echo \ud800", options={})
@example(command="echo hi", options={"name": "\ud800"})
@example(command="echo a\0b", options={})
@example(command="echo", options={"depends": 1.5})
@example(command="echo", options={"depends": [1.5]})
@example(command="echo", options={"dependency": "1", "afterok": "2"})
@example(command="echo", options={"outfile": b"x"})
@example(command="echo", options={"workdir": "/tmp/\udcff"})
@example(command="echo", options={"modules": ["a\nb"]})
@example(command=b"echo", options={})
@example(command=BadStr(), options={})
def test_job_construction_and_script(job_env, command, options):
    _build_and_write(command, options, job_env)


@SMALL
@given(array=PLAUSIBLE["array"] | anything)
@example(array=10 ** 12)
@example(array="0-9:0")
@example(array=range(9, -1, -1))
def test_array_jobs(job_env, array):
    job = _build_and_write("echo $CLUSTER_TASK_ID", {"array": array}, job_env)
    if job is not None and "array" in job.options:
        assert job.indices and job.native_array


def _named(x):
    return x


class _Nameless:
    __name__ = 5  # not a string

    def __call__(self):
        return None


@pytest.mark.parametrize("args,kwargs", [((), None), ((1,), {}), ([1], None), ((), {"x": 1})])
def test_function_job_arguments(job_env, args, kwargs):
    assert Job(_named, args, kwargs, jobdir=str(job_env)).write().exists()


def test_a_single_bare_argument_is_one_argument(job_env):
    """fyrd took ``submit(f, 5)`` and ``submit(f, "ab")`` as one argument."""
    assert Job(_named, 5, jobdir=str(job_env)).args == (5,)
    assert Job(_named, "ab", jobdir=str(job_env)).args == ("ab",)


@pytest.mark.parametrize("args,kwargs", [({"x": 1}, None), (BadIter(), None), ((), 5),
                                         ((), {1: 2}), ((), [("x", 1)])])
def test_function_job_bad_arguments(job_env, args, kwargs):
    with pytest.raises(OptionError) as err:
        Job(_named, args, kwargs, jobdir=str(job_env))
    check_error(err.value)


def test_function_without_a_string_name(job_env):
    job = Job(_Nameless(), jobdir=str(job_env))
    assert job.name == "function"


@SMALL
@pytest.mark.parametrize("backend", ["slurm", "torque", "sge"])
@given(options=option_dicts(adversarial=False, exclude=("jobdir",), max_size=8))
def test_jobs_write_for_every_backend(job_env, backend, options):
    """The scripts of real backends (written, never submitted) carry their directives intact."""
    if "array" in options:  # a one-script native array: keep it small
        options["array"] = "0-3"
    _build_and_write("echo hi", options, job_env, backend=backend)
