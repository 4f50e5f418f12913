"""One test per behaviour the seed's API document states (python-cluster 0.6.1, later fyrd 0.6), each
quoting the sentence it checks, on the real local backend. Where cluster-core differs on purpose, the
test checks what it does instead and docs/coming-from-fyrd.md gives the reason.

The run.py helpers (cmd, which, open_zipped, split_file) are at the end; fyrd's helpers and jobify are
in test_helpers.py.
"""

from __future__ import annotations

import gzip
import importlib
import io
import logging
import subprocess
import sys
import time

import pytest

import cluster_core as cc
from cluster_core import ClusterError, OptionError, State


def square(x):
    return x * x


GATE = 'while [ ! -e "{gate}" ]; do sleep 0.05; done'


def wait_for_state(job, wanted, timeout=60.0):
    """Poll the job (at the backend's own pace) until it reaches one of the wanted states."""
    deadline = time.monotonic() + timeout
    while job.state not in wanted:
        assert time.monotonic() < deadline, f"{job} never reached {wanted}"
        time.sleep(0.1)


# --- the seed's module names ------------------------------------------------------------------------

@pytest.mark.parametrize("module", ["options", "config_file", "logme", "run", "job", "queue"])
def test_the_seeds_modules_are_attributes_of_the_package(module):
    """"All keyword arguments are defined in dictionaries in the options.py file"; profiles "are handled
    in the config_file.py file"; "Some other wrapper functions are defined in run.py". Each is reachable as
    an attribute right after ``import cluster_core``, in a fresh interpreter."""
    code = f"import cluster_core; print(cluster_core.{module}.__name__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == f"cluster_core.{module}"


def test_options_check_arguments_whatever_was_touched_first():
    """"check_arguments() checks a dictionary to make sure that the arguments are allowed": reachable as
    cluster_core.options.check_arguments before any other name was used."""
    code = "import cluster_core; print(cluster_core.options.check_arguments({'cores': '2'}))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "{'cores': 2}"


# --- Queueing ---------------------------------------------------------------------------------------

def test_get_cluster_environment_autodetects(local):
    """"get_cluster_environment() attempts to autodetect the cluster type ... If neither is found, MODE is
    set to local." It returns the name of a backend that detects itself here (local always does)."""
    from cluster_core.plugins import list_backends
    name = cc.get_cluster_environment(refresh=True)
    assert name in {b.name for b in list_backends() if b.available}


def test_wait_accepts_a_list_and_blocks_until_complete(local):
    """"the wait() function accepts a list of jobs and will block until those jobs are complete.\""""
    jobs = [cc.submit("sleep 0.3; echo a"), cc.submit("echo b")]
    assert cc.wait(jobs) is True
    assert all(j.done and j.state is State.COMPLETED for j in jobs)


def test_queue_wait_takes_a_job_ids_or_a_list(local):
    """Queue.wait: "A job or list of jobs to check. Can be one of: Job ..., job ID (int/str), or a object or
    a list/tuple of multiple Jobs or job IDs. Returns: True on success False or nothing on failure.\""""
    queue = cc.Queue(qtype="local")
    ok, bad = cc.submit("true"), cc.submit("exit 3")
    assert queue.wait(ok) is True
    assert queue.wait(int(ok.id)) is True and queue.wait(str(ok.id)) is True
    assert queue.wait((ok, bad.id)) is False


def test_queue_lists_the_users_jobs_and_can_submit(local):
    """"Queue.queue is a list of jobs in the queue"; "Queue.can_submit(max_queue_len=None) Return True if
    R/Q jobs are less than max_queue_len"; "Queue.update() Refresh the list of jobs from the server\""""
    gate = local.parent / "gate"
    held = cc.submit(GATE.format(gate=gate))
    queue = cc.Queue(qtype="local").update(force=True)
    assert held.id in {j.id for j in queue.queue}
    assert isinstance(queue.queue[0], cc.Queue.QueueJob)
    assert queue.can_submit(max_queue_len=1) is False
    assert queue.can_submit(max_queue_len=2) is True
    assert queue.can_submit(max_queue_len=0) is True  # 0 disables the limit
    gate.touch()
    queue.wait_to_submit(max_queue_len=1, timeout=60)
    assert held.wait() is True


# --- Job management ---------------------------------------------------------------------------------

def test_submit_can_take_a_single_command(local):
    """"The foremost of these is submit() which can take as little as a single command and execute it.\""""
    job = cc.submit("echo hello")
    assert isinstance(job, cc.Job) and job.get() == "hello\n"


def test_make_job_and_make_job_file(local):
    """"make_job() and make_job_file() work similarly but just return a Job object, or write the file";
    make_job "Returns: A Job object", make_job_file "Returns: Path to job script\""""
    job = cc.make_job("echo made")
    assert isinstance(job, cc.Job) and not job.submitted and job.submission.written
    path = cc.make_job_file("echo file")
    assert path.is_file() and "echo file" in path.read_text()
    assert job.submit().get() == "made\n"


