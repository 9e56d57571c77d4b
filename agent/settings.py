"""Settings: defaults < ``reverie.toml`` in the data home < ``REVERIE_*`` environment < flags.

The data home itself comes first, from ``--home``, else ``REVERIE_HOME``, else
``~/.local/share/reverie``; the TOML file is read from there. Unknown keys are errors, so a typo
in reverie.toml never silently does nothing.

Each learner's settings are a section, and the section *is* the learner's own config class, so
every default lives once, beside the code that uses it:

    [selfparam]   learners.selfparam.SelfParamConfig   (REVERIE_SELFPARAM__LR, --set selfparam.lr=...)
    [synthesis]   learners.synthesis.SynthesisConfig
    [gate]        learners.evaluate.GateThresholds
    [learn]       LearnSettings below: what a night does around the learners

The flat keys of 0.1 (``learn_lr``, ``synthesis_samples``, ``gate_min_efficacy`` ...) still work
for one release, with a one-line deprecation note on use (``DEPRECATED`` maps them).
"""

from __future__ import annotations

import json
import logging
import os
import tomllib
import typing
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from agent.errors import ConfigError, InvalidInput
from learners.cory import CORYConfig
from learners.evaluate import GateThresholds
from learners.selfparam import SelfParamConfig
from learners.synthesis import SynthesisConfig

log = logging.getLogger("reverie")

DEFAULT_HOME = Path("~/.local/share/reverie")
CONFIG_FILE = "reverie.toml"
ENV_PREFIX = "REVERIE_"


def data_home(explicit: str | Path | None = None) -> Path:
    """The one place that decides where reverie keeps its data."""
    chosen = explicit or os.environ.get("REVERIE_HOME") or DEFAULT_HOME
    return Path(chosen).expanduser().resolve()


class LearnSettings(BaseModel):
    """A night around its learners: what is cleaned, chosen and measured (``graphs.nightly``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    clean_feedback: bool = Field(True, description="clean new feedback at the start of every learn")
    max_new: int = Field(20, ge=1, description="new experiences learned per night at most, oldest first")
    adapter_size: int = Field(2, ge=1, description="experiences per frozen adapter (what one 135M adapter holds)")
    max_attempts: int = Field(2, ge=1, description="nights an experience may be refused before it is left to recall")
    replay: int = Field(8, ge=0, le=16, description="replay sentences (the model's own generic answers), at least")
    # 1.0 since 2026-12-03: at 0.5 the 0.5B model's adapters of facts 15-20 answered general
    # questions with their own names and were refused; at 1.0 all three passed (README).
    replay_ratio: float = Field(1.0, gt=0, le=2, description="replay sentences per experience sentence, up to the "
                                "replay there is")
    probes: int = Field(1, ge=0, le=4, description="probe questions set aside per experience")
    extract_turns: bool = Field(True, description="also learn informative statements from chats")


class RefineSettings(BaseModel):
    """The night's refine step: a user's policy refined by CORY (``graphs.refine``); off until a
    reward is set. The learner's own knobs are the ``[cory]`` section."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    reward: str = Field("", description="exact (the prompt set's answers), feedback (a reward model trained on the "
                        "cleaned feedback), rm:MODEL (a reward model), comparator or "
                        "codejudge (where the model's card trusts them); empty: off")
    prompts: Path | None = Field(None, description='a prompt set, JSONL: {"prompt": ..., "answer": ...} (answer '
                                 "for the exact reward)")
    from_turns: bool = Field(True, description="also refine on the user's logged chat messages (not with exact)")
    max_prompts: int = Field(64, ge=4, description="prompts per refine at most; a quarter is held out for the gate")
    min_prompts: int = Field(4, ge=4, description="fewer prompts than this: no refine")
    min_gain: float = Field(0.0, ge=0.0, description="held-out reward must rise by more than this")
    max_kl: float = Field(20.0, gt=0, description="KL of the policy to the base, per reply, at most")


