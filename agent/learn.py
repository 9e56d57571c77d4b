"""One night, run now: the agent's wiring of the nightly graph (``graphs.nightly``): which weights
it starts from, who writes the questions, which committee cleans the feedback, which steps run,
and the report a person reads."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from filelock import FileLock, Timeout
from pydantic import BaseModel

from agent import judges
from agent.errors import Interrupted, InvalidInput, StoreError
from agent.inputs import required
from agent.recommend import remember_tastes
from learners.training import NullProgress, Progress

if TYPE_CHECKING:
    from agent.facade import Agent

# The steps a night can run, in order; `learn --only STEP` runs one of them. "cory" (refine)
# runs by default only when a reward is configured ([refine] reward).
STEPS = ("clean", "selfparam", "cory")


class LearnReport(BaseModel):
    """What one consolidation did, as `learn` returns it and `learn --json` prints it."""

    run_id: int | None = None  # None when nothing was trained (nothing new, or a dry run)
    dry_run: bool
    user: str
    parent: str  # the version active when it started
    cleaning: dict[str, Any] | None = None  # feedback cleaned first: run_id (the view), method, judged, counts
    stop: str | None = None  # why it ended early
    extracted: list[dict[str, Any]] = []  # informative chat turns turned into experiences
    new: list[int] = []
    deferred: list[int] = []  # new experiences past learn.max_new, left for a later night
    retried: list[int] = []  # refused on an earlier night, tried again tonight
    parked: list[int] = []  # refused on learn.max_attempts nights: left to recall, no longer trained
    synthesis: dict[str, Any] = {}  # per experience: yield, probes set aside, pairs written
    target_set: dict[str, int] | None = None  # sentences by kind (new, replay) and adapters trained
    training: dict[str, Any] | None = None
    figures: dict[str, Any] | None = None  # the candidate: efficacy, retention, pollution, general ability,
    # and per new adapter ("candidate.<k>"): its experiences, efficacy, general ability
    current: dict[str, Any] | None = None  # the version it started from, for comparison
    passed: bool | None = None
    reasons: list[str] = []  # why the gate refused, one line per failed check
    kept: list[str] = []  # tonight's adapters the gate kept (the version names them "<version>.<k>")
    retrained: dict[str, list[str]] = {}  # adapters that hurt the model, trained again with the KL alone:
    # what the gate refused them for the first time
    version: str | None = None
    promoted: bool = False
    consolidated: list[int] = []
    relapsed: list[int] = []
    pruned: list[str] = []
    judges: dict[str, Any] | None = None  # the card's date and the modes it set (agent.judges.Modes)
    refine: dict[str, Any] | None = None  # the refine step (graphs.refine): prompts, training curve,
    # figures, current, passed, reasons, version, promoted; or stop. None: not run
    tastes: dict[str, list[dict[str, Any]]] = {}  # per catalogue, the tastes read from the promoted weights
    seconds: float


def learn(agent: Agent, user: str, dry_run: bool, only: str | None, progress: Progress | None) -> LearnReport:
    """Consolidate ``user``'s new experiences now (see ``Agent.learn``)."""
    if only is not None and only not in STEPS:
        raise InvalidInput(f"unknown step {only!r}; a night's steps are: {', '.join(STEPS)}")
    user = required(user, "user")
    if only == "cory" and not agent.settings.refine.reward:
        raise InvalidInput("no reward to refine with: set [refine] reward (exact or rm:MODEL)")
    steps = frozenset(STEPS if only is None else (only,))
    progress = _Stoppable(progress or NullProgress(), agent.stopping)
    report = agent.on_model_thread(_night, agent, user, dry_run, steps, progress)
    return LearnReport(**{k: report.get(k) for k in LearnReport.model_fields if k in report})


class _Stoppable:
    """The night's progress, which also stops the night at its next step when asked (Ctrl-C)."""

    def __init__(self, progress: Progress, stopping) -> None:
        self.progress, self.stopping = progress, stopping

    def phase(self, description: str, total: int | None = None):
        advance = self.progress.phase(description, total)

        def step(units: int = 1) -> None:
            if self.stopping.is_set():
                raise Interrupted("learning stopped on request; the active version is unchanged")
            advance(units)

        return step

    def note(self, text: str) -> None:
        self.progress.note(text)


def learn_lock(agent: Agent, timeout: float = -1) -> FileLock:
    """One night at a time per home: two would both train from the same parent and race to
    promote. Whatever deletes versions (prune) or finishes abandoned runs takes it too."""
    locks = agent.settings.home / "locks"
    locks.mkdir(exist_ok=True)
    return FileLock(str(locks / "learn.lock"), timeout=timeout)


