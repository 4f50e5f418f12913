"""fyrd's helpers (cluster_core.helpers: jobify, parapply, parapply_summary, splitrun) on the real local
backend, and the main ones on the real Slurm too (marked slurm: they skip with a reason when no Slurm
controller answers, and must run in CI). Each test quotes the fyrd documentation it checks."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import cluster_core as cc
from cluster_core.errors import OptionError
from cluster_core.helpers import jobify, parapply, parapply_summary, splitrun
from cluster_core.run import open_zipped

pd = pytest.importorskip("pandas", reason="the test extra installs pandas (pip install -e '.[test]')")
np = pytest.importorskip("numpy")

BACKENDS = ["local", pytest.param("slurm", marks=pytest.mark.slurm)]  # gated in conftest.py


@pytest.fixture
def backend(request, tmp_path, monkeypatch, cluster_config):
    """The real local backend (its own runner and state dir) or the real Slurm, chosen for the test,
    which runs in tmp_path. Yields the backend's name."""
    name = request.param
    if name == "local":
        request.getfixturevalue("local")
    else:
        monkeypatch.setenv("CLUSTER_BACKEND", name)
        monkeypatch.chdir(tmp_path)
    yield name
    from cluster_core.queue import reset_trackers
    reset_trackers(name)


def recorded(pattern):
    """The jobs whose names match, from the job records: what really ran."""
    from cluster_core.queue import reset_trackers
    reset_trackers()
    return sorted(cc.jobs(name=pattern), key=lambda j: j.name)


def job_files(tmp_path):
    jobdir = tmp_path / "cluster_jobs"
    return sorted(p.name for p in jobdir.rglob("*")) if jobdir.exists() else []


# --- functions the jobs run (module level: the node imports them as the submitter did) -------------

SCALE = 10


def add_one(x):
    return x + 1


@jobify
def square(x):
    """Square a number."""
    return x * x


@jobify(name="scaled", mem="200M", time="00:20:00", submit=False, qtype="local")
def scaled(x, power=1):
    """SCALE times (x + 1) to the power."""
    return SCALE * add_one(x) ** power


def fields_doubled(path):
    """fyrd's test function for splitrun: each line, and its second field twice."""
    out = []
    with open_zipped(path) as fin:
        for line in fin:
            out.append((line, line.split("\t")[1] * 2))
    return out


def plus(value, amount, times=1):
    return (value + amount) * times


def fail_on_big(column):
    if column.max() > 50:
        raise ValueError(f"too big: {column.max()}")
    return column.sum()


def fyrd_frame():
    """The DataFrame of fyrd's parapply and parapply_summary examples."""
    return pd.DataFrame([[0, 1], [2, 6], [9, 24], [13, 76], [4, 12]])


def write_table(path, rows=10, header=True):
    lines = (["name\tvalue\n"] if header else []) + [f"row{i}\t{i}\n" for i in range(rows)]
    with open_zipped(str(path), "w") as handle:
        handle.writelines(lines)
    return lines


# --- jobify -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
def test_jobify_call_returns_a_submitted_job(backend):
    """fyrd: "This is a fyrd.job.Job decorated function. When you call it it will return a Job object
    from which you can get the results with the `.get()` method." and "the decorator also maintains the
    original docstring"."""
    job = square(7)
    assert isinstance(job, cc.Job) and job.submitted and job.backend.name == backend
    assert job.get() == 49 and job.name == "square"
    assert square.__name__ == "square" and square.__doc__ == "Square a number."
    assert square.__wrapped__(3) == 9


def test_jobify_submit_false_keywords_and_qtype(local, monkeypatch):
    """fyrd: "By default, the returned job will be submitted already, but you can override that
    behavior" (submit=False); fyrd's own test decorates with name, mem, time and qtype='local'."""
    monkeypatch.delenv("CLUSTER_BACKEND")  # qtype alone chooses the backend
    job = scaled(1, power=2)
    assert isinstance(job, cc.Job) and not job.submitted
    assert job.name == "scaled" and job.options["mem"] == 200 and job.options["time"] == 1200
    assert job.backend.name == "local"
    assert job.submit().get() == SCALE * 4  # module globals and helpers travel with the function
    assert jobify(qtype="normal", submit=False)(add_one)(1).backend.name == "local"  # fyrd's old name
    assert jobify(qtype="torque", submit=False)(add_one)(1).backend.name == "torque"  # others pass through