class RecommendSettings(BaseModel):
    """The recommendation agent (``graphs.recommend``): where candidates come from and how they are ranked."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    catalogue: str = Field("", description="the catalogue recommendations draw on; empty: the only one there is")
    k: int = Field(10, ge=1, le=100, description="items per recommendation, at most")
    sources: list[Literal["retrieval", "similar", "related", "model", "popular", "satisfying"]] = Field(
        ["retrieval", "similar", "related", "popular", "satisfying"], description="where candidates come from; add model "
        "(the titles the model names) with a larger model: on the 135M one it added nothing and cost 5-10 s")
    per_source: int = Field(50, ge=1, le=1000, description="candidates each source proposes")
    weights: dict[Literal["retrieval", "similar", "related", "model", "popular", "satisfying"], float] = Field(
        {"retrieval": 0.5, "similar": 0.5, "related": 0.5, "model": 1.0, "popular": 1.0, "satisfying": 1.0},
        description="each source's weight in the fusion (chosen on one ReDial fold, README)")
    rank: Literal["auto", "comparator", "score"] = Field(
        "auto", description="comparator: merge sort on the calibrated comparator; auto: when the card trusts it")
    rerank: int = Field(5, ge=3, le=10, description="the top candidates the comparator orders")
    kind: str = Field("film", min_length=1, description="what the items are, in the model's prompt")
    popularity_field: str = Field("popularity", description="the items' numeric field the popular source sorts by")
    in_chat: int = Field(5, ge=0, le=20, description="picks a chat reply gives when asked for recommendations "
                         "(with a catalogue); 0: chat never recommends")


class JudgeSettings(BaseModel):
    """How far the judges must be trusted before they act (``agent.judges``: the model's card)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    min_committee_accuracy: float = Field(0.8, ge=0.0, le=1.0, description="committee accuracy on labelled pairs "
                                          "needed to flip or remove feedback; below it cleaning only audits")
    min_code_tau: float = Field(0.3, ge=-1.0, le=1.0, description="CodeJudge tau-b against test results needed "
                                "for the code check (verify_code auto)")
    min_negation: float = Field(0.8, ge=0.0, le=1.0, description="comparator negation invariance (s_neg) needed "
                                "for the choice check (verify_choices auto)")


class ServeSettings(BaseModel):
    """`reverie serve`: the HTTP API and the schedule of nights (``agent.server``, ``agent.daemon``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = Field("127.0.0.1", description="address to bind; any other than loopback needs API keys")
    port: int = Field(8321, ge=1, le=65535)
    schedule: str = Field("0 3 * * *", description="when nights run: 5-field cron in UTC; empty: never")
    misfire_grace_s: int = Field(21600, ge=1, description="how late a missed night may still run (at start-up)")
    keys_file: Path | None = Field(None, description='API keys, JSON: {"KEY": {"user": "ana", "admin": false}}')
    max_body_bytes: int = Field(1_000_000, ge=1024, description="largest request body")
    max_messages: int = Field(256, ge=1, description="messages in one chat request at most")
    max_message_chars: int = Field(32_000, ge=1, description="characters in one message at most")
    concurrency_per_key: int = Field(4, ge=1, description="requests of one key (or of everyone, without keys) at once")
    night_nice: int = Field(10, ge=0, le=19, description="the night's process runs this much nicer than chat")
    night_threads: int = Field(1, ge=1, description="torch threads of the night's process")
    idle_min_new: int = Field(0, ge=0, description="also learn early, once this many experiences wait and chat "
                              "is quiet (idle_quiet_min); 0: only on the schedule")
    idle_quiet_min: float = Field(30.0, gt=0, description="minutes without a turn before an early night")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", validate_default=True)

    home: Path = Field(default_factory=data_home, description="where the log, memories and models live")
    models_dir: Path | None = Field(None, description="converted base models; default HOME/models")

    # Model
    model: str = Field("embedded:smollm2-135m-instruct", description="embedded:NAME, a folder or an HF id")
    device: str = Field("auto", description="auto, cpu, cuda, cuda:1 ...")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    threads: int | None = Field(None, ge=1, description="torch CPU threads; default: torch's choice")
    context_window: int = Field(2048, ge=256, description="prompt + reply tokens; capped by the model's own")

    # Replying
    system_prompt: str = Field("You are a helpful AI assistant.", description="first line of every prompt")
    max_new_tokens: int = Field(256, ge=1, le=8192)
    temperature: float = Field(0.0, ge=0.0, le=2.0, description="0 = greedy")
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    repetition_penalty: float = Field(1.0, ge=1.0, description=">1 also penalises recalled facts")

    # Recall
    recall: bool = Field(True, description="put the user's short-term memories into the prompt")
    recall_k: int = Field(4, ge=1, le=32, description="memories recalled per turn, at most")
    recall_min_score: float = Field(0.3, ge=-1.0, le=1.0, description="cosine similarity a memory needs")
    route_min_score: float = Field(0.35, ge=-1.0, le=1.0, description="cosine similarity to a consolidated "
                                   "experience a message needs to be answered with the adapter holding it")
    adapter_memory_mb: int = Field(4096, ge=0, description="memory for adapters' merged weights, kept so that "
                                   "switching to one costs nothing (135M model: 430 MB each; one is always kept)")

    # Verifying replies (graphs/verify)
    verify_code: Literal["auto", "off", "binary", "graded"] = Field(
        "auto", description="CodeJudge on replies with code; auto: binary when the model's card trusts it")
    verify_code_budget_s: float = Field(60.0, gt=0, description="time for judging (and revising) one reply's code")
    verify_choices: Literal["auto", "on", "off"] = Field(
        "auto", description="check the consistency of picks between listed options; auto: when the card trusts it")
    verify_max_options: int = Field(6, ge=2, le=10, description="options a choice check compares, at most")

    # Cleaning feedback (reverie feedback clean, and first thing each night)
    clean_method: Literal["sac", "vote_all_r", "vote_all_f", "vote_maj_r", "vote_maj_f"] = Field(
        "sac", description="the cleaner learn uses (feedback clean takes --method)")
    clean_committee: list[str] = Field(
        ["judge:helpful", "judge:correct", "judge:harmless", "codejudge"],
        description="members: judge:CRITERION (the agent's model), codejudge, rm:MODEL (a reward model)")

    # Model versions
    keep_versions: int = Field(5, ge=0, description="versions whose weights prune keeps (plus active, parent, base)")

    # Learning (reverie learn): a night, and its learners, one section each
    learn: LearnSettings = Field(default_factory=LearnSettings)
    selfparam: SelfParamConfig = Field(default_factory=SelfParamConfig)
    refine: RefineSettings = Field(default_factory=RefineSettings)
    cory: CORYConfig = Field(default_factory=CORYConfig)
    synthesis: SynthesisConfig = Field(default_factory=SynthesisConfig)
    gate: GateThresholds = Field(default_factory=GateThresholds)
    serve: ServeSettings = Field(default_factory=ServeSettings)
    recommend: RecommendSettings = Field(default_factory=RecommendSettings)
    judges: JudgeSettings = Field(default_factory=JudgeSettings)
    generator_model: str | None = Field(
        None, description="model that writes the questions: a folder, an HF id or openai:MODEL; default: the model itself")
    generator_base_url: str = Field("http://localhost:8000/v1", description="endpoint of an openai:MODEL generator")
    generator_api_key: SecretStr | None = Field(None, description="key for that endpoint; default: $OPENAI_API_KEY")

    # Storage
    db_timeout_s: float = Field(10.0, gt=0, description="how long to wait for another process's write lock")

    @field_validator("verify_choices", mode="before")
    @classmethod
    def _on_off(cls, value: Any) -> Any:
        """0.1's true / false still work: they mean on / off."""
        named = {"true": "on", "1": "on", "false": "off", "0": "off"}
        if isinstance(value, bool):
            return "on" if value else "off"
        return named.get(value.lower(), value) if isinstance(value, str) else value

    @field_validator("models_dir")
    @classmethod
    def _a_folder(cls, value: Path | None) -> Path | None:
        if value is not None and value.expanduser().exists() and not value.expanduser().is_dir():
            raise ValueError(f"{value} is a file, not a folder")
        return value

    @property
    def models_path(self) -> Path:
        return (self.models_dir or self.home / "models").expanduser()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # load_settings reads the file, the environment and the flags itself (so it can say where
        # each value came from and honour the old flat keys); pydantic only validates the result.
        return (init_settings,)


