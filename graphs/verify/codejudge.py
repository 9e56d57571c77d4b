"""CodeJudge (arXiv 2410.02184): is this code correct? Judged by the model, without running tests.

Three modes, each a plain function of (backend, task):

- **binary**, "analyze then summarize": call 1 analyses whether the code covers what the
  problem requires (a reference solution, when given, only explains the problem); call 2 turns
  that analysis into Yes/No with a budget of a few tokens.
- **graded**, taxonomy-guided: one call lists the inconsistencies with severities, and
  score = max(0, 100 - 5*small - 50*major - 100*fatal) / 100 (the graded variant the paper's text
  describes, not the binarised one its code shipped with).
- **plain**, the baseline the evaluation compares against: "is this code correct? Yes or No".

Greedy by default; ``samples > 1`` samples that many runs (the paper: temperature 0.4, top-p 0.9,
3 samples for open models) and averages their scores. Whatever cannot be parsed is an explicit
``invalid`` verdict, counted, never guessed.

Departures from the paper: call 2 is parsed on its first word only ("not" and "cannot" are not
"no"; the paper's substring check on the first and last lines would take them as such); an
inconsistency whose severity is missing *and* matches no taxonomy entry makes the verdict
invalid instead of being dropped; analyses are capped at ``analysis_tokens`` (the paper: 2000).
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, replace
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from agent.errors import InvalidInput
from agent.llm.protocol import Backend, GenerationOptions
from graphs.verify import prompts

Mode = Literal["binary", "graded", "plain"]
MODES: tuple[str, ...] = ("binary", "graded", "plain")

# Language tags people and code fences use -> the name the prompts say.
LANGUAGES = {
    "python": "Python", "py": "Python", "python3": "Python",
    "cpp": "C++", "c++": "C++", "cc": "C++", "c": "C",
    "java": "Java", "js": "JavaScript", "javascript": "JavaScript", "node": "JavaScript",
    "ts": "TypeScript", "typescript": "TypeScript", "go": "Go", "golang": "Go",
    "rust": "Rust", "rs": "Rust", "cs": "C#", "csharp": "C#", "c#": "C#",
    "rb": "Ruby", "ruby": "Ruby", "php": "PHP", "swift": "Swift", "kotlin": "Kotlin", "kt": "Kotlin",
    "scala": "Scala", "sh": "Shell", "bash": "Shell", "shell": "Shell", "sql": "SQL", "r": "R",
    "haskell": "Haskell", "hs": "Haskell", "lua": "Lua", "perl": "Perl", "julia": "Julia",
}


def language_name(tag: str) -> str:
    """The display name of a language tag; an unknown tag is an error that lists the known ones."""
    name = LANGUAGES.get(tag.strip().lower())
    if name is None:
        known = ", ".join(sorted({k for k in LANGUAGES if k.isalpha() or k in ("c++", "c#")}))
        raise InvalidInput(f"unknown language {tag!r}; known: {known}")
    return name


MAX_SAMPLES = 16  # sampled runs of one judgement, at most (each is a full analysis)

@dataclass(frozen=True)
class CodeTask:
    """What is judged: ``code`` as an answer to ``problem`` (``language`` None: not stated)."""

    problem: str
    code: str
    language: str | None = "Python"
    examples: str = ""
    reference: str | None = None

    def __post_init__(self) -> None:
        for field, text in (("problem", self.problem), ("code", self.code), ("reference", self.reference or "x")):
            if not text.strip():
                raise InvalidInput(f"the {field} is empty")
            if "\x00" in text:
                raise InvalidInput(f"the {field} is binary data, not text")

    def messages(self, build) -> list:
        return build(self.problem, self.code, self.language, self.examples, self.reference)


@dataclass(frozen=True)
class JudgeConfig:
    samples: int = 1  # 1 = greedy; more = sampled runs, averaged
    temperature: float = 0.4  # for sampled runs only
    top_p: float = 0.9
    analysis_tokens: int = 384  # call 1 of binary, and the graded call
    verdict_tokens: int = 10  # call 2 of binary, and the plain baseline
    budget_s: float | None = None  # wall-clock limit for the whole judgement


class CodeVerdict(BaseModel):
    """One judgement. ``score``: the share of Yes (binary, plain) or the severity score (graded),
    averaged over the valid samples; ``result`` is yes when score >= 0.5 (binary, plain) or
    == 1.0 (graded: the code has nothing above Negligible)."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["code"] = "code"
    mode: Mode
    result: Literal["yes", "no", "invalid"]
    score: float | None
    analysis: str  # the analysis (binary), the JSON list (graded) or the answer (plain) of sample 1
    inconsistencies: list[dict[str, str]] = []  # graded only, from sample 1
    samples: int
    invalid: int  # samples whose output could not be parsed (or ran out of time)
    reason: str | None = None  # why the verdict is invalid
    language: str | None = None
    latency_s: float
    prompts: int = prompts.VERSION


