"""Shared fixtures. No test touches a real home, and nothing is downloaded.

Models: the embedded SmolLM2 is converted once into pytest's cache folder (about 30 s on a clean
clone, then reused across runs); the tiny random model is built from its tokenizer. Every test
gets a fresh data home in a temp dir.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The project's test data: $REVERIE_DATA_DIR, else ../shared/data beside the checkout."""
    folder = Path(os.environ.get("REVERIE_DATA_DIR") or ROOT.parent / "shared" / "data")
    if not (folder / "facts").is_dir():
        pytest.fail(f"test data not found in {folder}; set REVERIE_DATA_DIR to the shared data folder")
    return folder


@pytest.fixture(scope="session")
def models_dir(request) -> Path:
    """Converted base models, shared by every test and kept between runs, with planted cards."""
    folder = Path(request.config.cache.mkdir("reverie-models"))
    for spec in (str(folder / "tiny-random"), str(folder / "tiny-random-b"), "embedded:smollm2-135m-instruct"):
        plant_card(folder, spec, CHANCE)
    return folder


# A judge card at chance, close to what the embedded model measured (README, "Judges"): planted
# so that a night does not spend minutes measuring one in every test. Measuring a card is tested
# on its own (tests/agent/test_judges.py), on a smaller measuring set and a models folder of its own.
CHANCE = {"codejudge": {"binary": {"items": 12, "invalid_rate": 0.0, "kendall_tau": -0.2, "accuracy": 0.42,
                                   "s_per_item": 27.0},
                        "graded": {"items": 12, "invalid_rate": 0.2, "kendall_tau": None, "accuracy": 0.49,
                                   "s_per_item": 6.0}},
          "comparator": {"raw": {"s_comm": 0.0, "s_neg": 0.0, "s_tran_3": 1.0, "agreement": 0.5},
                         "calibrated": {"s_comm": 1.0, "s_neg": 0.02, "s_tran_3": 0.99, "agreement": 0.61}},
          "committee": {"accuracy": 0.62, "pairs": 24, "abstained": 0},
          "qa": {"contains": 0.65, "questions": 10}, "seconds": 0.0}


def plant_card(models_path: Path, spec: str, figures: dict) -> None:
    """A card for ``spec`` with ``figures`` (its committee: the default members over ``spec``)."""
    from agent.judges import Card, card_path, save_card
    from graphs.verify import prompts
    from graphs.verify.card import data_version

    members = [f"judge:{c}:{spec}:p{prompts.VERSION}" for c in ("helpful", "correct", "harmless")]
    figures = {**figures, "committee": {**figures["committee"], "members": members + [
        f"codejudge:binary:{spec}:p{prompts.VERSION}"]}}
    save_card(Card(model=spec, measured_at="2026-11-30T00:00:00+00:00", data=data_version(), figures=figures),
              card_path(models_path, spec))


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch, models_dir) -> Path:
    for name in list(os.environ):
        if name.startswith("REVERIE_"):
            monkeypatch.delenv(name)
    home = tmp_path / "home"
    monkeypatch.setenv("REVERIE_HOME", str(home))
    monkeypatch.setenv("REVERIE_MODELS_DIR", str(models_dir))
    return home


@pytest.fixture(scope="session")
def embedded_dir(models_dir) -> Path:
    from agent.llm.embedded import ensure_converted

    return ensure_converted("smollm2-135m-instruct", models_dir)


def _tiny(models_dir: Path, tokenizer_dir: Path, name: str, seed: int) -> Path:
    from agent.llm.tiny import build_tiny_model

    folder = models_dir / name
    if not (folder / "config.json").is_file():
        build_tiny_model(folder, tokenizer_dir, seed=seed)
    return folder


@pytest.fixture(scope="session")
def tiny_dir(models_dir, embedded_dir) -> Path:
    return _tiny(models_dir, embedded_dir, "tiny-random", seed=0)


@pytest.fixture(scope="session")
def tiny_dir_b(models_dir, embedded_dir) -> Path:
    """A second tiny model with other weights: a 'new version' to reload."""
    return _tiny(models_dir, embedded_dir, "tiny-random-b", seed=1)


@pytest.fixture(scope="session")
def tiny_backend(tiny_dir):
    from agent.llm.transformers_backend import TransformersBackend

    return TransformersBackend(tiny_dir, device="cpu")


@pytest.fixture(scope="session")
def embedded_backend(embedded_dir):
    from agent.llm.transformers_backend import TransformersBackend

    return TransformersBackend(embedded_dir, name="embedded:smollm2-135m-instruct", device="cpu")


@pytest.fixture
def tiny_agent(home, tiny_dir):
    from agent import Agent

    bot = Agent.open(home, model=str(tiny_dir), max_new_tokens=8)
    yield bot
    bot.close()


@pytest.fixture
def reverie():
    """Run the real `reverie` console script in a new process (with this test's environment)."""

    def run(*args: str, input: str | None = None, env: dict | None = None, timeout: float = 300):
        exe = Path(sys.executable).with_name("reverie")
        return subprocess.run(
            [str(exe), *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, **(env or {})},
        )

    return run
