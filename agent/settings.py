"""Settings: defaults < ``reverie.toml`` in the data home < ``REVERIE_*`` environment < flags.

The data home itself comes first, from ``--home``, else ``REVERIE_HOME``, else
``~/.local/share/reverie``; the TOML file is read from there. Unknown keys are errors, so a typo
in reverie.toml never silently does nothing.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from agent.errors import ConfigError

DEFAULT_HOME = Path("~/.local/share/reverie")
CONFIG_FILE = "reverie.toml"


def data_home(explicit: str | Path | None = None) -> Path:
    """The one place that decides where reverie keeps its data."""
    chosen = explicit or os.environ.get("REVERIE_HOME") or DEFAULT_HOME
    return Path(chosen).expanduser().resolve()


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="REVERIE_", extra="forbid", validate_default=True)

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

    # Verifying replies (graphs/verify)
    verify_code: Literal["off", "binary", "graded"] = Field("binary", description="CodeJudge on replies with code")
    verify_code_budget_s: float = Field(60.0, gt=0, description="time for judging (and revising) one reply's code")
    verify_choices: bool = Field(True, description="check the consistency of picks between listed options")
    verify_max_options: int = Field(6, ge=2, le=10, description="options a choice check compares, at most")

    # Cleaning feedback (reverie feedback clean, and first thing each night)
    learn_clean_feedback: bool = Field(True, description="clean new feedback at the start of every learn")
    clean_method: Literal["sac", "vote_all_r", "vote_all_f", "vote_maj_r", "vote_maj_f"] = Field(
        "sac", description="the cleaner learn uses (feedback clean takes --method)")
    clean_committee: list[str] = Field(
        ["judge:helpful", "judge:correct", "judge:harmless", "codejudge"],
        description="members: judge:CRITERION (the agent's model), codejudge, rm:MODEL (a reward model)")

    # Model versions
    keep_versions: int = Field(5, ge=0, description="versions whose weights prune keeps (plus active, parent, base)")

    # Learning (reverie learn): SELF-PARAM, the nightly consolidation
    learn_epochs: int = Field(10, ge=1, description="passes over the target set per night")
    learn_lr: float = Field(1e-3, gt=0, description="AdamW learning rate of the LoRA adapter")
    learn_lora_r: int = Field(16, ge=1, description="LoRA rank of the version adapters")
    learn_batch_size: int = Field(8, ge=1, description="sentences per optimiser step")
    learn_teacher_cache_mb: int = Field(2048, ge=0, description="memory for the teacher's log-probs, kept after the first epoch")
    learn_rehearse: int = Field(0, ge=0, description="earlier experiences trained again per night, weakest first")
    learn_max_new: int = Field(20, ge=1, description="new experiences learned per night at most, oldest first")
    learn_replay: int = Field(8, ge=0, le=16, description="replay sentences (the model's own generic answers), at least")
    learn_probes: int = Field(1, ge=0, le=4, description="probe questions set aside per experience")
    learn_extract_turns: bool = Field(True, description="also learn informative statements from chats")
    synthesis_samples: int = Field(6, ge=0, le=32, description="sampled question batches per sentence (0: none)")
    synthesis_rule_questions: bool = Field(True, description="also ask about names, numbers and dates by rule")
    generator_model: str | None = Field(
        None, description="model that writes the questions: a folder, an HF id or openai:MODEL; default: the model itself")
    generator_base_url: str = Field("http://localhost:8000/v1", description="endpoint of an openai:MODEL generator")
    generator_api_key: SecretStr | None = Field(None, description="key for that endpoint; default: $OPENAI_API_KEY")
    gate_min_efficacy: float = Field(0.25, ge=0, le=1, description="probe 'contains' new experiences must reach")
    gate_retention_tolerance: float = Field(0.15, ge=0, le=1, description="allowed drop on earlier experiences")
    gate_general_tolerance: float = Field(0.1, ge=0, le=1, description="allowed drop on general questions")
    gate_perplexity_tolerance: float = Field(0.15, ge=0, description="allowed relative rise of chat perplexity")

    # Storage
    db_timeout_s: float = Field(10.0, gt=0, description="how long to wait for another process's write lock")

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
        # Earlier sources win: flags, then environment, then the TOML file passed in by load().
        return init_settings, env_settings


def load_settings(home: str | Path | None = None, **overrides: Any) -> Settings:
    """Resolve every setting, or raise one ConfigError line naming the bad key and its source."""
    root = data_home(home)
    file_values = read_config_file(root)
    flags = {k: v for k, v in overrides.items() if v is not None}
    unknown = sorted(set(flags) - set(Settings.model_fields))
    if unknown:
        raise ConfigError(f"unknown setting {unknown[0]!r}")
    env_keys = {name for name in Settings.model_fields if f"REVERIE_{name.upper()}" in os.environ}
    # The file fills only what neither flags nor the environment set.
    values = {k: v for k, v in file_values.items() if k not in flags and k not in env_keys}
    try:
        return Settings(**values, **flags, home=root)
    except ValidationError as exc:
        error = exc.errors()[0]
        key = ".".join(str(p) for p in error["loc"]) or "settings"
        origin = _origin(key, flags, env_keys, file_values)
        source = {"flag": "from a flag", "env": f"from REVERIE_{key.upper()}",
                  "file": f"from {root / CONFIG_FILE}", "default": "default"}[origin]
        raise ConfigError(f"bad setting {key} ({source}): {error['msg']}") from exc


def read_config_file(home: Path) -> dict[str, Any]:
    path = home / CONFIG_FILE
    if not path.is_file():
        return {}
    try:
        values = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from exc
    if "home" in values:
        raise ConfigError(f"{path} cannot set home (it is read from the home); use REVERIE_HOME or --home")
    unknown = sorted(set(values) - set(Settings.model_fields))
    if unknown:
        raise ConfigError(f"unknown setting {unknown[0]!r} in {path}")
    return values


def setting_sources(settings: Settings, overrides: dict[str, Any]) -> dict[str, str]:
    """Where each resolved value came from: default, file, env or flag (for `config show`)."""
    flags = {k: v for k, v in overrides.items() if v is not None}
    env_keys = {name for name in Settings.model_fields if f"REVERIE_{name.upper()}" in os.environ}
    file_values = read_config_file(settings.home)
    return {name: _origin(name, flags, env_keys, file_values) for name in Settings.model_fields}


def _origin(key: str, flags: dict, env_keys: set[str], file_values: dict) -> str:
    """The precedence, written once: flag > env > file > default."""
    if key in flags:
        return "flag"
    if key in env_keys:
        return "env"
    if key in file_values:
        return "file"
    return "default"
