import pytest

from agent.errors import ConfigError
from agent.settings import data_home, load_settings, setting_sources


def test_home_comes_from_the_argument_then_the_environment(home, tmp_path, monkeypatch):
    assert data_home() == home
    assert data_home(tmp_path / "other") == tmp_path / "other"
    monkeypatch.delenv("REVERIE_HOME")
    assert str(data_home()).endswith(".local/share/reverie")


def test_flags_beat_environment_beat_file_beat_defaults(home, monkeypatch):
    home.mkdir()
    (home / "reverie.toml").write_text('max_new_tokens = 99\nrecall_k = 2\nsystem_prompt = "From file."\n')
    monkeypatch.setenv("REVERIE_RECALL_K", "3")
    monkeypatch.setenv("REVERIE_SYSTEM_PROMPT", "From env.")
    settings = load_settings(system_prompt="From a flag.")
    assert (settings.max_new_tokens, settings.recall_k, settings.system_prompt) == (99, 3, "From a flag.")
    assert settings.temperature == 0.0
    sources = setting_sources(settings, {"system_prompt": "From a flag."})
    assert (sources["max_new_tokens"], sources["recall_k"], sources["system_prompt"], sources["top_p"]) == (
        "file", "env", "flag", "default")


@pytest.mark.parametrize(
    "toml, message",
    [
        ("max_tokens = 3", "unknown setting 'max_tokens'"),
        ("max_new_tokens = 'many'", "bad setting max_new_tokens .from .*reverie.toml"),
        ("max_new_tokens = ", "is not valid TOML"),
        ("home = '/elsewhere'", "cannot set home"),
    ],
)
def test_a_bad_file_is_one_config_error(home, toml, message):
    home.mkdir()
    (home / "reverie.toml").write_text(toml)
    with pytest.raises(ConfigError, match=message):
        load_settings()


def test_bad_environment_values_and_flags_name_their_source(monkeypatch):
    monkeypatch.setenv("REVERIE_TEMPERATURE", "hot")
    with pytest.raises(ConfigError, match="REVERIE_TEMPERATURE"):
        load_settings()
    monkeypatch.delenv("REVERIE_TEMPERATURE")
    with pytest.raises(ConfigError, match="from a flag"):
        load_settings(recall_k=0)
    with pytest.raises(ConfigError, match="unknown setting 'colour'"):
        load_settings(colour="blue")
