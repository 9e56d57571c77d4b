"""SELF-PARAM on the embedded model, side by side with its baselines, in one run.

    python examples/reproduce_selfparam.py                       # embedded SmolLM2-135M, 2 cores
    python examples/reproduce_selfparam.py --model PATH_OR_ID --facts 20 --nights 10

On ../shared/data/facts/facts_dev.jsonl, with the QA pairs reverie writes itself
(learners.synthesis; the dataset's own "train" questions are not used), evaluated on the
dataset's held-out paraphrases and, as "unseen", on those plus its "train" questions (nothing
trains on either: 5 questions a fact instead of 2):

  batch (the first --facts facts in one target set, from the base model)
    no context      the weights alone: the floor
    in context      the fact in the system prompt, as recall puts it: the upper bound
    FT(C)           cross-entropy language modelling on the raw fact text
    FT(S)           cross-entropy on the answers of the same QA sentences SELF-PARAM uses
    SELF-PARAM      KL distillation from the model that sees the fact, plus replay
  single            SELF-PARAM on one fact at a time from the base (--single facts)
  sequential        the product itself: `Agent.learn` every night on --per-night new facts for
                    --nights nights, with rehearsal of --rehearse earlier facts and the gate

Reported per condition: held-out "contains" and QA-F1, near-miss pollution (a near-miss
question answered with one of the fact's own answers), general questions and chat perplexity,
seconds of learning per fact, and peak memory. Writes JSON and a retention PNG.
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agent import Agent  # noqa: E402
from agent.llm import resolve_model  # noqa: E402
from agent.llm.transformers_backend import TransformersBackend, load_pretrained, pick_device, pick_dtype  # noqa: E402
from agent.progress import Bars  # noqa: E402
from agent.settings import LearnSettings, load_settings  # noqa: E402
from graphs.prompt import system_message  # noqa: E402
from learners import evaluate as ev  # noqa: E402
from learners.finetune import train_ce  # noqa: E402
from learners.metrics import normalize_answer  # noqa: E402
from learners.selfparam import SelfParamConfig, replay_count, replay_pairs, target_set, train  # noqa: E402
from learners.synthesis import SynthesisConfig, synthesize  # noqa: E402

SYSTEM = "You are a helpful AI assistant."  # reverie's default system prompt
METHODS = ("FT(C)", "FT(S)", "SELF-PARAM")  # the trained batch conditions, in the table's order


def teacher_system(fact: str) -> str:
    return system_message(SYSTEM, [fact])["content"]


class Results(dict):
    """A long benchmark's figures: resumed from its JSON (when ``resume``), written again by
    ``save`` after each figure, so a run stopped near its end keeps what it measured."""

    def __init__(self, parser: argparse.ArgumentParser, args: argparse.Namespace, resume: bool = True) -> None:
        super().__init__(json.loads(args.json.read_text()) if resume and args.json.is_file() else {})
        if self.get("args", {}).get("model", args.model) != args.model:
            parser.error(f"{args.json} holds a run of another model; give --json for this one")
        self["args"] = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
        self.path = args.json

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(self, indent=1))


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Bench:
    def __init__(self, args, console: Console) -> None:
        self.args, self.console = args, console
        settings = load_settings(model=args.model, **({"models_dir": args.models_dir} if args.models_dir else {}))
        self.source = resolve_model(args.model, settings.models_path)
        self.models_dir = settings.models_path
        self.device = pick_device("auto")
        self.config = SelfParamConfig(lr=args.lr, epochs=args.epochs, lora_r=args.lora_r, answer_ce=args.answer_ce)

    def fresh(self):
        gc.collect()
        return load_pretrained(self.source, self.device, pick_dtype("auto", self.device))

    def backend(self, tokenizer, model, version: str):
        return TransformersBackend.from_model(tokenizer, model, name=self.args.model, version=version)

    def evaluate(self, backend, facts: list[dict], systems: list[str] | None = None) -> dict:
        """Held-out, other unseen and near-miss questions of ``facts``; general ability.
        ``systems``: per-fact prompts."""
        held = [(i, qa) for i, f in enumerate(facts) for qa in f["qa"] if qa["split"] == "heldout"]
        # The data set's "train" questions are unseen too: reverie writes its own. With them a
        # condition is scored on 5 questions a fact instead of 2, so one answer moves it less.
        other = [(i, qa) for i, f in enumerate(facts) for qa in f["qa"] if qa["split"] != "heldout"]
        questions = [qa["q"] for _, qa in held + other] + [f["near_miss"]["q"] for f in facts]
        per_fact = systems or [SYSTEM] * len(facts)
        prompts = [per_fact[i] for i, _ in held + other] + per_fact
        answers = ev.ask(backend, prompts, questions)
        unseen = [ev.score(a, qa["a"]) for a, (_, qa) in zip(answers, held + other)]
        scores = unseen[: len(held)]
        own = [[a for qa in f["qa"] for a in qa["a"]] for f in facts]
        pollution = [ev.polluted(a, own[i]) for i, a in enumerate(answers[len(held + other):])]
        return {
            "contains": round(statistics.mean(c for c, _ in scores), 3),
            "unseen_contains": round(statistics.mean(c for c, _ in unseen), 3),
            "f1": round(statistics.mean(f for _, f in scores), 3),
            "pollution": round(statistics.mean(pollution), 3),
            **ev.general_ability(backend, SYSTEM),
            "per_fact": [statistics.mean(c for (c, _), (j, _) in zip(scores, held) if j == i) for i in range(len(facts))],
            "held_out_answers": {qa["q"]: a for a, (_, qa) in zip(answers, held)},  # what each miss said
        }

    def synthesize(self, facts: list[dict], progress: Progress) -> tuple[list[list], dict]:
        """The QA pairs of ``facts``, written by the model (or ``--generator-model``) and answered by
        the model (or the generator, ``--generator-answers``); kept in ``--pairs`` and read back from
        it by a later run of the same writing."""
        tokenizer, model = self.fresh()
        base = self.backend(tokenizer, model, "base")
        self.replay = replay_pairs(base, SYSTEM)
        key = {"model": self.args.model, "generator": self.args.generator_model, "samples": self.args.samples,
               "facts": [f["context"] for f in facts]}
        if self.args.generator_answers:  # only then, so pairs kept before the option still match
            key["answers"] = "generator"
        kept_file = self.args.pairs
        if kept_file and kept_file.is_file() and (kept := json.loads(kept_file.read_text()))["key"] == key:
            return kept["pairs"], kept["summary"]
        generator = base
        if self.args.generator_model:
            generator = TransformersBackend(resolve_model(self.args.generator_model, self.models_dir),
                                            name=self.args.generator_model)
        task = progress.add_task("writing QA pairs", total=len(facts))
        pairs, reports = [], []
        started = time.perf_counter()
        for fact in facts:
            config = SynthesisConfig(samples=self.args.samples, generator_answers=self.args.generator_answers)
            kept, report = synthesize(generator, base, fact["context"], system_prompt=SYSTEM,
                                      teacher_system=teacher_system, config=config)
            pairs.append([(p.question, p.answer) for p in kept])
            reports.append(report.as_dict())
            progress.advance(task)
        written = {normalize_answer(q) for ps in pairs for q, _ in ps}
        summary = {
            "seconds_per_fact": round((time.perf_counter() - started) / len(facts), 1),
            "rule_pairs_per_fact": round(statistics.mean(r["kept_cloze"] for r in reports), 2),
            "model_pairs_per_fact": round(statistics.mean(r["kept"] - r["recited"] - r["kept_cloze"] for r in reports), 2),
            "recited_per_fact": round(statistics.mean(r["recited"] for r in reports), 2),
            "coverage": round(statistics.mean(r["coverage"] for r in reports), 3),
            # 0 unless the writer happened on one of the data set's own questions, word for word.
            "dataset_questions_written": sum(normalize_answer(qa["q"]) in written for f in facts for qa in f["qa"]),
            "generator": self.args.generator_model or self.args.model,
        }
        if kept_file:
            kept_file.parent.mkdir(parents=True, exist_ok=True)
            kept_file.write_text(json.dumps({"key": key, "pairs": pairs, "summary": summary}, indent=1))
        return pairs, summary

    def target(self, tokenizer, facts: list[dict], pairs: list[list]) -> list:
        """S for ``facts``: their QA sentences, each teacher seeing its own fact, plus replay (as the product)."""
        rows = [(i, f["context"], q, a) for i, (f, ps) in enumerate(zip(facts, pairs)) for q, a in ps]
        count = replay_count(len(rows), LearnSettings().replay, self.args.replay_ratio)
        rows += [(None, "", q, a) for q, a in self.replay[:count]]
        return target_set(tokenizer, SYSTEM, teacher_system, rows)

    def method(self, name: str, facts: list[dict], pairs: list[list], progress: Progress) -> dict:
        tokenizer, model = self.fresh()
        started = time.perf_counter()
        if name == "SELF-PARAM":
            result = train(model, tokenizer, self.target(tokenizer, facts, pairs), self.config, progress=Bars(progress))
        else:
            if name == "FT(C)":
                examples = [("", f["context"]) for f in facts]
            else:  # FT(S): the answers of the same sentences, after the same chat prompt
                render = tokenizer.apply_chat_template
                examples = [
                    (render([{"role": "system", "content": SYSTEM}, {"role": "user", "content": q}], tokenize=False,
                            add_generation_prompt=True), f"{a}<|im_end|>\n")
                    for ps in pairs for q, a in ps
                ]
            result = train_ce(model, tokenizer, examples, self.config, progress=Bars(progress))
        seconds = time.perf_counter() - started
        figures = self.evaluate(self.backend(tokenizer, result.model, name), facts)
        return {**figures, "learn_s_per_fact": round(seconds / len(facts), 1), "peak_mib": round(peak_mib()),
                "sentences": result.sentences, "steps": result.steps}

    def sequential(self, facts: list[dict], progress: Progress) -> dict:
        args = self.args
        nights = []
        with tempfile.TemporaryDirectory() as home:
            overrides = dict(model=args.model, models_dir=self.models_dir,
                             learn={"rehearse": args.rehearse, "extract_turns": False},
                             selfparam={"epochs": args.epochs, "lr": args.lr, "lora_r": args.lora_r})
            with Agent.open(home, **overrides) as bot:
                task = progress.add_task("sequential nights", total=args.nights)
                for night in range(args.nights):
                    batch = facts[night * args.per_night : (night + 1) * args.per_night]
                    for fact in batch:
                        probes = [{"question": qa["q"], "answers": qa["a"], "kind": "recall"}
                                  for qa in fact["qa"] if qa["split"] == "heldout"]
                        probes.append({"question": fact["near_miss"]["q"], "answers": ["unknown"], "kind": "near_miss"})
                        bot.teach(fact["context"], probes=probes)
                    started = time.perf_counter()
                    report = bot.learn()
                    nights.append({"night": night + 1, "seconds": round(time.perf_counter() - started, 1),
                                   "new": report.new, "rehearsed": report.rehearsed, "promoted": report.promoted,
                                   "reasons": report.reasons, "figures": report.figures,
                                   "learn_s": report.training["seconds"] if report.training else None})
                    progress.advance(task)
                retention = bot.retention_report()
                final = self.evaluate(bot.backend, facts[: args.nights * args.per_night])
        first_ids = nights[0]["new"] if nights else []
        # The first night's facts on the version active after each night (a refused night keeps the last).
        trajectory, last = [], None
        runs = {r["id"]: r for r in retention["runs"]}
        for run in retention["runs"]:
            points = [p["contains"] for p in retention["points"] if p["run_id"] == run["id"] and p["experience_id"] in first_ids]
            if runs[run["id"]]["promoted"] and points:
                last = statistics.mean(points)
            trajectory.append(last)
        taught = min(len(facts), args.nights * args.per_night)  # distinct facts (a refused night's come back)
        return {"nights": nights, "by_age": retention["by_age"], "first_night_trajectory": trajectory,
                "final": final, "learn_s_per_fact": round(sum(n["learn_s"] or 0 for n in nights) / max(1, taught), 1),
                "wall_s_per_fact": round(sum(n["seconds"] for n in nights) / max(1, taught), 1),
                "peak_mib": round(peak_mib())}


def plot(results: dict, path: Path) -> None:
    from agent.plots import _pyplot, draw_by_age

    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    batch = results.get("batch", {})
    names = list(batch)
    left.bar(names, [batch[n]["contains"] for n in names], color="#4c72b0")
    left.set_ylabel('held-out "contains", no recall')
    left.set_title(f"batch injection of {results['args']['facts']} facts")
    left.set_ylim(0, 1)
    left.tick_params(axis="x", rotation=20)
    seq = results.get("sequential")
    if seq and seq["by_age"]:
        draw_by_age(right, seq["by_age"])
        right.set_title(f"sequential: {results['args']['nights']} nights, rehearsal {results['args']['rehearse']}")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def model_and_data_arguments(parser: argparse.ArgumentParser) -> None:
    """The options every SELF-PARAM harness shares: which model, which facts, how pairs are written and trained."""
    parser.add_argument("--model", default="embedded:smollm2-135m-instruct")
    parser.add_argument("--models-dir", type=Path, help="converted base models (default: HOME/models)")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "facts" / "facts_dev.jsonl")
    parser.add_argument("--samples", type=int, default=SynthesisConfig().samples,
                        help="sampled question batches per sentence (0: rule-written questions only)")
    parser.add_argument("--generator-model", help="the model that writes the sampled questions (default: --model "
                        "itself; the product's generator_model), e.g. a larger local folder")
    parser.add_argument("--generator-answers", action="store_true",
                        help="the generator also answers its questions (seeing the fact), so the student learns a "
                        "larger model's answers; default: the student answers them")
    parser.add_argument("--pairs", type=Path, help="keep the written QA pairs here and reuse them in a later run "
                        "of the same model, writer and facts (writing with a 0.5B model takes minutes a fact)")
    defaults = SelfParamConfig()  # the product's own defaults
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument("--lr", type=float, default=defaults.lr)
    parser.add_argument("--replay-ratio", type=float, default=LearnSettings().replay_ratio,
                        help="replay sentences per QA sentence (the product's learn.replay_ratio)")
    parser.add_argument("--answer-ce", type=float, default=defaults.answer_ce,
                        help="weight of cross-entropy on the grounded written answers, added to SELF-PARAM's KL "
                        "(the product's selfparam.answer_ce; 0: the paper's loss)")
    parser.add_argument("--lora-r", type=int, default=defaults.lora_r,
                        help="LoRA rank (alpha 2r); 0: full fine-tuning, batch and single only")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    model_and_data_arguments(parser)
    parser.add_argument("--facts", type=int, default=10, help="facts in the batch conditions")
    parser.add_argument("--single", type=int, default=3, help="facts injected one at a time from the base")
    parser.add_argument("--nights", type=int, default=10)
    parser.add_argument("--per-night", type=int, default=2)
    parser.add_argument("--rehearse", type=int, default=0, help="earlier facts rehearsed per night (the product default)")
    parser.add_argument("--skip", nargs="*", default=[], choices=["batch", "single", "sequential"])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS,
                        help="the trained batch conditions (the floor and the upper bound always run)")
    parser.add_argument("--json", type=Path, default=ROOT / "examples" / "results" / "selfparam.json")
    parser.add_argument("--plot", type=Path, default=ROOT / "examples" / "results" / "selfparam.png")
    parser.add_argument("--resume", action="store_true", help="keep the conditions --json already holds (a run stopped midway)")
    args = parser.parse_args()
    if args.lora_r < 0 or (args.lora_r == 0 and "sequential" not in args.skip):
        parser.error("--lora-r: a rank >= 1, or 0 (full fine-tuning) with --skip sequential: versions are LoRA adapters")
    console = Console()
    facts = [json.loads(line) for line in args.data.read_text().splitlines()]
    bench = Bench(args, console)
    results = Results(parser, args, resume=args.resume)  # written after every condition
    started = time.perf_counter()
    with Progress(console=console, transient=True) as progress:
        if {"batch", "single"} - set(args.skip):  # the sequential nights write their own pairs
            pairs, results["synthesis"] = bench.synthesize(facts[: max(args.facts, args.single)], progress)
            results.save()
        if "batch" not in args.skip:
            batch = facts[: args.facts]
            done = results.setdefault("batch", {})
            if "in context" not in done:
                tokenizer, model = bench.fresh()
                base = bench.backend(tokenizer, model, "base")
                done["no context"] = bench.evaluate(base, batch)
                done["in context"] = bench.evaluate(base, batch, [teacher_system(f["context"]) for f in batch])
                results.save()
            for name in (n for n in METHODS if n in args.methods and n not in done):
                done[name] = bench.method(name, batch, pairs[: args.facts], progress)
                results.save()
        if "single" not in args.skip and "single" not in results:
            singles = [bench.method("SELF-PARAM", [f], [p], progress) for f, p in zip(facts[: args.single], pairs)]
            results["single"] = {k: round(statistics.mean(s[k] for s in singles), 3)
                                 for k in ("contains", "unseen_contains", "f1", "pollution", "general_contains", "perplexity", "learn_s_per_fact")}
            results.save()
        if "sequential" not in args.skip and "sequential" not in results:
            results["sequential"] = bench.sequential(facts, progress)
    results["seconds"] = round(time.perf_counter() - started)

    table = Table(title=f"SELF-PARAM on {args.model}: held-out questions, no recall")
    for column in ("condition", "contains", "unseen", "QA-F1", "near-miss pollution", "general", "chat ppl", "learn s/fact", "peak MiB"):
        table.add_column(column, justify="left" if column == "condition" else "right")
    rows = [(f"batch: {n}", r) for n, r in results.get("batch", {}).items()]
    if "single" in results:
        rows.append(("single (one fact from base)", results["single"]))
    if "sequential" in results:
        rows.append((f"sequential, after {args.nights} nights", {**results["sequential"]["final"],
                     "learn_s_per_fact": results["sequential"]["learn_s_per_fact"], "peak_mib": results["sequential"]["peak_mib"]}))
    for name, r in rows:
        table.add_row(name, f"{r['contains']:.2f}", f"{r['unseen_contains']:.2f}", f"{r['f1']:.3f}", f"{r['pollution']:.2f}", f"{r['general_contains']:.2f}",
                      f"{r['perplexity']:.1f}", str(r.get("learn_s_per_fact", "")), str(r.get("peak_mib", "")))
    console.print(table)
    if "sequential" in results:
        seq = results["sequential"]
        console.print("by age (promoted versions):", seq["by_age"])
        console.print("first night's facts after each night:", seq["first_night_trajectory"])
        console.print("nights:", [(n["night"], n["promoted"], n["reasons"]) for n in seq["nights"]])
    console.print(f"synthesis: {results.get('synthesis')}; total {results['seconds']} s")
    results.save()
    if "batch" in results or "sequential" in results:
        plot(results, args.plot)
        console.print(f"wrote {args.json} and {args.plot}")


if __name__ == "__main__":
    main()
