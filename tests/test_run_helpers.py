"""cluster_core.run, the seed's run.py helpers (cmd, which, open_zipped, split_file): real processes, real
files. The seed's API document: "Some other wrapper functions are defined in run.py, these are just
little useful knick-knacks"."""

import bz2
import gzip
import io
import lzma
import os
import shutil
import stat
import subprocess
import sys

import pytest

from cluster_core.errors import OptionError
from cluster_core.run import cmd, even_bounds, open_zipped, split_file, which

# --- cmd --------------------------------------------------------------------------------------------


def test_cmd_returns_status_output_and_stderr():
    """Seed: "Run command and return status, output, stderr. Command: Path to executable. Args: Tuple of
    arguments." The texts come back with trailing white space stripped, as the seed returned them."""
    assert cmd("echo", ("hello", "world")) == (0, "hello world", "")
    code, out, err = cmd("sh", ["-c", "echo out; echo err >&2; exit 3"])
    assert (code, out, err) == (3, "out", "err")


def test_cmd_arguments_are_words_never_shell_syntax(tmp_path):
    """No shell runs (the seed used one): a string is split as a shell would split it, quotes and all,
    and anything else in it, a pipe, a redirection, $HOME or a `;`, reaches the program as a plain word."""
    assert cmd("printf '%s|' 'a b' c") == (0, "a b|c|", "")
    assert cmd("echo a | cat > x; $HOME") == (0, "a | cat > x; $HOME", "")
    assert not (tmp_path / "x").exists() and not os.path.exists("x")
    assert cmd(["printf", "%s|", "$(id)", "`id`"]) == (0, "$(id)|`id`|", "")
    assert cmd("echo", (1, 2.5, None)) == (0, "1 2.5 None", "")
    assert cmd("echo", "one argument") == (0, "one argument", "")
    assert cmd("bash", ["-c", "echo a b | tr ' ' -"]) == (0, "a-b", "")  # shell syntax, asked for explicitly


def test_cmd_missing_program_answers_like_a_shell(tmp_path):
    """A program that is not there gives exit code 127 and "<name>: command not found", as a shell
    reports it, so callers that check the status keep working; a file that is not executable, 126."""
    assert cmd("no-such-program-cc13", ("x",)) == (127, "", "no-such-program-cc13: command not found")
    script = tmp_path / "not-executable.sh"
    script.write_text("echo hi\n")
    code, out, err = cmd(str(script))
    assert code == 126 and out == "" and err.startswith(f"{script}: ")


def test_cmd_writes_stdout_and_stderr_to_files_and_open_files(tmp_path):
    """Seed: "Stdout/Stderr: File or open file like object to write STDOUT/STDERR to." A path ending in
    .gz is written compressed; an open file is written to and left open for its owner."""
    handle = io.StringIO()
    code, out, err = cmd("sh", ["-c", "printf 'line 1\\nline 2\\n'; printf 'oops\\n' >&2"],
                         stdout=tmp_path / "out.txt.gz", stderr=handle)
    assert (code, out, err) == (0, "line 1\nline 2", "oops")
    assert gzip.open(tmp_path / "out.txt.gz", "rt").read() == "line 1\nline 2\n"  # whole, not stripped
    assert not handle.closed and handle.getvalue() == "oops\n"
    with pytest.raises(OptionError, match="stdout=.*cannot write") as err:
        cmd("true", stdout=tmp_path / "no-such-dir" / "out")
    assert err.value.keyword == "stdout"


def test_cmd_tries_again_while_the_exit_code_is_not_zero(tmp_path):
    """Seed: "Tries: Int: Number of times to try to execute 1+". A command that fails twice, then
    succeeds: three tries are enough, two are not (the count file shows how often it really ran)."""
    counter = tmp_path / "count"
    flaky = ["sh", "-c", 'n=$(($(cat "$0" 2>/dev/null || echo 0) + 1)); echo $n > "$0"; echo "run $n"; [ $n -ge 3 ]',
             str(counter)]
    assert cmd(flaky, tries=2, delay=0) == (1, "run 2", "")
    assert counter.read_text() == "2\n"
    counter.unlink()
    assert cmd(flaky, tries=3, delay=0) == (0, "run 3", "")
    assert counter.read_text() == "3\n"
    assert cmd("no-such-program-cc13", tries=5, delay=0)[0] == 127  # not found: not tried again