def prune(agent: Agent, keep: int) -> list[str]:
    """Delete old versions' weights, never while a night writes one (waits ``db_timeout_s``)."""
    if keep < 0:
        raise InvalidInput("keep must be 0 or more")
    agent.ensure_base()
    try:
        with learn_lock(agent, timeout=agent.settings.db_timeout_s):
            return agent.versions.prune(agent.settings.model, keep)
    except Timeout as exc:
        raise StoreError("a learn is running on this home; prune once it is done") from exc


def recover(agent: Agent) -> list[int]:
    """Finish the runs a killed process left "running" and clear its staging folders, unless a
    night is running right now (then it is that night's, and nothing is touched)."""
    if not agent.retention.unfinished():
        return []
    try:
        with learn_lock(agent, timeout=0):
            return _recover(agent)
    except Timeout:
        return []


def _recover(agent: Agent) -> list[int]:
    finished = agent.retention.reconcile()
    agent.versions.clear_debris()
    for scratch in (agent.settings.home / "cache").glob("night-*"):  # a dead night's trained adapters
        shutil.rmtree(scratch, ignore_errors=True)
    return finished


def _night(agent: Agent, user: str, dry_run: bool, steps: frozenset[str], progress: Progress) -> dict:
    from agent.feedback import committee
    from graphs.nightly import NightContext, run_night

    s = agent.settings
    base_source = agent.ensure_base()
    with learn_lock(agent):
        _recover(agent)  # a night killed earlier: its run finished, its debris gone, before this one
        if not dry_run and judges.load_card(s) is None:  # the first night measures how far to trust the judges
            progress.note(f"measuring the judges of {s.model} (once per model: its card)")
            judges.measure(agent, None, progress)
        cleaning = "clean" in steps and s.learn.clean_feedback and not dry_run
        members = committee(agent) if cleaning else None
        mode = judges.cleaning_mode(agent, members, progress) if members else None
        context = NightContext(
            store=agent.store, retention=agent.retention, versions=agent.versions, base_model=s.model,
            active=agent.versions.active(s.model), load_base=lambda: _load_weights(agent, base_source),
            make_backend=lambda tokenizer, model, version: _backend_over(agent, tokenizer, model, version),
            user=user, system_prompt=s.system_prompt, learn=s.learn, selfparam=s.selfparam, synthesis=s.synthesis,
            thresholds=s.gate, cache=s.home / "cache", route_min_score=s.route_min_score,
            generator=_generator(agent) if "selfparam" in steps else None,
            committee=members, clean_method=s.clean_method, clean_mode=mode.value if mode else "audit",
            clean_mode_reason=mode.reason if mode else "",
            consolidate="selfparam" in steps, keep_versions=s.keep_versions, dry_run=dry_run, progress=progress,
        )
        report = run_night(context)
        if "cory" in steps and s.refine.reward and not dry_run:
            report["refine"] = _refine(agent, user, base_source, progress)
    report["judges"] = agent.judge_modes().model_dump()
    if report.get("promoted") or (report.get("refine") or {}).get("promoted"):
        agent.sync_version()  # hot reload: the next turn answers from the new weights
        try:
            report["tastes"] = remember_tastes(agent, user, progress)
        except Interrupted:  # the version stands; the first recommendation reads them instead
            progress.note("stopped before the tastes were read; the next recommendation reads them")
    return report


def _refine(agent: Agent, user: str, base_source, progress: Progress) -> dict:
    """The refine step after consolidation, from the version active now (tonight's, if promoted)."""
    from agent.llm.protocol import GenerationOptions
    from agent.llm.transformers_backend import pick_device
    from graphs import rewards
    from graphs.refine import RefineContext, run_refine
    from graphs.routing import policy_of

    s, r = agent.settings, agent.settings.refine
    answers = _prompt_set(r.prompts) if r.prompts else {}
    exact = r.reward == "exact"
    modes = agent.judge_modes()
    if r.reward == "comparator" and not modes.choice_check.trusted:
        return {"stop": f"the comparator is not trusted as a reward: {modes.choice_check.reason}"}
    if r.reward == "codejudge" and not modes.code_check.trusted:
        return {"stop": f"CodeJudge is not trusted as a reward: {modes.code_check.reason}"}
    spec = r.reward
    if spec == "feedback":  # a reward model trained on the cleaned view's pairs only
        trained = _feedback_reward_model(agent, base_source, progress)
        if isinstance(trained, str):
            return {"stop": trained}
        spec = f"rm:{trained}"
    context = RefineContext(
        store=agent.store, retention=agent.retention, versions=agent.versions, active=agent.versions.active(s.model),
        load_base=lambda: _load_weights(agent, base_source),
        make_backend=lambda tokenizer, model, version: _backend_over(agent, tokenizer, model, version),
        user=user, system_prompt=s.system_prompt,
        reward=rewards.from_spec(spec, {p: a for p, a in answers.items() if a is not None},
                                 str(pick_device(s.device)), judge=agent.backend,
                                 served=lambda message: agent.backend.generate(
                                     [{"role": "user", "content": message}],
                                     GenerationOptions(max_new_tokens=s.cory.max_new_tokens,
                                                       adapter=policy_of(agent.library, user))).text),
        config=s.cory, prompt_set=[p for p, a in answers.items() if a is not None or not exact],
        from_turns=r.from_turns and not exact, max_prompts=r.max_prompts, min_prompts=r.min_prompts,
        min_gain=r.min_gain, max_kl=r.max_kl, thresholds=s.gate, cache=s.home / "cache",
        route_min_score=s.route_min_score, progress=progress)
    final = run_refine(context)
    return {k: final.get(k) for k in ("prompts", "stop", "training", "figures", "current", "passed", "reasons",
                                      "version", "promoted")}