# -- parsing model output -------------------------------------------------------------------

_LEADING_NOISE = " \t\r\n\"'`*_#:>-([."
_FIRST_WORD = re.compile(r"[A-Za-z]+")


def parse_yes_no(text: str) -> bool | None:
    """True for Yes, False for No, None for anything else; judged on the first word only."""
    match = _FIRST_WORD.match(text.lstrip(_LEADING_NOISE))
    word = match.group(0).lower() if match else ""
    return {"yes": True, "no": False}.get(word)


_FENCE = re.compile(r"```[A-Za-z0-9_+#-]*[ \t]*\n(.*?)```", re.DOTALL)
_JSON_START = re.compile(r'\[\s*[{\]"]|\{\s*["}]')  # where a list of objects, or an object, begins


def extract_json(text: str) -> Any | None:
    """The first JSON list or object in ``text``: inside a code fence first, else in the prose.

    Only the first place that looks like JSON is tried: a truncated list is unusable, and its
    first complete object must not pass for the whole answer.
    """
    for candidate in [*_FENCE.findall(text), text]:
        start = _JSON_START.search(candidate)
        if start is None:
            continue
        try:
            value, _ = json.JSONDecoder().raw_decode(candidate, start.start())
        except ValueError:
            continue
        if isinstance(value, (list, dict)):
            return value
    return None


SEVERITIES = ("negligible", "small", "major", "fatal")
# The taxonomy, by keyword, for an inconsistency that names no severity.
_TAXONOMY = (
    (re.compile(r"different (method|algorithm|approach)", re.I), "negligible"),
    (re.compile(r"import|dependenc", re.I), "negligible"),
    (re.compile(r"error message", re.I), "negligible"),
    (re.compile(r"ineffici|unnecessary|redundant", re.I), "negligible"),
    (re.compile(r"edge case|corner case", re.I), "small"),
    (re.compile(r"logic", re.I), "major"),
    (re.compile(r"not defined|undefined|undeclared", re.I), "fatal"),
    (re.compile(r"incomplete|not complete", re.I), "fatal"),
)
_NONE = {"", "none", "no inconsistency", "no inconsistencies", "n/a"}


def parse_inconsistencies(text: str) -> list[dict[str, str]] | None:
    """The inconsistencies a graded answer lists, each with a known severity; None if unusable.

    A lone object counts as a one-item list; an entry saying "None" is no inconsistency.
    """
    data = extract_json(text)
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        return None
    found = []
    for item in data:
        what = str(item.get("inconsistency", "")).strip()
        if what.lower().rstrip(".") in _NONE:
            continue
        severity = str(item.get("severity", "")).strip().lower()
        if severity not in SEVERITIES:
            severity = next((level for pattern, level in _TAXONOMY if pattern.search(what)), None)
            if severity is None:
                return None
        found.append({"inconsistency": what, "severity": severity})
    return found


def severity_score(inconsistencies: list[dict[str, str]]) -> float:
    """max(0, 100 - 5 per Small - 50 per Major - 100 per Fatal) / 100."""
    weight = {"negligible": 0, "small": 5, "major": 50, "fatal": 100}
    return max(0, 100 - sum(weight[i["severity"]] for i in inconsistencies)) / 100


# -- judging --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Sample:
    score: float | None  # None: invalid
    text: str
    reason: str | None = None
    inconsistencies: list[dict[str, str]] | None = None


class _Clock:
    """The time budget of one judgement, handed to each generation as its max_time."""

    def __init__(self, budget_s: float | None) -> None:
        self.start, self.budget_s = time.monotonic(), budget_s

    def left(self) -> float | None:
        return None if self.budget_s is None else self.budget_s - (time.monotonic() - self.start)