def test_jobify_checks_keywords_when_decorating(local):
    with pytest.raises(OptionError, match="unknown job keyword 'cors'; did you mean 'cores'") as err:
        jobify(cors=2)
    assert err.value.keyword == "cors"
    with pytest.raises(OptionError, match="qtype='local' and backend='slurm' disagree"):
        jobify(qtype="local", backend="slurm")
    with pytest.raises(OptionError, match="jobify decorates a function, not int"):
        jobify(name="x")(5)


def test_jobify_in_a_scripts_main(local, tmp_path):
    """fyrd: "in order for function submission to work, *fyrd* ends up importing your original script
    file on the nodes" (hence its `if __name__ == '__main__'` warning). Here a function decorated in a
    script's __main__ goes by value, and the script is not imported again on the node."""
    script = tmp_path / "analysis.py"
    script.write_text(textwrap.dedent("""\
        from cluster_core.helpers import jobify

        OFFSET = 2
        print("module body ran")

        @jobify(name="main-fn", cores=1)
        def triple(x):
            return 3 * x + OFFSET

        if __name__ == "__main__":
            jobs = [triple(i) for i in range(3)]
            print([j.get() for j in jobs], {j.name for j in jobs})
        """))
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120,
                          cwd=tmp_path, env=os.environ.copy())
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "module body ran\n[2, 5, 8] {'main-fn'}\n"
    assert all("module body ran" not in (j.stdout or "") for j in recorded("main-fn"))


# --- parapply ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
def test_parapply_fyrd_example(backend, tmp_path):
    """fyrd: "This function will split a dataframe into however many pieces are requested with the jobs
    argument, run apply in parallel by submitting the jobs to the cluster, and then recombine the
    outputs", with its example `df['sum'] = fyrd.helpers.parapply(2, df, lambda x: x[0]+x[1], axis=1)`,
    and "If the 'clean_files' and 'clean_outputs' arguments are not passed, we delete all intermediate
    files and output files by default."."""
    df = fyrd_frame()
    df["sum"] = parapply(2, df, lambda x: x[0] + x[1], axis=1)
    assert df["sum"].tolist() == [1, 8, 33, 89, 16]
    ran = recorded("parapply_*")
    assert [j.name for j in ran] == ["parapply_1_of_2", "parapply_2_of_2"]
    assert all(j.state is cc.State.COMPLETED and j.backend.name == backend for j in ran)
    assert job_files(tmp_path) == []


def test_parapply_keeps_every_row_and_skips_empty_chunks(local, tmp_path):
    """numpy.array_split's rule, as fyrd split with it: 10 rows in 3 jobs are 4, 3 and 3 rows, none lost;
    7 jobs for 3 rows run 3 jobs (fyrd also submitted the empty chunks). fyrd: "If the 'clean_files' and
    'clean_outputs' arguments are not passed, we delete all intermediate files and output files by
    default": clean_files=False keeps the scripts and pickles, the outputs still go."""
    df = pd.DataFrame({"a": range(10), "b": range(10, 20)})
    result = parapply(3, df, lambda row: row["a"] * row["b"], axis=1, name="rows")
    pd.testing.assert_series_equal(result, df.apply(lambda row: row["a"] * row["b"], axis=1))
    assert len(recorded("rows_*_of_3")) == 3
    small = df.iloc[:3]
    out = parapply(7, small, lambda col: col * 2, name="few", clean_files=False)
    pd.testing.assert_frame_equal(out, small * 2)
    assert [j.name for j in recorded("few_*")] == ["few_1_of_3", "few_2_of_3", "few_3_of_3"]
    files = job_files(tmp_path)
    assert sum(name.endswith(".sh") for name in files) == 3 and not any(name.endswith(".out") for name in files)


