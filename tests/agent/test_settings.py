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


def test_every_section_is_settable_by_its_dotted_keys(home, monkeypatch):
    from agent.settings import SECTIONS

    assert {"learn", "selfparam", "refine", "cory", "synthesis", "gate", "serve", "judges", "recommend"} == set(SECTIONS)
    monkeypatch.setenv("REVERIE_CORY__SWAP_EVERY", "3")
    settings = load_settings(**{"refine.reward": "exact", "cory.epochs": "4"})
    assert (settings.refine.reward, settings.cory.epochs, settings.cory.swap_every) == ("exact", 4, 3)


def test_a_learner_section_comes_from_file_env_and_flags_leaf_by_leaf(home, monkeypatch):
    home.mkdir()
    (home / "reverie.toml").write_text("[selfparam]\nlr = 0.002\nepochs = 4\nbatch_size = 2\n\n[gate]\nmin_efficacy = 0.5\n")
    monkeypatch.setenv("REVERIE_SELFPARAM__EPOCHS", "6")
    settings = load_settings(**{"selfparam.batch_size": "3"})
    assert (settings.selfparam.lr, settings.selfparam.epochs, settings.selfparam.batch_size) == (0.002, 6, 3)
    assert settings.gate.min_efficacy == 0.5 and settings.gate.general_tolerance == 0.1  # the rest: defaults
    sources = setting_sources(settings, {"selfparam.batch_size": "3"})
    assert [sources[f"selfparam.{k}"] for k in ("lr", "epochs", "batch_size", "seed")] == ["file", "env", "flag", "default"]


def test_the_section_is_the_learners_own_config(home):
    from learners.selfparam import SelfParamConfig

    settings = load_settings(selfparam={"lora_r": 64})
    assert isinstance(settings.selfparam, SelfParamConfig)
    assert settings.selfparam.lora_alpha == 128  # the scale of 2 follows the rank, written into the config
    assert load_settings(selfparam={"lora_r": 64, "lora_alpha": 16}).selfparam.lora_alpha == 16
    assert load_settings().selfparam == SelfParamConfig()  # one place for every default


def test_old_flat_keys_still_work_with_a_one_line_note(home, monkeypatch, caplog):
    home.mkdir()
    (home / "reverie.toml").write_text("gate_min_efficacy = 0.4\n")
    monkeypatch.setenv("REVERIE_LEARN_MAX_NEW", "7")
    with caplog.at_level("WARNING", logger="reverie"):
        settings = load_settings(learn_lr=0.005, synthesis_rule_questions=False)
    assert (settings.gate.min_efficacy, settings.learn.max_new, settings.selfparam.lr) == (0.4, 7, 0.005)
    assert settings.synthesis.rule_questions is False
    notes = [r.getMessage() for r in caplog.records]
    assert any("'learn_lr' is deprecated; use 'selfparam.lr'" in n for n in notes)
    assert all("\n" not in n for n in notes)


def test_a_retired_setting_is_accepted_and_ignored_with_a_note(home, monkeypatch, caplog):
    home.mkdir()
    (home / "reverie.toml").write_text("[learn]\nrehearse = 4\n")
    monkeypatch.setenv("REVERIE_LEARN_REHEARSE", "2")
    monkeypatch.setattr("agent.settings._warned", set())  # noted once per process: this test must see it
    with caplog.at_level("WARNING", logger="reverie"):
        settings = load_settings(learn={"max_new": 3})
    assert settings.learn.max_new == 3 and not hasattr(settings.learn, "rehearse")
    assert any("'learn.rehearse' is ignored since 0.2" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"selfparam.lrr": 1}, "unknown setting 'selfparam.lrr'"),
        ({"selfparam.epochs": 0}, r"bad setting selfparam.epochs \(from a flag\)"),
        ({"clean_committee": "not json"}, "a list, written as JSON"),
    ],
)
def test_bad_section_values_name_the_dotted_key(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_settings(**overrides)


def test_a_bad_section_value_in_the_environment_names_its_variable(monkeypatch):
    monkeypatch.setenv("REVERIE_GATE__MIN_EFFICACY", "high")
    with pytest.raises(ConfigError, match="REVERIE_GATE__MIN_EFFICACY"):
        load_settings()
