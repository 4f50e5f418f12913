import pytest

from cluster_core import ConfigError, OptionError, config


@pytest.mark.plugins  # core.backend is checked against the installed backends
def test_options_round_trip(cluster_config):
    assert config.get_option("core.backend") is None
    assert config.get_option("core.backend", "auto") == "auto"
    config.set_option("core.backend", "local")
    config.set_option("commands.sbatch", "/opt/slurm/bin/sbatch")
    assert config.get_option("backend") == "local"  # bare key means core.
    assert config.get_option("commands.sbatch") == "/opt/slurm/bin/sbatch"
    assert config.options() == {"core": {"backend": "local"}, "commands": {"sbatch": "/opt/slurm/bin/sbatch"}}
    config.set_option("core.backend", None)
    assert config.get_option("core.backend") is None
    assert "sbatch" in cluster_config.read_text()


def test_config_edited_by_hand_is_seen(cluster_config):
    config.set_option("core.jobdir", "a")
    cluster_config.write_text("[core]\njobdir = somewhere/else\n")
    assert config.get_option("core.jobdir") == "somewhere/else"


@pytest.mark.parametrize("text,line,what", [
    ("backend = local\n", 1, "before any [section]"),
    ("[core]\nbackend = local\n[core]\n", 3, "appears twice"),
    ("[core]\nbackend = local\nbackend = slurm\n", 3, "appears twice"),
    ("[core]\nbackend = local\nthis is not a setting\n", 3, "cannot parse"),
])
def test_corrupt_config_names_file_and_line(cluster_config, text, line, what):
    cluster_config.write_text(text)
    with pytest.raises(ConfigError) as err:
        config.get_option("core.backend")
    message = str(err.value)
    assert str(cluster_config) in message and f"line {line}" in message and what in message


def test_bad_setting_names(cluster_config):
    with pytest.raises(ConfigError):
        config.set_option("core.", "x")
    with pytest.raises(ConfigError):
        config.set_option("core.x", "two\nlines")


def test_profiles(cluster_config):
    assert config.get_profile() == {}
    assert config.get_profile("big") is None
    prof = config.set_profile("big", {"cores": 8, "mem": "32G"})
    assert prof == config.Profile("big", {"cores": "8", "mem": "32G"})
    config.set_profile("big", {"cpus": 16, "time": "2h"})  # an alias replaces the canonical key
    assert config.get_profile("big").kwargs == {"mem": 32768, "cores": 16, "time": 7200}  # checked and typed
    config.set_profile("big", {"time": None})
    assert "time" not in config.get_profile("big").kwargs
    assert set(config.get_profile()) == {"big"}
    assert config.del_profile("big") is True
    assert config.del_profile("big") is False


def test_profile_values_are_checked_before_saving(cluster_config):
    with pytest.raises(OptionError, match="profile 'bad'.*mem="):
        config.set_profile("bad", {"mem": "lots"})
    with pytest.raises(OptionError, match="did you mean"):
        config.set_profile("bad", {"coers": 2})
    assert config.get_profile("bad") is None
    with pytest.raises(ConfigError):
        config.Profile("no spaces allowed", {})


def test_layering_default_profile_named_profile_keywords(cluster_config):
    config.set_profile("default", {"cores": 2, "partition": "short", "time": "1h"})
    config.set_profile("big", {"cores": 16, "mem": "64G"})
    everywhere = {"export": ("ALL",)}  # the table's defaults: the submitting environment, on every backend
    assert config.merged_keywords({}) == {"cores": 2, "partition": "short", "time": 3600, **everywhere}
    assert config.merged_keywords({"time": "10m"}, profile="big") == {
        "cores": 16, "partition": "short", "time": 600, "mem": 65536, **everywhere}
    assert config.merged_keywords({"export": "NONE"})["export"] == ("NONE",)
    assert config.merged_keywords({"cores": 1}, profile="big")["cores"] == 1
    with pytest.raises(ConfigError, match="no such profile.*known: big, default"):
        config.merged_keywords({}, profile="huge")