def test_clean_takes_a_list_of_jobs_and_deletes_written_files(local):
    """"clean() takes a list of Job objects and runs their internal clean() methods, deleting all written
    files"; "cluster.job.clean(jobs) Delete all files in jobs list or single Job object.\""""
    jobs = [cc.submit(square, (3,)), cc.submit("echo x")]
    assert cc.get(jobs) == [9, "x\n"]
    cc.clean(jobs)
    assert not any(j.submission.written for j in jobs)
    assert not jobs[0].files.pickle_in.exists() and not jobs[0].files.pickle_out.exists()
    single = cc.submit("echo y")
    single.wait()
    cc.clean(single, clean_outputs=True)
    assert not single.outfile.exists() and single.stdout == "y\n"


def test_submit_file_submits_an_existing_script_with_dependencies(local, tmp_path):
    """"submit_file() ... just submitting an already created job file. It can do dependency tracking in the
    same way as a job file"; "Dependencies: A job number or list of job numbers.\""""
    first = cc.submit("echo first > first.txt")
    script = tmp_path / "mine.sh"
    script.write_text("#!/bin/bash\ncat first.txt > second.txt\n")
    second = cc.submit_file(str(script), dependencies=int(first.id))
    assert second.wait() is True
    assert (tmp_path / "second.txt").read_text() == "first\n"
    third = cc.submit_file(str(script), [first.id, second.id], qtype="local")
    assert third.wait() is True


def test_submit_file_threads_is_the_local_limit(local):
    """submit_file "Threads: Total number of threads to use at a time, defaults to all. ONLY USED IN LOCAL
    MODE": a runner started with threads=1 runs one single-core job at a time."""
    gate = local.parent / "gate"
    script = local.parent / "blocked.sh"
    script.write_text(GATE.format(gate=gate) + "\n")
    first = cc.submit_file(str(script), threads=1)
    second = cc.submit("true", threads=1)
    wait_for_state(first, {State.RUNNING})
    assert second.state is State.PENDING  # one core: it waits for the first
    gate.touch()
    assert cc.wait([first, second]) is True
    assert second.record.start_time >= first.record.end_time


def test_clean_dir_deletes_what_looks_made_by_this_module(local, tmp_path):
    """"clean_dir() uses the file naming convention established in the Job class ... to delete all files in
    a directory that look like they could be made by this module"; "Returns: A set of deleted files\""""
    job = cc.submit("echo z", suffix="mine")
    job.wait()
    other = cc.submit("echo w")
    other.wait()
    keep = tmp_path / "cluster_jobs" / "notes.txt"
    keep.write_text("mine")
    removed = cc.clean_dir(suffix="mine")
    assert {p.name for p in removed} == {p.name for p in job.files.jobdir.iterdir()
                                         if p.name.startswith(job.files.stem)} | {p.name for p in removed}
    assert all(".mine." in p.name for p in removed) and not job.submission.written
    assert other.submission.written and keep.exists()
    assert len(cc.clean_dir()) >= 3 and keep.exists()


def test_clean_dir_autoconfirm_is_off_and_asking_needs_a_terminal(local, tmp_path, monkeypatch):
    """"It has an autoconfirm feature that can be activated to avoid accidental clobbering";
    "clean_dir(directory='.', suffix='cluster', qtype=None, confirm=False)". Asked to confirm with no
    terminal to answer, nothing is deleted and the error says how to go on."""
    job = cc.submit("echo q")
    job.wait()
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\n"))
    with pytest.raises(ClusterError, match="no terminal to confirm"):
        cc.clean_dir(confirm=True)
    assert job.submission.written
    assert cc.clean_dir() and not job.submission.written  # the default does not ask


def test_cli_clean_refuses_to_guess_without_a_terminal(local, tmp_path):
    """The same for `cluster clean`: it asks unless --yes, and with stdin from a pipe it deletes nothing."""
    job = cc.submit("echo cli")
    job.wait()
    env = {**__import__("os").environ}
    run = [sys.executable, "-m", "cluster_core", "clean", str(tmp_path / "cluster_jobs")]
    refused = subprocess.run(run, stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env)
    assert refused.returncode != 0 and "--yes" in refused.stderr
    assert job.submission.written
    done = subprocess.run(run + ["--yes"], stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env)
    assert done.returncode == 0 and not job.submission.written


def test_job_submit_wait_get(local):
    """"submit() will submit the job if it is ready wait() will block until the job is done get() will block
    until the job is done and then unpickle a stored output (if defined) and return the contents\""""
    job = cc.Job(square, (7,))
    assert job.submit() is job and job.submitted
    job.wait()
    assert job.done and job.get() == 49