@pytest.mark.parametrize("tries", [0, -1, "two", 1.5, True, None])
def test_cmd_tries_below_one_is_an_option_error(tries):
    """Seed: "Tries: Int: Number of times to try to execute 1+"; anything else names `tries`."""
    with pytest.raises(OptionError, match="tries=") as err:
        cmd("true", tries=tries)
    assert err.value.keyword == "tries"


def test_cmd_empty_or_unsplittable_commands_are_option_errors():
    for command in ("", "   ", [], "echo 'unclosed"):
        with pytest.raises(OptionError) as err:
            cmd(command)
        assert err.value.keyword == "command"
    with pytest.raises(OptionError, match="args must be a list or tuple") as err:
        cmd("echo", {"a": 1})
    assert err.value.keyword == "args"


# --- which ------------------------------------------------------------------------------------------


def test_which_finds_programs_on_path_and_by_path(tmp_path, monkeypatch):
    """Seed: "Replicate the UNIX which command ... Returns: Path to the program or None on failure." """
    assert which("sh") == os.path.abspath(shutil.which("sh"))
    assert which("no-such-program-cc13") is None and which("") is None
    tool = tmp_path / "tool"
    tool.write_text("#!/bin/sh\n")
    assert which(tool) is None  # not executable
    tool.chmod(tool.stat().st_mode | stat.S_IXUSR)
    monkeypatch.chdir(tmp_path)
    assert which("./tool") == str(tool)  # a relative path comes back absolute
    monkeypatch.setenv("PATH", str(tmp_path))
    assert which("tool") == str(tool)


# --- open_zipped ------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix, module", [("", None), (".gz", gzip), (".bz2", bz2), (".xz", lzma)])
def test_open_zipped_writes_and_reads_by_the_file_name(tmp_path, suffix, module):
    """Seed: "Open a regular, gzipped, or bz2 file. Returns text mode file handle." (.xz too). What is
    written compressed is read back by the compression module itself."""
    path = tmp_path / f"data.txt{suffix}"
    with open_zipped(path, "w") as handle:
        handle.write("α line\nsecond\n")
    raw = path.read_bytes()
    if module is None:
        assert raw == "α line\nsecond\n".encode()
    else:
        assert module.decompress(raw).decode() == "α line\nsecond\n"
    with open_zipped(str(path)) as handle:
        assert handle.read() == "α line\nsecond\n"
    with open_zipped(path, "rb") as handle:  # only the mode's first letter counts: still text
        assert handle.readline() == "α line\n"
    with open_zipped(path, "a") as handle:
        handle.write("third\n")
    assert open_zipped(path).read().splitlines() == ["α line", "second", "third"]


def test_open_zipped_returns_an_open_file_unchanged_and_refuses_the_rest(tmp_path):
    """Seed: "If infile is a file handle or text device, it is returned without changes." """
    handle = io.StringIO("x")
    assert open_zipped(handle) is handle
    with open(tmp_path / "f", "w") as real:
        assert open_zipped(real, "r") is real
    with pytest.raises(OptionError, match="expected a path or an open file, not int"):
        open_zipped(42)
    with pytest.raises(OptionError, match="mode='q'") as err:
        open_zipped(tmp_path / "f", "q")
    assert err.value.keyword == "mode"


# --- split_file -------------------------------------------------------------------------------------


def write_lines(path, count, header=True):
    lines = (["name\tvalue\n"] if header else []) + [f"row{i}\t{i}\n" for i in range(count)]
    with open_zipped(str(path), "w") as handle:
        handle.writelines(lines)
    return lines


def read(path):
    with open_zipped(path) as handle:
        return handle.readlines()


def test_split_file_repeats_the_header_and_splits_evenly(tmp_path):
    """Seed: "Split a file in parts parts and return a list of paths ... keep_header: Add the header line
    to the top of every file." 10 rows in 3 parts are 4, 3 and 3, none lost, in order."""
    lines = write_lines(tmp_path / "table.tsv", 10)
    parts = split_file(tmp_path / "table.tsv", 3, outpath=tmp_path / "parts")
    assert parts == [str(tmp_path / "parts" / f"table.tsv.split_000{i}.tsv") for i in (1, 2, 3)]
    contents = [read(p) for p in parts]
    assert [len(c) - 1 for c in contents] == [4, 3, 3]
    assert all(c[0] == lines[0] for c in contents)
    assert [line for c in contents for line in c[1:]] == lines[1:]