def _feedback_reward_model(agent: Agent, base_source, progress: Progress) -> Path | str:
    """The reward model of the newest cleaned view (trained now, or kept from an earlier night of
    the same view), or why there is none. Only feedback that survived cleaning trains it."""
    import hashlib

    from agent.llm.transformers_backend import pick_device
    from graphs.cleaning import Cleaning, cleaned_preferences
    from learners import reward_model as rm

    run = Cleaning(agent.store).latest()
    if run is None:
        return "no cleaned feedback yet for the feedback reward (`reverie feedback clean`)"
    model = hashlib.sha1(agent.settings.model.encode()).hexdigest()[:8]
    folder = agent.settings.home / "cache" / "reward-models" / f"{model}-cleaning-{run['id']}"
    if (folder / "config.json").is_file():
        return folder
    pairs = [rm.Pair(row["prompt"], row["chosen"], row["rejected"]) for row in cleaned_preferences(agent.store, run["id"])]
    config = rm.RewardConfig()
    if len(pairs) < config.min_pairs:
        return f"{len(pairs)} preference pairs in the cleaned view; the feedback reward needs {config.min_pairs}"
    model_, tokenizer = rm.load(base_source, str(pick_device(agent.settings.device)))
    trained = rm.train(model_, tokenizer, pairs, config, progress, agent.stopping)
    staging = folder.with_name(folder.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    rm.save(trained.model, tokenizer, staging)
    staging.replace(folder)  # whole or absent: a killed night leaves only the staging folder
    return folder


def refines(agent: Agent) -> list[dict[str, Any]]:
    """Every refine's version, oldest first: its user, whether it was promoted, its training curve
    (the pioneer's reward and KL per iteration) and its gate figures."""
    promoted = {e.version for e in agent.versions.history(agent.settings.model) if e.action == "promote"}
    return [{"version": v.id, "user": v.manifest["user"], "promoted": v.id in promoted,
             "curve": v.manifest["refine"]["training"]["curve"], "figures": v.manifest["refine"]["figures"],
             "current": v.manifest["refine"]["current"], "reasons": v.manifest["refine"]["gate"]["reasons"]}
            for v in agent.versions.list(agent.settings.model) if v.learner == "cory"]


def _prompt_set(path) -> dict[str, float | None]:
    """``[refine] prompts``: one JSON object a line, {"prompt": ..., "answer": ...} (answer optional)."""
    import json

    try:
        lines = path.expanduser().read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"cannot read the prompt set {path}: {exc}") from exc
    prompts: dict[str, float | None] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            prompt, answer = row["prompt"].strip(), row.get("answer")
            prompts[prompt] = None if answer is None else float(answer)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise InvalidInput(f"{path}, line {number}: expected {{\"prompt\": text, \"answer\": number}} "
                               f"({type(exc).__name__}: {exc})") from exc
    return prompts


def _load_weights(agent: Agent, source):
    from agent.llm.transformers_backend import load_pretrained, pick_device, pick_dtype

    device = pick_device(agent.settings.device)
    return load_pretrained(source, device, pick_dtype(agent.settings.dtype, device))


def _backend_over(agent: Agent, tokenizer, model, version: str):
    from agent.llm.transformers_backend import TransformersBackend

    backend = TransformersBackend.from_model(tokenizer, model, name=agent.settings.model, version=version,
                                             max_context=agent.settings.context_window)
    backend.stop = agent.stopping
    return backend


def _generator(agent: Agent):
    """The question writer, when one other than the served model is configured."""
    from agent.llm import load_backend

    s = agent.settings
    if not s.generator_model:
        return None
    key = s.generator_api_key.get_secret_value() if s.generator_api_key else None
    generator = load_backend(s.generator_model, models_dir=s.models_path, device=s.device, dtype=s.dtype,
                             base_url=s.generator_base_url, api_key=key)
    generator.stop = agent.stopping
    return generator
