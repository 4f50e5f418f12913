import pytest

from cluster_core import OptionError, check_arguments, option_help, options
from cluster_core.options import OPTIONS, format_time, get_spec, parse_memory, parse_time
from cluster_core.records import Dependency


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
                   "workdir": "/tmp", "depends": afterok("12", "13"), "notify": ("end", "fail")}


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
                   "depends": afterok("1", "2")}
    assert check_arguments({"array": range(0, 10, 2)})["array"] == "0-8:2"
    assert check_arguments({"array": "0-9%2"})["array"] == "0-9%2"
    assert check_arguments({"cores": None}) == {}


def test_depends_accepts_objects_with_ids():
    class FakeJob:
        id = "77"

    class Unsubmitted:
        id = None

    assert check_arguments({"depends": [FakeJob()]})["depends"] == afterok("77")
    with pytest.raises(OptionError, match="submit it before"):
        check_arguments({"depends": Unsubmitted()})
    assert check_arguments({"depends": {"afterany": [FakeJob(), 3]}})["depends"] == (
        Dependency("afterany", "77"), Dependency("afterany", "3"))


def afterok(*ids):
    return tuple(Dependency("afterok", i) for i in ids)


@pytest.mark.parametrize("value,expected", [
    ("451", ["451"]),
    ("1,2", ["1", "2"]), ("1:2", ["1", "2"]), ("1 2", ["1", "2"]), ([1, "2"], ["1", "2"]),
    ("afterany:451", ["afterany:451"]),
    ("afterany:1:2", ["afterany:1", "afterany:2"]),
    ("AfterAny:1", ["afterany:1"]),
    ("afternotok:3", ["afternotok:3"]),
    ("after:4,5", ["after:4", "after:5"]),  # a type holds for the ids after it, up to the next type
    ("afterok:1,afternotok:3", ["1", "afternotok:3"]),
    ("singleton", ["singleton"]),
    (["afterany:1:2", "afternotok:3", 7, "singleton"], ["afterany:1", "afterany:2", "afternotok:3", "7", "singleton"]),
    ({"afterany": [1, 2], "after": "3", "singleton": True}, ["afterany:1", "afterany:2", "after:3", "singleton"]),
    ([Dependency("afternotok", "9"), "9"], ["afternotok:9", "9"]),
    (["1", "1", "afterany:1"], ["1", "afterany:1"]),  # each once
    ("12_3,14[2].srv", ["12_3", "14[2].srv"]),
])
def test_dependency_types(value, expected):
    deps = check_arguments({"depends": value})["depends"]
    assert all(type(d) is Dependency for d in deps)
    assert [str(d) for d in deps] == expected
    # the text form reads back to the same records (job records store it)
    assert check_arguments({"depends": [str(d) for d in deps]})["depends"] == deps


@pytest.mark.parametrize("value,message", [
    ("afterbogus:1", "unknown dependency type 'afterbogus'; the types are afterok, afterany, afternotok, after, "
                     "singleton"),
    ({"sometime": [1]}, "unknown dependency type 'sometime'"),
    ("afterany", "afterany needs job ids"),
    ("singleton:3", "singleton takes no job ids"),
    ("afterany:1;2", "is not a job id"),
    ({"singleton": "yes"}, "singleton: expected True or False"),
    ([[1, 2]], "not list"),
])
def test_bad_dependency_types(value, message):
    with pytest.raises(OptionError, match="^depends=") as err:
        check_arguments({"depends": value})
    assert message in str(err.value) and err.value.keyword == "depends"


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
    with caplog.at_level("WARNING", logger="cluster_core.options"):
        assert option_to_string("qos", "high", backend="toy") == ""
    assert "qos='high': backend toy cannot honour it, so it is ignored" in caplog.text
    with pytest.raises(OptionError):
        option_to_string("mem", "lots")


def test_dependency_groups_for_renderers():
    from cluster_core.options import dependency_groups
    checked = check_arguments({"depends": ["afterany:1:2", "3", "singleton", "afterany:2", "afterok:4"]})["depends"]
    assert dependency_groups(checked) == {"afterany": ["1", "2"], "afterok": ["3", "4"], "singleton": []}
    assert dependency_groups("12,afternotok:13") == {"afterok": ["12"], "afternotok": ["13"]}  # unchecked text
    assert dependency_groups(["12", "13"]) == {"afterok": ["12", "13"]}


# Every module-level name of cluster_core.options before it was split (keywords, casts, dependencies,
# rendering, help): users' code, fyrd's names and plugins import them from there.
_NAMES_BEFORE_THE_SPLIT = (
    "MAX_COUNT MAX_MEMORY_MB MAX_TIME_SECONDS MAX_ARRAY_INDEX MAX_ARRAY_TASKS MAX_TEXT _MAX_NUMBER_TEXT _CONTROL_RE "
    "describe _str_of _items _MEM_RE _MEM_FACTOR parse_memory _TIME_UNITS _TIME_UNIT_RE parse_time _parse_time_text "
    "format_time _whole _positive_int _int _TRUE _FALSE _bool _check_text _text _path _text_items _args _words "
    "_JOB_ID_RE _JOB_ID_WANTED _KIND_WORD _KINDS_TEXT _job_id_of _kind_of _text_dependencies dependency_items "
    "_dependency_list _has_id to_dependencies _depends _ENV_NAME _export _ARRAY_RE _ARRAY_FORMS _ARRAY_BOUNDS "
    "_array_parts _array array_indices _MODULE _NAMES _IMPORT_RE _imports _paths _suffix _notify _email _CASTS "
    "OptionSpec _opt OPTIONS _BY_NAME CONTROL_KEYWORDS CORE_KEYWORDS get_spec canonical_name OptionsError "
    "split_keywords _known check_arguments _HELP_MODES option_help SCRIPT_KEYWORDS _INSTEAD _warned _ignored "
    "Renderer render_with dependency_groups quote_directive_word directive_lines options_to_string "
    "option_to_string defaults OptionError DEPENDENCY_KINDS Dependency log").split()


def test_every_name_of_options_before_the_split_is_still_there():
    from cluster_core import casts, dependencies, keywords, rendering
    missing = [name for name in _NAMES_BEFORE_THE_SPLIT if not hasattr(options, name)]
    assert not missing
    # the same objects, not copies: a test that clears options._warned clears what rendering reads
    assert options.check_arguments is keywords.check_arguments and options.render_with is rendering.render_with
    assert options.parse_memory is casts.parse_memory and options.to_dependencies is dependencies.to_dependencies
    assert options._warned is rendering._warned