def test_parapply_keywords_go_to_the_jobs_or_to_apply(local):
    """fyrd: "Any keyword arguments recognized by fyrd will be used for job submission. *Additional
    keyword arguments will be passed to DataFrame.apply()*" and "args (tuple): Positional arguments to
    pass to the function, keyword arguments can just be passed directly"."""
    df = pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": [4.0, 5.0, 6.0]})
    out = parapply(2, df, plus, args=(1,), times=3, mem="300M", name="kw")
    pd.testing.assert_frame_equal(out, (df + 1) * 3)
    assert {j._registry_record.options["mem"] for j in recorded("kw_*")} == {300}
    raw = parapply(2, df, lambda values: values.sum(), raw=True, axis=1, name="raw")  # raw: pandas', not extra=
    assert raw.tolist() == [5.0, 7.0, 9.0]


def test_parapply_applymap_with_args_and_merge_apply(local):
    """fyrd: "applymap (bool): Run applymap() instead of apply()" (args reach the function after each
    element) and "merge_apply (bool): Apply the function on the merged dataframe also"."""
    df = pd.DataFrame([[1, 2], [3, 4], [5, 6]])
    pd.testing.assert_frame_equal(parapply(2, df, plus, args=(10,), applymap=True), df + 10)
    cumulative = parapply(2, df, lambda col: col.cumsum(), merge_apply=True)
    pd.testing.assert_frame_equal(cumulative, pd.DataFrame([[1, 2], [4, 6], [5, 6]]).cumsum())


def test_parapply_summary_fyrd_example(local):
    """fyrd: "Instead of returning the concatenated result, merge the result using the same function as
    was used during apply", with its example `fyrd.helpers.parapply_summary(2, df, numpy.mean)` giving
    "0 6.083333, 1 27.166667": the mean of the chunk means, not the mean (5.6 and 23.8). A linear
    summary such as a sum or a max comes out exact."""
    df = fyrd_frame()
    means = parapply_summary(2, df, np.mean)
    assert means.round(6).tolist() == [6.083333, 27.166667]
    pd.testing.assert_series_equal(parapply_summary(3, df, lambda col: col.sum()), df.sum())
    pd.testing.assert_series_equal(parapply_summary(2, df, np.max), df.max())


def test_parapply_failure_raises_the_functions_error_and_keeps_files(local, tmp_path):
    df = pd.DataFrame({"a": [1, 2, 3, 4], "b": [10, 20, 30, 99]})
    with pytest.raises(ValueError, match="too big: 99"):
        parapply(2, df, fail_on_big, axis=1, name="fails")
    assert {j.state for j in recorded("fails_*")} == {cc.State.COMPLETED, cc.State.FAILED}
    assert any(name.endswith(".err") for name in job_files(tmp_path))  # kept for a look


def test_parapply_bad_arguments_are_option_errors(local):
    df = fyrd_frame()
    cases = [(dict(jobs=0), "jobs"), (dict(jobs=2.0), "jobs"), (dict(df=[[1, 2]]), "df"), (dict(func=5), "func"),
             (dict(args=3), "args"), (dict(cors=2), "cors"), (dict(profile=3), "profile")]
    for change, keyword in cases:
        call = {"jobs": 2, "df": df, "func": sum, **change}
        with pytest.raises(OptionError) as err:
            parapply(call.pop("jobs"), call.pop("df"), call.pop("func"), **call)
        assert err.value.keyword == keyword
    with pytest.raises(OptionError, match="did you mean 'cores'.*nor is 'cors' a keyword argument of plus"):
        parapply(2, df, plus, args=(1,), cors=2)
    assert recorded("parapply_*") == []  # nothing was submitted


def test_parapply_imports_keyword_reaches_the_jobs(local):
    """fyrd: "imports (list): A list of imports in any format, e.g. ['import numpy', 'scipy', 'from
    numpy import mean']": passed to the jobs as the job keyword imports."""
    from cluster_core.options import get_spec
    try:
        get_spec("imports")
    except OptionError:
        pytest.skip("the keyword table has no 'imports' keyword yet")
    df = pd.DataFrame({"a": [1.0, 4.0, 9.0]})
    out = parapply(2, df, lambda col: col ** 0.5, imports=["import math"], name="imp")
    assert out["a"].tolist() == [1.0, 2.0, 3.0]
    assert all(j._registry_record.options.get("imports") for j in recorded("imp_*"))


