"""Job ids in every form, and telling Torque from PBS Pro by ``qstat --version``."""

from __future__ import annotations

import pytest

from cluster_core.errors import ConfigError
from cluster_torque import dialect, ids
from torque_testlib import fixture


# --- ids ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, seq, index, server, parent, subjob, task", [
    ("3.vm", "3", None, "vm", False, False, None),                       # Torque and OpenPBS here
    ("123", "123", None, None, False, False, None),                      # bare number (aiida's Torque)
    ("123.server.domain", "123", None, "server.domain", False, False, None),
    ("665199.superserver.stanford.edu", "665199", None, "superserver.stanford.edu", False, False, None),
    ("1[].vm", "1", "", "vm", True, False, None),                        # qsub -t / -J output
    ("1[2].vm", "1", "2", "vm", False, True, 2),
    ("673175[19].fruster.stanford.edu", "673175", "19", "fruster.stanford.edu", False, True, 19),
    ("9[]", "9", "", None, True, False, None),
    ("80005196.gadi-pbs", "80005196", None, "gadi-pbs", False, False, None),
    ("0.725ccdf1a5fb", "0", None, "725ccdf1a5fb", False, False, None),   # docker container id as server
    ("16376372.opt-batch.osc.edu:15001", "16376372", None, "opt-batch.osc.edu:15001", False, False, None),
    ("6059780.pbsserver@pbsserver", "6059780", None, "pbsserver", False, False, None),  # depend list form
    (" 12.vm\n", "12", None, "vm", False, False, None),
])
def test_parse_every_form(text, seq, index, server, parent, subjob, task):
    jid = ids.parse(text)
    assert (jid.seq, jid.index, jid.server) == (seq, index, server)
    assert jid.is_array_parent is parent
    assert jid.is_subjob is subjob
    assert jid.task_id == task


@pytest.mark.parametrize("text", ["", "vm", "abc.vm", "1[x].vm", "1[2", "1 2", "qsub: submit error",
                                  "Unknown Job Id 3.vm", "-1.vm"])
def test_not_an_id(text):
    with pytest.raises(ids.JobIdError):
        ids.parse(text)
    assert ids.try_parse(text) is None


def test_round_trip_and_parent():
    assert str(ids.parse("1[2].vm")) == "1[2].vm"
    assert str(ids.parse("1[2].vm").parent) == "1[].vm"
    assert str(ids.parse("1[].vm").subjob(3)) == "1[3].vm"
    assert str(ids.parse("7.vm").parent) == "7.vm"
    assert ids.parse("3.vm.example.org").short_server == "vm"


@pytest.mark.parametrize("a, b, same", [
    ("3", "3.vm", True),
    ("3.vm", "3.vm.example.org", True),                # short vs long server name
    ("3.VM", "3.vm", True),
    ("3.vm", "3.vm2", False),                          # not a dotted prefix
    ("3.vm", "4.vm", False),
    ("1[].vm", "1.vm", False),                         # the array is not the plain job 1
    ("1[2].vm", "1[2]", True),
    ("1[2].vm", "1[3].vm", False),
    ("16376372.opt-batch.osc.edu:15001", "16376372.opt-batch.osc.edu", True),
    ("22005.pbsserver", "22005.other", False),
])
def test_same_job(a, b, same):
    assert ids.parse(a).same_job(ids.parse(b)) is same
    assert ids.parse(b).same_job(ids.parse(a)) is same


def test_every_captured_qsub_output_is_an_id():
    torque = [line.split(": ", 1)[1] for line in fixture("torque/qsub_outputs.txt").splitlines()]
    assert torque[:2] == ["0.vm", "1[].vm"]
    openpbs = [line.split(" -> ")[1] for line in fixture("openpbs/qsub_outputs.txt").splitlines() if " -> " in line]
    master = [line.split()[1] for line in fixture("openpbs/master/qsub_outputs.txt").splitlines()[1:]]
    for text in torque + openpbs + master:
        assert ids.parse(text).server == "vm"
    assert ids.parse("1[].vm").is_array_parent and ids.parse(openpbs[3]).is_array_parent  # -t 0-3, -J 0-3


# --- dialect ------------------------------------------------------------------------------------------

def test_version_output_of_torque():
    flavour = dialect.from_version_output(fixture("torque/qstat_version.txt"))
    assert (flavour.dialect, flavour.version) == (dialect.TORQUE, "6.1.3")


def test_version_output_of_openpbs():
    flavour = dialect.from_version_output(fixture("openpbs/qstat_version.txt"))
    assert (flavour.dialect, flavour.version) == (dialect.PBSPRO, "23.06.06")
    # the capture script labelled the line: "qsub --version: pbs_version = 23.06.06" (master build)
    master = fixture("openpbs/master/qsub_outputs.txt").splitlines()[0].split(": ", 1)[1]
    assert dialect.from_version_output(master).version == "23.06.06"