# The sections: every field that is a settings class of its own (a learner's config, [learn], ...).
SECTIONS = tuple(name for name, info in Settings.model_fields.items()
                 if isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel))

# The flat keys of 0.1 and where they live now. Kept for one release.
DEPRECATED = {
    "learn_clean_feedback": "learn.clean_feedback",
    "learn_max_new": "learn.max_new",
    "learn_rehearse": "learn.rehearse",
    "learn_replay": "learn.replay",
    "learn_probes": "learn.probes",
    "learn_extract_turns": "learn.extract_turns",
    "learn_epochs": "selfparam.epochs",
    "learn_lr": "selfparam.lr",
    "learn_lora_r": "selfparam.lora_r",
    "learn_batch_size": "selfparam.batch_size",
    "learn_teacher_cache_mb": "selfparam.teacher_cache_mb",
    "synthesis_samples": "synthesis.samples",
    "synthesis_rule_questions": "synthesis.rule_questions",
    "gate_min_efficacy": "gate.min_efficacy",
    "gate_retention_tolerance": "gate.retention_tolerance",
    "gate_general_tolerance": "gate.general_tolerance",
    "gate_perplexity_tolerance": "gate.perplexity_tolerance",
}
# Settings that no longer mean anything, and why; accepted with a one-line note, then ignored.
RETIRED = {
    "learn.rehearse": "a night's adapters are frozen once promoted, so nothing is trained again",
}
_warned: set[str] = set()


def leaves() -> dict[str, Any]:
    """Every setting by its dotted key (``recall_k``, ``selfparam.lr``), with its field info."""
    out: dict[str, Any] = {}
    for name, info in Settings.model_fields.items():
        if name in SECTIONS:
            out.update({f"{name}.{sub}": field for sub, field in info.annotation.model_fields.items()})
        elif name != "home":
            out[name] = info
    return out