def test_get_submits_a_job_first_and_a_second_submit_does_nothing(local):
    """fyrd 0.6: get() on an unsubmitted job submits it; submit() "Returns: self" (a second call is a no-op)."""
    job = cc.Job("echo once")
    assert job.get() == "once\n"
    first_id = job.id
    assert job.submit() is job and job.id == first_id


def test_printing_a_job_shows_its_details(local):
    """"Printing the class will display detailed job information.\""""
    job = cc.submit("echo shown", name="printed", cores=1)
    job.wait()
    text = str(job)
    for fact in ("printed", "echo shown", "local", job.id, "completed", str(job.outfile), "cores=1"):
        assert fact in text


def test_a_job_gone_from_the_queue_is_complete_by_its_exit_file(local):
    """"If the job disappears from the queue with no information, it will be listed as 'complete'."
    Here it is listed as its own exit file says (completed, or failed with its code), read after the
    scheduler forgot it, never as complete without evidence."""
    ok, bad = cc.submit("true"), cc.submit("exit 4")
    cc.wait([ok, bad])
    import cluster_local
    cluster_local.purge(older_than=0, path=local)  # the scheduler forgets both
    again = [cc.Job.from_id(j.id) for j in (ok, bad)]
    assert [j.state for j in again] == [State.COMPLETED, State.FAILED]
    assert again[1].exitcode == 4


def test_jobs_have_a_submission_script_object(local):
    """"All jobs have a .submission attribute, which is a Script object containing the submission script for
    the job and the file name, plus a 'written' bool that checks if the file exists.\""""
    job = cc.Job("echo scripted")
    assert job.submission.written is False
    job.write()
    assert job.submission.written is True and job.submission.file == job.scriptfile
    assert "echo scripted" in job.submission.script


def test_job_clean_keeps_outputs_unless_asked_and_reads_them_first(local):
    """"clean(delete_outputs=False) Delete all scripts created by this module, if they were written. If
    delete_outputs is True, also delete the stdout and stderr files, but get their contents first.\""""
    job = cc.submit("echo out; echo err >&2")
    job.wait()
    job.clean()
    assert not job.submission.written and job.outfile.exists()
    job.clean(delete_outputs=True)
    assert not job.outfile.exists() and not job.errfile.exists()
    assert (job.stdout, job.stderr) == ("out\n", "err\n")


def test_get_exitcode_stdout_stderr(local):
    """"get_exitcode(update=True) Try to get the exitcode"; "get_stdout(update=True) Read stdout file if
    exists"; get_stderr likewise; "update() Update status from the queue"; "update_queue_info() Set
    queue_info from the queue even if done.\""""
    job = cc.submit("echo o; echo e >&2; exit 2")
    job.wait()
    assert job.update() is job
    assert (job.get_exitcode(), job.get_stdout(), job.get_stderr()) == (2, "o\n", "e\n")
    assert job.update_queue_info().state is State.FAILED


def test_submit_max_queue_len_and_write_overwrite(local):
    """"submit(max_queue_len=None) Submit this job ... Returns: self"; "write(overwrite=True) Write all
    scripts.\""""
    job = cc.Job("echo w")
    first = job.write()
    first.write_text(first.read_text().replace("echo w", "echo changed"))
    assert job.write(overwrite=False) == first and "echo changed" in first.read_text()
    job.write()
    assert "echo w" in first.read_text()
    assert job.submit(max_queue_len=10) is job and job.get() == "w\n"


def test_submit_blocks_while_the_queue_is_full(local):
    """submit "Max_queue_len: if specified (or in defaults), then this method will block until the queue is
    open enough to allow submission. To disable max_queue_len, set it to 0.\""""
    gate = local.parent / "gate"
    held = cc.submit(GATE.format(gate=gate))
    waiting = cc.Job("echo after")
    import threading
    submitter = threading.Thread(target=waiting.submit, kwargs={"max_queue_len": 1})
    submitter.start()
    submitter.join(timeout=3 * cc.get_backend("local").info.poll_interval)
    assert submitter.is_alive() and not waiting.submitted  # held back: one job is queued or running
    gate.touch()
    submitter.join(timeout=60)
    assert waiting.submitted and waiting.get() == "after\n" and held.wait()
    assert cc.Job("true").submit(max_queue_len=0).submitted