def test_version_output_of_slurm_wrapper_and_others():
    # Slurm's qstat.pl has no --version: Getopt::Long says "Unknown option: version" and prints usage
    flavour = dialect.from_version_output("Unknown option: version\nUsage: qstat [-f] ...\n")
    assert flavour.dialect is None and "Slurm" in flavour.reason
    flavour = dialect.from_version_output("qstat: illegal option -- -\nusage: qstat [-a] ...\n")
    assert flavour.dialect is None and "neither Torque nor PBS" in flavour.reason


def test_version_output_of_grid_engine():
    # Debian 12's gridengine-client 8.1.9 answers `qstat --version` with its usage (exit 1)
    text = 'SGE 8.1.9\nusage: qstat [options]\n        [-ext]   view additional attributes\n' \
           'invalid option argument "--version"\n'
    flavour = dialect.from_version_output(text)
    assert flavour.dialect is None and "Grid Engine" in flavour.reason
    assert dialect.from_version_output("GE 2011.11p1\nusage: qstat [options]\n").dialect is None


def test_forced_by_env_and_config(monkeypatch, tmp_path):
    from cluster_core import config
    assert dialect.configured() is None
    config.set_option("torque.dialect", "OpenPBS")
    assert dialect.configured() == dialect.PBSPRO
    monkeypatch.setenv(dialect.ENV_DIALECT, "torque")       # the environment wins
    assert dialect.configured() == dialect.TORQUE
    monkeypatch.setenv(dialect.ENV_DIALECT, "auto")
    assert dialect.configured() == dialect.PBSPRO
    monkeypatch.setenv(dialect.ENV_DIALECT, "lsf")
    with pytest.raises(ConfigError, match="CLUSTER_TORQUE_DIALECT='lsf'"):
        dialect.configured()


def test_detection_runs_qstat_once_and_is_cached(shims):
    shims["qstat"].on(["--version"], stdout=fixture("torque/qstat_version.txt"))
    assert dialect.current() == dialect.TORQUE
    assert dialect.current() == dialect.TORQUE
    assert shims["qstat"].calls == [["--version"]]
    dialect.reset()
    assert dialect.detected().dialect == dialect.TORQUE
    assert len(shims["qstat"].calls) == 2


def test_detection_of_openpbs_and_fallback_without_qstat(shims, monkeypatch):
    shims["qstat"].on(["--version"], stdout=fixture("openpbs/qstat_version.txt"))
    assert dialect.current() == dialect.PBSPRO
    dialect.reset()
    monkeypatch.setenv("CLUSTER_QSTAT", "/nonexistent/qstat")
    assert dialect.detected().dialect is None
    assert dialect.current() == dialect.TORQUE  # writes Torque directives; logged at debug


def test_grid_engine_wrapper_is_recognised_by_its_script(tmp_path, monkeypatch):
    wrapper = tmp_path / "qstat"  # Debian's /usr/bin/qstat -> ../share/gridengine/gridengine-wrapper
    wrapper.write_text("#!/bin/sh\n\n# SGE Wrapper script to ensure correct environment variables are set\n"
                       "DEFAULT_SGE_ROOT=/var/lib/gridengine\nexec /usr/lib/gridengine/${PROG} \"$@\"\n")
    wrapper.chmod(0o755)
    monkeypatch.setenv("CLUSTER_QSTAT", str(wrapper))
    flavour = dialect.probe()
    assert flavour.dialect is None and "Grid Engine" in flavour.reason and str(wrapper) in flavour.reason
    assert "torque.bin_dir" in flavour.reason


def test_slurm_wrapper_is_recognised_by_its_script(tmp_path, monkeypatch):
    wrapper = tmp_path / "qstat"
    wrapper.write_text("#! /usr/bin/perl -w\n# qstat - queries slurm jobs in familar pbs format.\n")
    wrapper.chmod(0o755)
    monkeypatch.setenv("CLUSTER_QSTAT", str(wrapper))
    flavour = dialect.probe()
    assert flavour.dialect is None and "slurm-wlm-torque" in flavour.reason


def test_task_ids_both_ways():
    from cluster_torque import plugin
    assert plugin.task_id("12[].vm", 3) == "12[3].vm"
    assert plugin.task_id("12[]", 0) == "12[0]"
    assert plugin.parse_task_id("12[3].vm.example.org") == ("12[].vm.example.org", 3)
    for other in ("12.vm", "12[].vm", "nonsense"):
        assert plugin.parse_task_id(other) is None