def test_parapply_without_pandas_says_how_to_install_it(tmp_path):
    """pandas stays optional: without it the helpers say which extra brings it."""
    code = ("import sys; sys.modules['pandas'] = None\n"
            "from cluster_core.helpers import parapply\n"
            "try:\n    parapply(2, [[1]], sum)\n"
            "except ImportError as exc:\n    print(exc)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert "parapply needs pandas" in proc.stdout and "pip install 'cluster-core[pandas]'" in proc.stdout


# --- splitrun ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
def test_splitrun_function_on_a_gzipped_file(backend, tmp_path):
    """fyrd: "If command is a function, the there must be an argument in either args or kwargs that
    contains `{file}`. It will be replaced with the *path to the file*", with its test
    `splitrun(2, 'tests/test.txt.gz', False, dosomething, ('{file}',), qtype='local')` equal to
    `dosomething('tests/test.txt.gz')`: "Else: a list of results", lists joined into one."""
    write_table(tmp_path / "test.txt.gz", rows=9, header=False)
    out = splitrun(2, "test.txt.gz", False, fields_doubled, ("{file}",), qtype=backend)
    assert out == fields_doubled(str(tmp_path / "test.txt.gz"))
    assert [j.name for j in recorded("split_file_*")] == ["split_file_1_of_2", "split_file_2_of_2"]
    assert job_files(tmp_path) == []  # parts, outputs and job files removed


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
def test_splitrun_shell_command_with_outfile_and_headers(backend, tmp_path):
    """fyrd: "If command is a string, `.format(file={file})` will be called on it", "If outfile is
    specified, there must also be an '{outfile}' line in any script ... the file at outfile will contain
    the concatenated output files of all of the jobs", "Any header line is kept at the top of the file",
    and "If outfile: the absolute path to that file". Part paths holding a space and a quote are quoted."""
    lines = write_table(tmp_path / "in.tsv.gz", rows=7)
    jobdir = tmp_path / "job dir's"
    out = splitrun(3, tmp_path / "in.tsv.gz", True, "zcat {file} | tr '\\t' , | awk '{{print NR\": \"$0}}' > {outfile}",
                   name="csv", outfile="merged.csv", outheader=True, jobdir=str(jobdir))
    assert out == str(tmp_path / "merged.csv")
    got = Path(out).read_text().splitlines()
    assert got[0] == "1: name,value" and len(got) == len(lines)
    assert [g.split(": ", 1)[1] for g in got] == [line.rstrip("\n").replace("\t", ",") for line in lines]
    assert [j.name for j in recorded("csv_*")] == ["csv_1_of_3", "csv_2_of_3", "csv_3_of_3"]
    assert list(jobdir.iterdir()) == []


def test_splitrun_shell_outputs_merge_func_and_word_lists(local, tmp_path):
    """fyrd: "If merge_func: the result of merge_func(list), where list is the list of outputs." A
    command without {file} gets the part's path as its last argument; a list is an argument vector."""
    write_table(tmp_path / "t.tsv", rows=10)
    counts = splitrun(3, "t.tsv", True, "grep -c row {file}", merge_func=lambda outs: [int(o) for o in outs])
    assert counts == [4, 3, 3]
    assert splitrun(2, "t.tsv", True, "wc -l", merge_func=lambda outs: [o.split()[0] for o in outs]) == ["6", "6"]
    words = splitrun(2, "t.tsv", False, ["awk", "END {print NR}", "{file}"], name="words")
    assert words == ["6\n", "5\n"]


def test_splitrun_function_kwargs_and_outfile(local, tmp_path):
    """fyrd: "If outfile is specified, there must also be ... an '{outfile}' argument in either args or
    kwargs"; without {file} the path comes first (fyrd raised ValueError)."""
    lines = write_table(tmp_path / "t.tsv", rows=5, header=False)
    out = splitrun(2, "t.tsv", False, copy_upper, kwargs={"source": "{file}", "target": "{outfile}"},
                   outfile="upper.txt")
    assert Path(out).read_text() == "".join(line.upper() for line in lines)
    sizes = splitrun(2, "t.tsv", False, os.path.getsize)
    assert len(sizes) == 2 and sum(sizes) == os.path.getsize(tmp_path / "t.tsv")


def copy_upper(source, target):
    with open(source) as fin, open(target, "w") as fout:
        fout.write(fin.read().upper())


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
def test_splitrun_splits_a_dataframe_or_a_list(backend):
    """Issue 13: "split a DataFrame or a list across jobs, apply a function, join the results"."""
    df = pd.DataFrame({"a": range(7), "b": range(7, 14)})
    out = splitrun(3, df, False, plus, args=(1,), kwargs={"times": 2}, name="frame")
    pd.testing.assert_frame_equal(out, (df + 1) * 2)
    squares = splitrun(3, list(range(8)), False, square_all, name="list")
    assert squares == [x * x for x in range(8)]
    assert splitrun(4, tuple(range(8)), False, sum, merge_func=sum) == sum(range(8))
    assert len(recorded("list_*")) == 3


def square_all(values):
    return [v * v for v in values]


# "warm": a function job run by a warm worker, forked from the runner, submits jobs itself (this failed with
# SQLite's "locking protocol" while the runner kept its database open across the fork)
@pytest.mark.parametrize("workers", ["warm", "fresh"])
def test_splitrun_direct_false_returns_a_submitted_job(local, tmp_path, monkeypatch, workers):
    """fyrd: "direct : bool Whether to run the function directly or to return a Job" and "If direct is
    False, this function returns a fyrd.job.Job object which will return the results described above on
    get()." The driver job submits the part jobs from the node ("fresh": function jobs run their script,
    no warm worker)."""
    if workers == "fresh":
        monkeypatch.setenv("CLUSTER_LOCAL_WORKER_JOBS", "0")
    write_table(tmp_path / "t.tsv", rows=6, header=False)
    driver = splitrun(2, "t.tsv", False, fields_doubled, ("{file}",), name="indirect", direct=False)
    assert isinstance(driver, cc.Job) and driver.submitted and driver.name == "indirect"
    assert driver.get() == fields_doubled(str(tmp_path / "t.tsv"))
    assert [j.name for j in recorded("indirect_*")] == ["indirect_1_of_2", "indirect_2_of_2"]
    job = parapply(2, fyrd_frame(), lambda col: col.max(), name="pdriver", direct=False)
    pd.testing.assert_series_equal(job.get(), pd.concat([fyrd_frame().iloc[:3].max(), fyrd_frame().iloc[3:].max()]))


def test_splitrun_bad_arguments_are_option_errors(local, tmp_path):
    write_table(tmp_path / "t.tsv", rows=4)
    cases = [
        (dict(infile="missing.tsv"), "infile", "no such file"),
        (dict(command="cat {file} {other}"), "command", "holds {other}"),
        (dict(command="cat {file} > {outfile}"), "command", "no outfile= is given"),
        (dict(command="cat {file}", outfile="o.txt"), "outfile", "must write each part's output"),
        (dict(command=fields_doubled, args=("{file}",), outfile="o.txt"), "outfile", "must write"),
        (dict(infile=[1, 2], command="cat"), "command", "must be a function"),
        (dict(infile=[1, 2], command=sum, outfile="o"), "outfile", "results are returned"),
        (dict(command=42), "command", "not int"),
        (dict(jobs=0), "jobs", "1 or more"),
        (dict(qtype=""), "qtype", "backend name"),
    ]
    for change, keyword, message in cases:
        call = {"jobs": 2, "infile": "t.tsv", "inheader": True, "command": "cat {file}", **change}
        with pytest.raises(OptionError, match=message) as err:
            splitrun(call.pop("jobs"), call.pop("infile"), call.pop("inheader"), call.pop("command"), **call)
        assert err.value.keyword == keyword
    assert recorded("split_file_*") == [] and not (tmp_path / "cluster_jobs").exists()


def test_splitrun_failure_keeps_the_parts(local, tmp_path):
    write_table(tmp_path / "t.tsv", rows=4)
    with pytest.raises(cc.JobFailedError, match="exit code 3"):
        splitrun(2, "t.tsv", True, "cat {file}; exit 3", name="broken")
    [workdir] = (tmp_path / "cluster_jobs").glob("broken.*.split")
    assert sorted(p.name for p in workdir.iterdir()) == ["t.tsv.split_0001.tsv", "t.tsv.split_0002.tsv"]