def test_submit_takes_name_path_qtype_profile_positionally(local, tmp_path):
    """"cluster.submit(command, args=None, name=None, path=None, qtype=None, profile=None, **kwargs)";
    "Qtype: 'torque', 'slurm', or 'normal'"; "Profile: The name of a profile saved in the config_file";
    "Returns: Job object". Path is where the job runs (fyrd 0.6: path is runpath)."""
    where = tmp_path / "there"
    where.mkdir()
    cc.set_profile("tiny", {"cores": 1, "time": "5m"})
    job = cc.submit("pwd", None, "seedjob", str(where), "normal", "tiny")
    assert job.name == "seedjob" and job.backend.name == "local"
    assert job.options["time"] == 300 and job.get() == f"{where}\n"
    fyrd_style = cc.submit(square, (4,), None, "fyrdjob", "local", "tiny")
    assert fyrd_style.name == "fyrdjob" and fyrd_style.get() == 16


# --- Options ----------------------------------------------------------------------------------------

@pytest.mark.plugins  # option_help("local") checks that the backend is installed
def test_option_help_as_string_or_table(capsys):
    """"option_help(), which can display all of the keyword arguments as a string or a table";
    "option_help(qtype=None, mode='string')", "print: Print the string to stdout table: Return a table\""""
    text = cc.option_help()
    assert "cores" in text and "walltime" in text
    table = cc.option_help(mode="table")
    assert {"cores", "mem", "clean_files", "imports"} <= {row["name"] for row in table}
    assert cc.option_help("local", "print") is None and "cores" in capsys.readouterr().out


def test_check_arguments_allows_defined_keywords_and_sanitizes():
    """"check_arguments() checks a dictionary to make sure that the arguments are allowed (i.e. definied)";
    "Raises Exception on error, returns sanitized dictionary on success"; "memory is converted into an
    integer of MB\""""
    assert cc.check_arguments({"cores": "4", "mem": "4GB", "queue": "short"}) == \
        {"cores": 4, "mem": 4096, "partition": "short"}
    with pytest.raises(OptionError, match="corse.*did you mean 'cores'"):
        cc.check_arguments({"corse": 1})


@pytest.mark.parametrize("text,mb", [("4000b", 1), ("8388608B", 8), ("2048KB", 2), ("2048kb", 2), ("500MB", 500),
                                     ("500m", 500), ("4GB", 4096), ("4g", 4096), ("1TB", 1048576), ("1t", 1048576)])
def test_memory_suffixes_each_mean_what_they_say(text, mb):
    """Memory "in MB (e.g. 4000)" or with a suffix, bytes to TB in either case, each meaning what it says."""
    assert cc.check_arguments({"mem": text})["mem"] == mb


def test_every_fyrd_keyword_and_synonym_is_accepted():
    """fyrd 0.6's options table: every keyword and synonym is a keyword here too."""
    fyrd = {"depends": 1, "clean_files": True, "clean_outputs": True, "cores": 2, "modules": "gcc",
            "syspaths": "/tmp", "scriptpath": "/tmp", "outpath": "/tmp", "runpath": "/tmp", "suffix": "run",
            "outfile": "o.txt", "errfile": "e.txt", "imports": "os", "threads": 2, "nodes": 1, "features": "a",
            "time": "01:00:00", "mem": 4000, "partition": "p", "account": "a", "export": "PATH", "begin": "now",
            "qos": "normal", "tasks": 1, "tasks_per_node": 1}
    synonyms = {"depend": "depends", "dependency": "depends", "dependencies": "depends", "stdout": "outfile",
                "stderr": "errfile", "queue": "partition", "memory": "mem", "cpus": "cores", "walltime": "time",
                "delete_files": "clean_files", "delete_outputs": "clean_outputs", "filedir": "jobdir",
                "filepath": "jobdir", "dir": "workdir", "path": "workdir", "paths": "syspaths",
                "syspath": "syspaths", "scriptdir": "jobdir", "cleanfiles": "clean_files", "delfiles": "clean_files",
                "cleanouts": "clean_outputs", "delouts": "clean_outputs", "deloutputs": "clean_outputs",
                "cleanoutputs": "clean_outputs", "scriptpath": "jobdir", "runpath": "workdir"}
    assert len(cc.check_arguments(fyrd)) == len(fyrd)
    for synonym, keyword in synonyms.items():
        assert cc.options.canonical_name(synonym) == keyword, synonym


def test_option_to_string_for_the_current_mode(local):
    """"option_to_string() will take an option/value pair and return an appropriate string that can be used
    in the current queue mode. If the option is not implemented in the current mode, a debug message is
    printed to the console and an empty string is returned"; options_to_string "Return a multi-line string"."""
    assert cc.option_to_string("cores", 2, qtype="local") == ""  # the local runner reads options directly
    slurm = cc.options_to_string({"cores": 2, "time": "1h", "partition": "short"}, qtype="slurm")
    assert slurm.splitlines() == ["#SBATCH --cpus-per-task=2", "#SBATCH --time=01:00:00",
                                  "#SBATCH --partition=short"] or all(
        line.startswith("#SBATCH ") for line in slurm.splitlines())
    assert len(slurm.splitlines()) == 3