def _options(config: JudgeConfig, tokens: int, sample: int, clock: _Clock) -> GenerationOptions | None:
    left = clock.left()
    if left is not None and left <= 0:
        return None
    if config.samples == 1:
        return GenerationOptions(max_new_tokens=tokens, max_time_s=left)
    return GenerationOptions(max_new_tokens=tokens, temperature=config.temperature, top_p=config.top_p,
                             seed=sample, max_time_s=left)


_OUT_OF_TIME = _Sample(None, "", "over the time budget")


def _ask(backend: Backend, messages, prefill: str, options: GenerationOptions | None) -> str | None:
    """One call of a judge; None when the time budget is spent before it starts."""
    return None if options is None else backend.generate(messages, options, prefill=prefill).text


def _yes_no(answer: str, shown: str, said: str) -> _Sample:
    verdict = parse_yes_no(answer)
    if verdict is None:
        return _Sample(None, shown, f"the {said} said {answer[:40]!r}, not Yes or No")
    return _Sample(float(verdict), shown)


def _binary(backend: Backend, task: CodeTask, config: JudgeConfig, sample: int, clock: _Clock) -> _Sample:
    analysis = _ask(backend, task.messages(prompts.analyze), prompts.ANALYZE_PREFILL,
                    _options(config, config.analysis_tokens, sample, clock))
    if analysis is None:
        return _OUT_OF_TIME
    # Call 2 is always greedy: sampling is for the analysis, the summary only reads it.
    answer = _ask(backend, prompts.summarize(analysis), prompts.SUMMARIZE_PREFILL,
                  _options(replace(config, samples=1), config.verdict_tokens, sample, clock))
    return replace(_OUT_OF_TIME, text=analysis) if answer is None else _yes_no(answer, analysis, "summary")


def _plain(backend: Backend, task: CodeTask, config: JudgeConfig, sample: int, clock: _Clock) -> _Sample:
    answer = _ask(backend, task.messages(prompts.plain), prompts.PLAIN_PREFILL,
                  _options(config, config.verdict_tokens, sample, clock))
    return _OUT_OF_TIME if answer is None else _yes_no(answer, answer, "answer")


def _graded(backend: Backend, task: CodeTask, config: JudgeConfig, sample: int, clock: _Clock) -> _Sample:
    answer = _ask(backend, task.messages(prompts.graded), prompts.GRADED_PREFILL,
                  _options(config, config.analysis_tokens, sample, clock))
    if answer is None:
        return _OUT_OF_TIME
    found = parse_inconsistencies(answer)
    if found is None:
        return _Sample(None, answer, "no usable JSON list of inconsistencies")
    return _Sample(severity_score(found), answer, inconsistencies=found)


_JUDGES = {"binary": _binary, "graded": _graded, "plain": _plain}


def judge_code(backend: Backend, task: CodeTask, mode: Mode = "binary", config: JudgeConfig = JudgeConfig()) -> CodeVerdict:
    """Judge ``task.code`` against ``task.problem``; see the module docstring for the modes."""
    if mode not in _JUDGES:
        raise InvalidInput(f"unknown mode {mode!r}; use one of {', '.join(MODES)}")
    if not 1 <= config.samples <= MAX_SAMPLES:
        raise InvalidInput(f"samples must be between 1 and {MAX_SAMPLES}")
    clock = _Clock(config.budget_s)
    runs = [_JUDGES[mode](backend, task, config, i, clock) for i in range(config.samples)]
    valid = [r.score for r in runs if r.score is not None]
    score = round(sum(valid) / len(valid), 4) if valid else None
    if score is None:
        result = "invalid"
    else:
        result = "yes" if (score == 1.0 if mode == "graded" else score >= 0.5) else "no"
    first = runs[0]
    return CodeVerdict(
        mode=mode, result=result, score=score, analysis=first.text,
        inconsistencies=first.inconsistencies or [], samples=len(runs), invalid=len(runs) - len(valid),
        reason=next((r.reason for r in runs if r.reason), None) if score is None else None,
        language=task.language, latency_s=round(time.monotonic() - clock.start, 3),
    )