def flag_setting(item: str) -> tuple[str, str]:
    """A ``--set KEY=VALUE`` flag as (key, value); ``load_settings`` checks and parses the value."""
    key, sep, value = item.partition("=")
    if not sep or not key.strip():
        raise InvalidInput(f"--set takes KEY=VALUE, got {item!r}")
    return key.strip().replace("-", "_"), value


def load_settings(home: str | Path | None = None, **overrides: Any) -> Settings:
    """Resolve every setting, or raise one ConfigError line naming the bad key and its source.

    ``overrides`` are the flags: top-level names, dotted keys (``selfparam.lr``), whole sections
    (``selfparam={"lr": 2e-3}``) or the deprecated flat keys.
    """
    root = data_home(home)
    layers = {"file": _flatten(read_config_file(root), f"{root / CONFIG_FILE}"),
              "env": read_environment(),
              "flag": _flatten({k: v for k, v in overrides.items() if v is not None}, "a flag")}
    values: dict[str, Any] = {}
    for layer in layers.values():  # later layers win, leaf by leaf
        values.update(layer)
    try:
        return Settings(**_nest(values), home=root)
    except ValidationError as exc:
        error = exc.errors()[0]
        key = ".".join(str(p) for p in error["loc"] if not isinstance(p, int)) or "settings"
        origin = _origin(key, layers)
        source = {"flag": "from a flag", "env": f"from {env_name(key)}", "file": f"from {root / CONFIG_FILE}",
                  "default": "default"}[origin]
        raise ConfigError(f"bad setting {key} ({source}): {error['msg']}") from exc


def read_config_file(home: Path) -> dict[str, Any]:
    path = home / CONFIG_FILE
    if not path.is_file():
        return {}
    try:
        values = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from exc
    return values


def read_environment() -> dict[str, Any]:
    """``REVERIE_<KEY>`` for every setting (``REVERIE_SELFPARAM__LR`` for a section's), and the
    deprecated flat names; lists are JSON (``REVERIE_CLEAN_COMMITTEE='["codejudge"]'``)."""
    found = {}
    for key in [*leaves(), *DEPRECATED, *RETIRED]:
        name = env_name(key)
        if name in os.environ:
            found[key] = os.environ[name]
    return _flatten(found, "the environment")


def env_name(key: str) -> str:
    return ENV_PREFIX + key.replace(".", "__").upper()


def setting_sources(settings: Settings, overrides: dict[str, Any]) -> dict[str, str]:
    """Where each resolved value came from, by dotted key: default, file, env or flag (for `config show`)."""
    layers = {"file": _flatten(read_config_file(settings.home), "the file"), "env": read_environment(),
              "flag": _flatten({k: v for k, v in overrides.items() if v is not None}, "a flag")}
    return {key: _origin(key, layers) for key in leaves()}


def _flatten(values: dict[str, Any], where: str) -> dict[str, Any]:
    """Dotted keys from one layer: sections opened, deprecated keys renamed (noted once), unknown
    keys refused, and strings for list settings read as JSON."""
    known = leaves()
    flat: dict[str, Any] = {}
    for key, value in values.items():
        key = key.replace("-", "_")
        if key == "home":
            raise ConfigError(f"{where} cannot set home; use --home or REVERIE_HOME")
        if key in SECTIONS and isinstance(value, (dict, BaseModel)):
            section = value.model_dump() if isinstance(value, BaseModel) else value
            flat.update(_flatten({f"{key}.{sub}": v for sub, v in section.items()}, where))
            continue
        if key in DEPRECATED:
            if key not in _warned:
                _warned.add(key)
                log.warning("reverie: setting %r is deprecated; use %r (the old name goes in 0.3)", key, DEPRECATED[key])
            key = DEPRECATED[key]
        if key in RETIRED:
            if key not in _warned:
                _warned.add(key)
                log.warning("reverie: setting %r is ignored since 0.2: %s", key, RETIRED[key])
            continue
        if key not in known:
            raise ConfigError(f"unknown setting {key!r}" + ("" if where == "a flag" else f" in {where}"))
        if isinstance(value, str) and typing.get_origin(known[key].annotation) is list:
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"bad setting {key} (from {where}): a list, written as JSON") from exc
        flat[key] = value
    return flat


def _nest(flat: dict[str, Any]) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for key, value in flat.items():
        section, dot, sub = key.partition(".")
        if dot:
            nested.setdefault(section, {})[sub] = value
        else:
            nested[key] = value
    return nested


def _origin(key: str, layers: dict[str, dict[str, Any]]) -> str:
    """The precedence, written once: flag > env > file > default."""
    for origin in ("flag", "env", "file"):
        if key in layers[origin]:
            return origin
    return "default"