# --- fyrd keywords with behaviour -------------------------------------------------------------------

def test_clean_files_and_clean_outputs_after_get(local):
    """fyrd: clean_files "Auto clean script files when fetching outputs", clean_outputs "Auto clean output
    files when fetching outputs"."""
    job = cc.submit(square, (5,), clean_files=True, clean_outputs=True)
    assert job.get() == 25
    assert not job.submission.written and not job.files.pickle_out.exists() and not job.outfile.exists()
    assert job.get() == 25 and job.stdout == ""
    kept = cc.submit("echo kept", delete_files=True)
    assert kept.get() == "kept\n" and not kept.submission.written and kept.outfile.exists()


def loads_with_imports():
    return path.basename("/a/b"), np_like.__name__  # noqa: F821 - given by the imports keyword


def test_imports_and_syspaths_for_function_jobs(local, tmp_path):
    """fyrd: imports "Imports to be used in function calls (e.g. sys, os)"; syspaths "Paths to add to
    sys.path for submitted functions"."""
    lib = tmp_path / "mylib"
    lib.mkdir()
    (lib / "np_like.py").write_text("VALUE = 42\n")
    job = cc.submit(loads_with_imports, imports=["from os import path", "np_like"], syspaths=[str(lib)])
    assert job.get() == ("b", "np_like")
    with pytest.raises(OptionError, match="imports=.*not an import statement"):
        cc.submit(square, (1,), imports="os; rm -rf /")


def test_scriptpath_outpath_suffix(local, tmp_path):
    """fyrd: scriptpath "Folder to write cluster script files to", outpath "Folder to write cluster output
    files to", suffix "A suffix to append to job files (e.g. job.suffix.qsub)"."""
    job = cc.submit("echo placed", scriptpath=str(tmp_path / "scripts"), outpath=str(tmp_path / "outs"),
                    suffix="run7")
    assert job.get() == "placed\n"
    assert job.scriptfile.parent == tmp_path / "scripts" and ".run7.sh" in job.scriptfile.name
    assert job.outfile.parent == tmp_path / "outs" and job.outfile.read_text() == "placed\n"
    found = cc.Job.from_id(job.id)
    assert found.files.suffix == "run7" and found.get() == "placed\n"


# --- Config file ------------------------------------------------------------------------------------

def test_profiles_are_keywords_used_by_any_submission(local):
    """"Profiles are combinations of keyword arguments that can be called in any of the submission
    functions"; "Profiles can then be called with the profile= keyword in any submission function or Job
    class.\""""
    cc.set_profile("two", {"cores": 2, "name": "profiled"})
    assert cc.submit("echo p", profile="two").name == "profiled"
    assert cc.Job("echo q", profile="two").options["cores"] == 2
    assert cc.make_job("echo r", profile="two").options["cores"] == 2


def test_profile_attribute_access_write_and_typed_values(local):
    """"Profiles are wrapped in a Profile() class to make attribute access easy, but they are fundamentally
    just dictionaries of keyword arguments. They can be created with cluster.config_file.Profile({kewywds})
    and then written to a file with that class' write() method.\""""
    cf = cc.config_file
    profile = cf.Profile("big", {"cores": 2, "mem": "16G", "time": "2h"})
    profile.write()
    got = cf.get_profile("big")
    assert (got.cores, got.mem, got.memory, got.time) == (2, 16384, 16384, 7200)  # checked and typed
    assert got.kwds == {"cores": 2, "mem": 16384, "time": 7200}
    got.cores = "4"
    got.write()
    assert cf.get_profile("big").cores == 4
    with pytest.raises(OptionError):
        got.mem = "lots"
    with pytest.raises(AttributeError, match="did you mean"):
        got.coers


def test_get_profile_and_set_profile(local):
    """"The easiest way to interact with profiles is with the get_profile() and set_profile() functions";
    "get_profile(profile=None) Return a profile if it exists, if None, return all profiles.\""""
    cc.config_file.set_profile("a", {"cores": 1})
    cc.config_file.set_profile("b", {"cores": 2})
    assert set(cc.config_file.get_profile()) == {"a", "b"}
    assert cc.config_file.get_profile("b").cores == 2
    assert cc.config_file.get_profile("missing") is None


def test_config_get_set_delete(local):
    """"The config file also contains other options that can be managed with the get() and set() functions";
    get "Default: If the key does not exist, create it with this default value. Returns: None if key does
    not exist"; "delete(section, key=None) ... If key is not provided deletes whole section"; get_config()."""
    cf = cc.config_file
    assert cf.get("local", "threads") is None
    assert cf.get("local", "threads", 3) == "3" and cf.get("local", "threads") == "3"
    cf.set("local", "memory", "2G")
    assert cf.get("local") == {"threads": "3", "memory": "2G"} and cf.get_config()["local"]["memory"] == "2G"
    cf.delete("local", "threads")
    assert cf.get("local") == {"memory": "2G"}
    cf.delete("local")
    assert "local" not in cf.get_config()