def test_split_file_without_header_and_default_outpath(tmp_path, monkeypatch):
    """Seed: "outpath: The directory to save the split files" (default: here); without keep_header every
    line is data."""
    monkeypatch.chdir(tmp_path)
    lines = write_lines(tmp_path / "plain", 11, header=False)
    parts = split_file("plain", 4, keep_header=False)
    assert parts == [f"plain.split_000{i}" for i in (1, 2, 3, 4)]  # no extension to keep
    assert [len(read(p)) for p in parts] == [3, 3, 3, 2]
    assert [line for p in parts for line in read(p)] == lines


def test_split_file_keeps_compression_and_bytes(tmp_path):
    """fyrd's test reads the parts of a .gz file with open_zipped: parts are compressed as the input is.
    Lines are copied byte for byte: CRLF ends, bytes that are not UTF-8, a last line without newline."""
    data = b"head\r\n" + b"".join(b"r%d\xff\r\n" % i for i in range(5)) + b"last-no-newline"
    with gzip.open(tmp_path / "x.txt.gz", "wb") as handle:
        handle.write(data)
    parts = split_file(str(tmp_path / "x.txt.gz"), 2, outpath=str(tmp_path))
    assert [os.path.basename(p) for p in parts] == ["x.txt.gz.split_0001.gz", "x.txt.gz.split_0002.gz"]
    chunks = [gzip.open(p, "rb").read() for p in parts]
    assert chunks[0] == b"head\r\n" + b"r0\xff\r\nr1\xff\r\nr2\xff\r\n"
    assert chunks[1] == b"head\r\n" + b"r3\xff\r\nr4\xff\r\nlast-no-newline"


def test_split_file_with_fewer_lines_than_parts_writes_no_empty_part(tmp_path):
    """Fewer lines than parts: one part per line; a file with no data lines gives one part (its header)."""
    write_lines(tmp_path / "small.tsv", 2)
    parts = split_file(tmp_path / "small.tsv", 5, outpath=tmp_path / "a")
    assert [len(read(p)) for p in parts] == [2, 2]
    write_lines(tmp_path / "empty.tsv", 0)
    [only] = split_file(tmp_path / "empty.tsv", 3, outpath=tmp_path / "b")
    assert read(only) == ["name\tvalue\n"]
    (tmp_path / "nothing").write_bytes(b"")
    [only] = split_file(tmp_path / "nothing", 2, outpath=tmp_path / "c", keep_header=False)
    assert os.path.getsize(only) == 0


def test_split_file_names_parts_for_many_parts(tmp_path):
    write_lines(tmp_path / "many.csv", 12000, header=False)
    parts = split_file(tmp_path / "many.csv", 10001, outpath=tmp_path / "p", keep_header=False)
    assert len(parts) == 10001 and parts[0].endswith("many.csv.split_00001.csv")
    assert parts[-1].endswith("many.csv.split_10001.csv")


@pytest.mark.parametrize("parts", [0, -2, 1.5, "3", True])
def test_split_file_bad_parts_or_missing_file_are_option_errors(tmp_path, parts):
    write_lines(tmp_path / "t.tsv", 3)
    with pytest.raises(OptionError, match="parts=") as err:
        split_file(tmp_path / "t.tsv", parts)
    assert err.value.keyword == "parts"
    with pytest.raises(OptionError, match="cannot read it") as err:
        split_file(tmp_path / "missing.tsv", 2)
    assert err.value.keyword == "infile"


def test_even_bounds_follows_numpy_array_split():
    """numpy.array_split: sizes differ by at most one, the longer chunks first; empty ones dropped."""
    assert list(even_bounds(10, 3)) == [(0, 4), (4, 7), (7, 10)]
    assert list(even_bounds(2, 4)) == [(0, 1), (1, 2)]
    assert list(even_bounds(0, 3)) == []


def test_importing_run_and_helpers_stays_cheap():
    """Import stays cheap: neither module loads pandas, numpy or the job machinery (stdlib only)."""
    code = ("import sys, cluster_core.run, cluster_core.helpers; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pandas', 'numpy', 'cloudpickle') "
            "or m in ('cluster_core.job', 'cluster_core.plugins', 'cluster_core.options')))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "[]"
