import pytest

from cluster_core import OptionError, check_arguments, option_help
from cluster_core.options import OPTIONS, format_time, get_spec, parse_memory, parse_time


@pytest.mark.parametrize("value,mb", [
    (4096, 4096), (1.5, 2), ("500", 500), ("500M", 500), ("500MB", 500), ("500MiB", 500), ("500m", 500),
    ("4G", 4096), ("4GB", 4096), ("4GiB", 4096), ("4 gb", 4096), ("1.5T", 1572864), ("1.5TB", 1572864),
    ("512K", 1), ("2048KB", 2), ("1P", 1024 ** 3), (".5G", 512), ("0.5g", 512),
])
def test_memory_units(value, mb):
    assert parse_memory(value) == mb


@pytest.mark.parametrize("value", ["lots", "4X", "-1G", "0", "", "G", "4GBB", True, None, [4]])
def test_memory_bad_values_name_keyword_and_value(value):
    with pytest.raises(OptionError) as err:
        check_arguments({"mem": value}) if value is not None else get_spec("mem").cast(value)
    assert "mem=" in str(err.value)
    assert err.value.keyword == "mem"


@pytest.mark.parametrize("value,seconds", [
    ("1-02:03:04", 93784), ("1-02:03", 93780), ("2-12", 216000), ("02:03:04", 7384), ("90:00", 5400),
    ("0:30", 30), ("2h", 7200), ("1h30m", 5400), ("1d12h", 129600), ("45s", 45), ("1w", 604800),
    ("90", 5400), (90, 5400), (0.5, 30), ("2.5h", 9000), ("1h 30m", 5400),
])
def test_time_forms(value, seconds):
    assert parse_time(value) == seconds


@pytest.mark.parametrize("value", ["soon", "1:2:3:4", "01:61:00", "0", "-5", "2x", "", False])
def test_time_bad_values(value):
    with pytest.raises(OptionError) as err:
        check_arguments({"time": value})
    assert err.value.keyword == "time"
    assert repr(value) in str(err.value)


def test_format_time_round_trip():
    for seconds in (59, 3600, 86399, 93784, 10 * 86400 + 5):
        assert parse_time(format_time(seconds)) == seconds
    assert format_time(93784) == "1-02:03:04"
    assert format_time(60) == "00:01:00"


def test_aliases_map_to_canonical_names():
    out = check_arguments({"cpus": "4", "memory": "2G", "walltime": "1:00:00", "queue": "debug",
                           "job_name": "x", "chdir": "/tmp", "dependency": "12:13", "mail_type": "end,fail"})
    assert out == {"cores": 4, "mem": 2048, "time": 3600, "partition": "debug", "name": "x",
                   "workdir": "/tmp", "depends": ("12", "13"), "notify": ("end", "fail")}


def test_unknown_keyword_suggests_closest():
    with pytest.raises(OptionError, match="did you mean 'cores'") as err:
        check_arguments({"coers": 2})
    assert err.value.keyword == "coers"
    with pytest.raises(OptionError, match="cluster keywords"):
        check_arguments({"zzzzzz": 1})


def test_same_option_twice_through_aliases():
    with pytest.raises(OptionError, match="given twice"):
        check_arguments({"cores": 2, "cpus": 3})
    with pytest.raises(OptionError, match="mem or mem_per_cpu"):
        check_arguments({"mem": "1G", "mem_per_cpu": "1G"})


@pytest.mark.parametrize("key,value", [
    ("cores", 0), ("cores", "two"), ("cores", 2.5), ("cores", True), ("nodes", -1), ("name", ""),
    ("name", "a\nb"), ("partition", ["a"]), ("exclusive", "maybe"), ("array", "1-"), ("array", "a-b"),
    ("array", 0), ("depends", "12;rm"), ("export", "BAD-NAME=1"), ("email", "nobody"),
    ("notify", "sometimes"),
])
def test_bad_values(key, value):
    with pytest.raises(OptionError) as err:
        check_arguments({key: value})
    assert err.value.keyword == key


def test_casts():
    out = check_arguments({"exclusive": "yes", "hold": 0, "array": 10, "export": {"A": "1", "B": "x y"},
                           "features": "a,b c", "extra": ["--tmp=10G"], "priority": "-5",
                           "depends": [1, "2"]})
    assert out == {"exclusive": True, "hold": False, "array": "0-9", "export": ("A=1", "B=x y"),
                   "features": ("a", "b", "c"), "extra": ("--tmp=10G",), "priority": -5,
                   "depends": ("1", "2")}
    assert check_arguments({"array": range(0, 10, 2)})["array"] == "0-8:2"
    assert check_arguments({"array": "0-9%2"})["array"] == "0-9%2"
    assert check_arguments({"cores": None}) == {}


def test_depends_accepts_objects_with_ids():
    class FakeJob:
        id = "77"

    class Unsubmitted:
        id = None

    assert check_arguments({"depends": [FakeJob()]})["depends"] == ("77",)
    with pytest.raises(OptionError, match="submit it before"):
        check_arguments({"depends": Unsubmitted()})


def test_every_spec_unique_and_documented():
    names = [n for s in OPTIONS for n in (s.name, *s.aliases)]
    assert len(names) == len(set(names))
    for spec in OPTIONS:
        assert spec.help
        if spec.default is not None:
            assert spec.cast(spec.default) == spec.default


def test_option_help_forms(capsys):
    text = option_help()
    for spec in OPTIONS:
        assert spec.name in text
    rows = option_help(mode="table")
    assert {r["name"] for r in rows} == {s.name for s in OPTIONS}
    assert option_help(mode="print") is None
    assert "walltime" in capsys.readouterr().out
    with pytest.raises(OptionError):
        option_help(mode="xml")


def test_option_to_string_through_a_backend(toy, caplog):
    from cluster_core import option_to_string, options_to_string
    assert option_to_string("cpus", 4) == "#TOY --cores=4"
    assert options_to_string({"cores": 2, "name": "my job; $(x)"}) == "#TOY --cores=2\n#TOY --name 'my job; $(x)'"
    with caplog.at_level("DEBUG", logger="cluster_core.options"):
        assert option_to_string("qos", "high", backend="toy") == ""
    assert "backend toy has no option 'qos'; skipped" in caplog.text
    with pytest.raises(OptionError):
        option_to_string("mem", "lots")