def test_get_option_in_fyrds_section_key_form(local):
    """fyrd 0.6: conf.get_option(section, key): a fyrd setting maps to ours, or is a clear error."""
    cc.set_option("queue", "queue_type", "local")
    assert cc.get_option("queue", "queue_type") == "local" == cc.get_option("core.backend")
    cc.set_option("jobs", "suffix", "mine")
    assert cc.get_option("jobs", "suffix") == "mine" and cc.get_profile("default").suffix == "mine"
    assert cc.submit("true").files.suffix == "mine"
    with pytest.raises(cc.ConfigError, match="jobs.profile_file.*no counterpart"):
        cc.get_option("jobs", "profile_file")
    with pytest.raises(cc.ConfigError, match="did you mean core.backend"):
        cc.get_option("core.bakend")


# --- the local queue --------------------------------------------------------------------------------

def test_local_runner_backfills_smaller_jobs(local):
    """"keeps the total running cores below the total allowed (default is the system max, can be set with
    the threads keyword). It backfills smaller jobs and holds on to larger jobs until there is enough space
    free.\""""
    gate = local.parent / "gate"
    blocker = cc.submit(GATE.format(gate=gate), cores=1, threads=2)
    big = cc.submit("true", cores=2, threads=2)
    small = cc.submit("true", cores=1, threads=2)
    assert small.wait(timeout=60) is True  # ran beside the blocker while the two-core job waited
    assert big.state is State.PENDING
    gate.touch()
    assert cc.wait([blocker, big]) is True
    assert big.record.start_time >= blocker.record.end_time


def test_local_jobs_with_dependencies_and_several_cores(local):
    """"I need dependency tracking and I need to allow some processes to run on multiple cores (e.g. 6 of
    the available 24 on the machine).\""""
    first = cc.submit("echo 1 > one.txt", cores=2)
    second = cc.submit("cat one.txt", depends=first, cores=1)
    assert second.get() == "1\n" and first.record.cores == 2


# --- Logme ------------------------------------------------------------------------------------------

@pytest.fixture
def logme_restored():
    from cluster_core import logme
    logger = logging.getLogger("cluster_core")
    before = (list(logger.handlers), logger.level, logger.propagate, logme._handler)
    yield logme
    logger.handlers[:], logger.level, logger.propagate = before[0], before[1], before[2]
    logme._handler = before[3]


def test_logme_leveled_timestamped(logme_restored, capsys):
    """"syslog style leveled logging (e.g. 'debug'->'info'->'warn'->'error'->'critical') and it implements
    colors and timestamped messages"; log "Level: ... Will only print if level > MIN_LEVEL\""""
    logme = logme_restored
    logme.MIN_LEVEL = "info"
    logme.log("hidden", "debug")
    logme.log("shown", "warn")
    logme.error("bad")
    err = capsys.readouterr().err
    assert "hidden" not in err
    assert " WARNING --> shown" in err and " ERROR --> bad" in err
    assert err.split()[0].isdigit()  # the timestamp leads


def test_logme_min_level_at_runtime():
    """"The minimum print level can be set module wide at runtime by changing cluster.logme.MIN_LEVEL":
    for logme.log and for the library's own messages, in a program that set up no logging of its own."""
    code = """if True:
        import logging, cluster_core
        lib = logging.getLogger("cluster_core.job")
        cluster_core.logme.debug("hidden one")
        cluster_core.logme.MIN_LEVEL = "debug"
        print(cluster_core.logme.MIN_LEVEL)
        cluster_core.logme.debug("now shown")
        lib.debug("library detail")
        cluster_core.logme.MIN_LEVEL = "error"
        cluster_core.logme.warn("quiet")
        lib.warning("quiet too")
        lib.error("loud")
    """
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout == "debug\n"
    assert "now shown" in proc.stderr and "library detail" in proc.stderr and "loud" in proc.stderr
    assert "hidden" not in proc.stderr and "quiet" not in proc.stderr


def test_logme_log_targets(logme_restored, tmp_path, capsys, caplog):
    """log "Logfile: Optional file to log to, defaults to STDERR. Can provide a logging object"; "Also_write:
    'stdout': print to STDOUT also"; "Min_level: Retained for backwards compatibility"; "Kind: synonym for
    level\""""
    logme = logme_restored
    path = tmp_path / "log.txt"
    logme.log("to file", logfile=str(path), also_write="stdout")
    assert "INFO --> to file" in path.read_text() and "to file" in capsys.readouterr().out
    logme.log("quiet", kind="debug", min_level="info")
    logme.log("loud", kind="debug", min_level="debug")
    assert capsys.readouterr().err.count("-->") == 1
    logger = logging.getLogger("user.app")
    with caplog.at_level(logging.INFO, logger="user.app"):
        logme.log("to logger", "error", logfile=logger)
    assert caplog.records[-1].message == "to logger" and caplog.records[-1].levelno == logging.ERROR


# --- run.py -----------------------------------------------------------------------------------------

def test_run_cmd_which_open_zipped_split_file(tmp_path):
    """"cluster.run.cmd(command, args=None, stdout=None, stderr=None, tries=1) Run command and return status,
    output, stderr"; "cluster.run.which(program) Replicate the UNIX which command"; "open_zipped(infile,
    mode='r') Open a regular, gzipped, or bz2 file"; "split_file(infile, parts, outpath='', keep_header=True)
    Split a file in parts parts and return a list of paths.\""""
    run = importlib.import_module("cluster_core.run")
    code, out, err = run.cmd("echo", ("a", "b"))
    assert (code, out.strip(), err) == (0, "a b", "")
    assert run.which("sh") and run.which("no-such-program-here") is None
    data = tmp_path / "data.txt.gz"
    with gzip.open(data, "wt") as fh:
        fh.write("head\n" + "".join(f"{i}\n" for i in range(10)))
    with run.open_zipped(str(data)) as fh:
        assert fh.readline() == "head\n"
    parts = run.split_file(str(data), 3, outpath=str(tmp_path), keep_header=True)
    assert len(parts) == 3
    texts = [run.open_zipped(p).read().splitlines() for p in parts]
    assert all(t[0] == "head" for t in texts)
    assert sorted(int(x) for t in texts for x in t[1:]) == list(range(10))


def test_module_wait_and_get_submit_unsubmitted_jobs_first(local):
    """fyrd 0.6 submits a job that is waited for or read before it was submitted (its auto_submit)."""
    jobs = [cc.Job(square, (6,)), cc.Job("echo late")]
    assert cc.get(jobs) == [36, "late\n"] and all(j.submitted for j in jobs)
    another = cc.Job("true")
    assert cc.wait(another) is True and another.submitted


# --- fyrd 0.6's other public names ------------------------------------------------------------------

def test_fyrd_module_and_function_names(local):
    """fyrd 0.6's __all__: conf, get_profiles and check_queue are here too."""
    assert cc.conf.get_profile is cc.config_file.get_profile
    cc.conf.set_profile("DEFAULT", {"cores": 1})  # fyrd's every-job profile is our "default"
    assert cc.get_profile("default").cores == 1 and set(cc.get_profiles()) == {"default"}
    assert cc.get_profiles(["DEFAULT"])["default"].cores == 1
    with pytest.raises(cc.ConfigError, match="no such profile"):
        cc.get_profile("nope", allow_none=False)
    assert cc.check_queue() is True and cc.check_queue("local") is True
    with pytest.raises(cc.BackendError):
        cc.check_queue("no-such-backend")
    assert cc.get_option() == cc.config.options()
    profile = cc.get_profile("default")
    assert profile.args == {"cores": 1} and len(profile) == 1


def test_fyrd_job_names(local):
    """fyrd 0.6's Job: kill, code, err, running, kind, suffix, poutfile, outfiles, dependencies, get_keywords,
    get_output, and its get(cleanup=, delete_outfiles=, raise_on_error=) and submit(max_jobs=,
    additional_keywords=) keywords."""
    first = cc.Job(square, (3,))
    assert first.wait() is True and first.submitted  # fyrd: wait() submits first
    job = cc.Job("echo fy; echo err >&2; exit 1", depends=first)
    job.submit(max_jobs=100, wait_on_max_queue=False, additional_keywords={"cores": 1})
    assert job.get(raise_on_error=False) is None
    assert (job.code, job.err, job.kind, job.running, job.suffix) == (1, "err\n", "script", False, "cluster")
    assert job.outfiles == [job.outfile, job.errfile] and job.dependencies == [first]
    assert job.get_keywords()["cores"] == 1 and first.poutfile == first.files.pickle_out
    with pytest.raises(cc.JobFailedError):
        job.get()
    assert first.get_output(cleanup=True, delete_outfiles=True) == 9
    assert not first.submission.exists and not first.outfile.exists()
    sleeper = cc.submit(GATE.format(gate=local.parent / "never"))
    wait_for_state(sleeper, {State.RUNNING})
    assert sleeper.running
    sleeper.kill()
    assert sleeper.wait() is False and sleeper.state is State.CANCELLED


def test_fyrd_option_names(local, caplog):
    """fyrd 0.6's options: option_help(mode) first, OptionsError, split_keywords; threads on a backend that
    ignores it is a warning that names it."""
    assert "cores" in cc.option_help("list") and isinstance(cc.option_help("table"), list)
    assert cc.options.OptionsError is OptionError
    good, other = cc.options.split_keywords({"cores": "2", "colour": "red"})
    assert good == {"cores": 2} and other == {"colour": "red"}
    cc.options._warned.clear()  # once per process and keyword: earlier tests may have been warned
    with caplog.at_level(logging.WARNING, logger="cluster_core"):
        cc.options_to_string({"threads": 4, "cores": 2}, qtype="slurm")
    assert any("threads=4" in r.message and "give cores=" in r.message for r in caplog.records)


# --- fyrd's documented examples, with only the import changed ---------------------------------------

FYRD_SCRIPT = '''
import os
import cluster_core as fyrd  # the only change: was "import fyrd"


def raise_me(something, power=2):
    return something**power


def parser_function(value):
    return value + 1


@fyrd.jobify(name='test_job', mem='1GB')
def test(string, iterations=4):
    """This does basically nothing!"""
    outstring = ""
    for i in range(iterations):
        outstring += "Version {0}: {1}".format(i, string)
    return outstring


if __name__ == '__main__':
    # Simple Job Submission
    job = fyrd.submit('echo one')
    job2 = fyrd.submit('echo two', depends=job)
    out1, out2 = fyrd.get([job, job2])
    job = fyrd.Job('echo three')
    job.submit()
    job3 = fyrd.Job('echo four', depends=job).submit()
    out3 = job3.get()
    # Functions
    outs = []
    for i in range(8):
        outs.append(fyrd.submit(raise_me, (i,), {'power': 4}, mem='10MB', time='00:00:30'))
    final_sum = 0
    for i in outs:
        final_sum += i.get()
    # Using the Jobify Decorator
    j = test('hi')
    jobified = j.get()
    # File Submission
    os.makedirs('jobs', exist_ok=True)
    with open('jobs/a.sh', 'w') as fh:
        fh.write('#!/bin/bash\\necho from a file\\n')
    jobs = [fyrd.submit_file(os.path.join('jobs', i), dependencies=[job3.id]) for i in os.listdir('jobs')]
    fyrd.wait(jobs)
    # Keywords
    out = []
    for i in [1, 2]:
        out.append(fyrd.submit(parser_function, i, cores=1, mem='1GB', partition='small'))
    keyworded = [o.get() for o in out]
    big = fyrd.Job(raise_me, (3,), cores=1, mem=12000, queue='high_mem').submit().get()
    # Profiles
    # the docs' mem=32000: the local backend books memory and refuses more than the machine has (24 GiB here)
    fyrd.set_profile('large', {'cores': 1, 'nodes': 1, 'time': '24:00:00', 'mem': 8000})
    profiled = fyrd.Job(raise_me, (5,), profile='large').submit().get()
    print(repr([out1, out2, out3, final_sum, jobified, jobs[0].get(), keyworded, big, profiled]))
    fyrd.clean_dir()
'''


def test_fyrds_documented_examples_run_with_only_the_import_changed(local, tmp_path):
    """fyrd 0.6's "Getting Started" examples (submission, dependencies, functions, jobify, file submission,
    keywords, profiles), as one script whose only change is ``import cluster_core as fyrd``."""
    (tmp_path / "fyrd_example.py").write_text(FYRD_SCRIPT)
    proc = subprocess.run([sys.executable, "fyrd_example.py"], capture_output=True, text=True, timeout=300,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    expected = ["one\n", "two\n", "four\n", sum(i ** 4 for i in range(8)),
                "Version 0: hiVersion 1: hiVersion 2: hiVersion 3: hi", "from a file\n", [2, 3], 9, 25]
    assert proc.stdout.strip() == repr(expected)
    assert not [p for p in (tmp_path / "cluster_jobs").iterdir()]  # clean_dir() removed every job file


def test_fyrds_positional_flags_are_not_timeouts(local):
    """fyrd's wait(jobs, notify), Job.get(save), Queue.wait(jobs, return_disp) and Job.submit(wait_on_max_queue)
    take a flag where cluster-core takes a timeout or a queue length: a bool there is fyrd's flag."""
    gate = local.parent / "gate"
    job = cc.Job(GATE.format(gate=gate)).submit(True)  # fyrd: wait_on_max_queue, never max_queue_len=1
    assert job.submitted
    waiter = cc.submit("echo done", depends=job)
    gate.touch()
    assert cc.wait([job, waiter], False) is True  # fyrd: notify=False, not a timeout of 0 s
    assert waiter.get(True) == "done\n" and cc.Queue(qtype="local").wait(waiter, True) is True
    assert cc.option_help("table", "local") == cc.option_help("local", "table")  # fyrd's order and ours
