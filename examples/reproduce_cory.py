"""CORY against single-agent PPO and the untouched model, the paper's two settings scaled to a CPU.

    pip install 'reverie[bench]'                 # vaderSentiment: a benchmark-only extra
    python examples/reproduce_cory.py            # both settings, 3 seeds, embedded model
    python examples/reproduce_cory.py --model PATH_OR_ID --setting sentiment --seeds 0 1 2 --iterations 40

Settings (arXiv 2410.06101 section 4, on a 135M model and 2 cores):
  sentiment    the IMDB setting offline: continue 2-8 token prefixes of ReDial turns
               (../shared/data/crs/redial_dev.jsonl, CC BY 4.0) positively; reward = VADER's
               compound score of prefix + continuation (``vaderSentiment``, lexicon shipped)
  arithmetic   the GSM8K setting: generated one- and two-step word problems in the paper's
               one-shot "Question: ... Answer:" form; reward 1 when the last number is right;
               pass@1 (greedy) on held-out problems before and after
Methods, each from a fresh base, all but CORY-paper sampling the same tokens per iteration:
  PPO          learners/ppo.py, batch B
  CORY         learners/cory.py, pioneer and observer with B/2 each, role exchange every 5
               iterations, optimisers reset at an exchange (the reference code)
  CORY-keep    the same, each adapter keeping its optimiser and KL controller (sentiment only)
  CORY-paper   pioneer and observer with B each, as the paper and its code run them (PPO and each
               CORY agent 256 replies an iteration): twice PPO's sampled tokens per iteration
Reported per method, mean and sd over seeds: the deployed policy's reward and KL on held-out
queries, distinct bigrams (a collapsed policy repeats itself), iterations to reach PPO's final
training reward, PPO's KL where its training reward first equals CORY's final one (the
reward-KL front at equal reward), seconds per iteration; curves of reward and KL per iteration
and the reward-KL front as PNG. Each run is written to the JSON as soon as it ends; a run again skips those done.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402

MISSING = "skipped: vaderSentiment is not installed (a benchmark-only extra): pip install 'reverie[bench]'"
WINDOW = 5  # iterations a training curve is averaged over
METHODS = {"sentiment": ("ppo", "cory", "cory-keep", "cory-paper"), "arithmetic": ("ppo", "cory", "cory-paper")}
ONE_SHOT = ("Question: Tom has 3 apples and buys 4 more. How many apples does Tom have now?\n"
            "Answer: 3 + 4 = 7. The answer is 7.\n\n")
NAMES = ["Anna", "Ben", "Carla", "Dev", "Ema", "Farid", "Gus", "Hana", "Ivo", "Jun"]
THINGS = ["apples", "books", "coins", "pens", "stamps", "shells", "cards", "marbles"]


def vader():
    """VADER's compound score of prefix + continuation, in [-1, 1]; None when not installed."""
    try:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
    except ImportError:
        return None
    analyzer = SentimentIntensityAnalyzer()
    return lambda queries, responses: [analyzer.polarity_scores(q + r)["compound"] for q, r in zip(queries, responses)]


def sentiment_queries(data: Path, tokenizer, count: int, seed: int) -> list[str]:
    """Prefixes of 2-8 tokens (the paper's LengthSampler(2, 8)) of distinct ReDial turns."""
    rng, seen, prefixes = random.Random(seed), set(), []
    turns = [t["content"] for line in data.read_text().splitlines() for t in json.loads(line)["turns"]]
    rng.shuffle(turns)
    for text in turns:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        if len(ids) < 10 or text in seen:
            continue
        seen.add(text)
        prefixes.append(tokenizer.decode(ids[: rng.randint(2, 8)]))
        if len(prefixes) == count:
            break
    return prefixes


def arithmetic_problems(count: int, seed: int) -> dict[str, int]:
    """One- and two-step word problems with exact answers, as one-shot prompts -> answer."""
    rng, problems = random.Random(seed), {}
    while len(problems) < count:
        name, thing = rng.choice(NAMES), rng.choice(THINGS)
        a, b, c = rng.randint(2, 20), rng.randint(2, 20), rng.randint(1, 9)
        if rng.random() < 0.5:
            text, answer = f"{name} has {a} {thing} and gets {b} more. How many {thing} does {name} have now?", a + b
        else:
            text = f"{name} has {a + b} {thing}, gives away {b}, then finds {c}. How many {thing} does {name} have now?"
            answer = a + c
        problems[f"{ONE_SHOT}Question: {text}\nAnswer:"] = answer
    return problems


def distinct_bigrams(texts: list[str]) -> float:
    pairs = [tuple(w[i : i + 2]) for w in (t.split() for t in texts) for i in range(len(w) - 1)]
    return len(set(pairs)) / len(pairs) if pairs else 0.0


def evaluate(policy, tokenizer, queries: list[str], reward, config, greedy: bool) -> dict:
    """The deployed policy on held-out queries: mean reward, KL to the base, distinct bigrams."""
    import torch

    from learners import ppo

    torch.manual_seed(1234 + config.seed)
    ids = ppo.encode(tokenizer, queries)
    rewards, kls, texts = [], [], []
    sampling = config.model_copy(update={"temperature": 1e-4} if greedy else {})
    for start in range(0, len(ids), 16):
        batch = ppo.rollout(policy, tokenizer, ids[start : start + 16], sampling)
        out = tokenizer.batch_decode(batch.response_ids, skip_special_tokens=True)
        scores = ppo.check_scores(reward(queries[start : start + 16], out))
        if hasattr(policy, "disable_adapter"):
            kls.append(ppo.kl_per_response(ppo.prepare(policy, ppo.new_value_head(policy), batch, scores, scores,
                                                       config, 0.0)))
        rewards += scores.tolist()
        texts += out
    return {"reward": round(statistics.mean(rewards), 4), "kl": round(statistics.mean(kls), 4) if kls else 0.0,
            "distinct2": round(distinct_bigrams(texts), 4), "example": texts[0]}


def run(method: str, setting: str, seed: int, source, train: list[str], test: list[str], reward, args,
        progress) -> dict:
    import torch

    from agent.llm.transformers_backend import load_pretrained, pick_device, pick_dtype
    from learners import cory, ppo

    device = pick_device("auto")
    tokenizer, model = load_pretrained(source, device, pick_dtype("auto", device))
    tokens = 24 if setting == "arithmetic" else 16
    common = dict(epochs=args.iterations, lr=args.lr, mini_batch=args.batch // 2, max_new_tokens=tokens,
                  kl="full", beta=args.beta, seed=seed)
    started = time.perf_counter()
    if method == "base":
        return {"eval": evaluate(model, tokenizer, test, reward, ppo.PPOConfig(**common), setting == "arithmetic")}
    if method == "ppo":
        config = ppo.PPOConfig(batch_size=args.batch, **common)
        result = ppo.train(model, tokenizer, train, reward, config, progress)
        curve = [{"reward": s["reward"], "kl": s["kl"]} for s in result.stats]
    else:
        per_agent = args.batch if method == "cory-paper" else args.batch // 2
        config = cory.CORYConfig(batch_size=per_agent, swap_every=args.swap_every,
                                 swap_state="weights" if method == "cory-keep" else "reset", **common)
        result = cory.train(model, tokenizer, train, reward, config, progress)
        curve = [{"reward": s["pioneer_reward"], "kl": s["pioneer_kl"], "observer_reward": s["observer_reward"],
                  "observer_kl": s["observer_kl"]} for s in result.stats]
    seconds = time.perf_counter() - started
    with torch.no_grad():
        figures = evaluate(result.model, tokenizer, test, reward, config, setting == "arithmetic")
    return {"curve": curve, "eval": figures, "s_per_iteration": round(seconds / args.iterations, 2)}


def smoothed(values: list[float], width: int = 3) -> list[float]:
    return [statistics.mean(values[max(0, i - width + 1) : i + 1]) for i in range(len(values))]


def _first_at_least(curve: list[float], target: float) -> int | None:
    """The first full window of a smoothed curve at or above ``target``."""
    return next((i for i, v in enumerate(curve) if i >= WINDOW - 1 and v >= target), None)


def summarise(runs: dict, setting: str, methods: list[str]) -> dict:
    """Mean and sd over seeds of each method; iterations to reach PPO's final training reward."""
    out = {}
    for method in ["base", *methods]:
        done = [r for key, r in runs.items() if key.startswith(f"{setting}/{method}/")]
        if not done:
            continue
        row = {"seeds": len(done)}
        for name in ("reward", "kl", "distinct2"):
            values = [r["eval"][name] for r in done]
            row[name] = [round(statistics.mean(values), 4), round(statistics.stdev(values), 4) if len(values) > 1 else 0]
        if method != "base":
            row["s_per_iteration"] = round(statistics.mean(r["s_per_iteration"] for r in done), 2)
        out[method] = row
    ppo_runs = {k.rsplit("/", 1)[1]: r for k, r in runs.items() if k.startswith(f"{setting}/ppo/")}
    for method in methods:
        if method == "ppo":
            continue
        reached, fronts = [], []
        for key, r in runs.items():
            seed = key.rsplit("/", 1)[1]
            if key.startswith(f"{setting}/{method}/") and seed in ppo_runs:
                # one rollout's mean is noisy (8 replies): both curves are averaged over WINDOW
                # iterations, and only full windows count
                ppo_reward, ppo_kl = (smoothed([p[k] for p in ppo_runs[seed]["curve"]], WINDOW) for k in ("reward", "kl"))
                reward, kl = (smoothed([p[k] for p in r["curve"]], WINDOW) for k in ("reward", "kl"))
                hit = _first_at_least(reward, ppo_reward[-1])
                reached.append(round((hit + 1) / len(reward), 2) if hit is not None else None)
                # the front at equal reward: PPO's KL when its reward first equals this method's final one
                equal = _first_at_least(ppo_reward, reward[-1])
                fronts.append({"kl": round(kl[-1], 4), "ppo_kl": round(ppo_kl[equal], 4) if equal is not None else None})
        if method in out and reached:
            out[method]["fraction_of_ppo_iterations_to_reach_ppo_final"] = reached
            out[method]["kl_at_equal_training_reward"] = fronts
    return out


def plot(runs: dict, settings: list[str], methods: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(settings), 3, figsize=(15, 4.2 * len(settings)), squeeze=False)
    for row, setting in zip(axes, settings):
        for method in methods[setting]:
            curves = [r["curve"] for k, r in runs.items() if k.startswith(f"{setting}/{method}/")]
            if not curves:
                continue
            length = min(len(c) for c in curves)
            reward = [statistics.mean(c[i]["reward"] for c in curves) for i in range(length)]
            kl = [statistics.mean(c[i]["kl"] for c in curves) for i in range(length)]
            steps = range(1, length + 1)
            row[0].plot(steps, smoothed(reward), label=method)
            row[1].plot(steps, smoothed(kl), label=method)
            row[2].plot(smoothed(kl), smoothed(reward), marker=".", label=method)
        row[0].set(title=f"{setting}: task reward (deployed role)", xlabel="iteration")
        row[1].set(title=f"{setting}: KL to the base per response", xlabel="iteration")
        row[2].set(title=f"{setting}: reward-KL front", xlabel="KL", ylabel="reward")
        for ax in row:
            ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="embedded:smollm2-135m-instruct")
    parser.add_argument("--models-dir", type=Path, help="converted base models (default: HOME/models)")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "crs" / "redial_dev.jsonl")
    parser.add_argument("--setting", nargs="+", default=["sentiment", "arithmetic"], choices=list(METHODS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--methods", nargs="+", choices=sorted({m for ms in METHODS.values() for m in ms}),
                        help="run only these (default: all of a setting's); the untouched model always runs")
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--batch", type=int, default=8, help="responses sampled per iteration, all agents together (CORY-paper: each agent)")
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--beta", type=float, default=0.1, help="initial KL coefficient (adaptive, full KL)")
    parser.add_argument("--swap-every", type=int, default=5)
    parser.add_argument("--test", type=int, default=48, help="held-out queries")
    parser.add_argument("--json", type=Path, default=ROOT / "examples" / "results" / "cory.json")
    parser.add_argument("--plot", type=Path, default=ROOT / "examples" / "results" / "cory.png")
    args = parser.parse_args()
    if args.batch < 2 or args.batch % 2:
        parser.error("--batch: an even number >= 2 (CORY's two agents share it)")
    console = Console()
    sentiment = vader()
    if sentiment is None and "sentiment" in args.setting:
        console.print(MISSING)
        args.setting = [s for s in args.setting if s != "sentiment"]
    from transformers import AutoTokenizer

    from agent.llm import resolve_model
    from agent.progress import shown
    from agent.settings import load_settings

    settings = load_settings(model=args.model, **({"models_dir": args.models_dir} if args.models_dir else {}))
    source = resolve_model(args.model, settings.models_path)
    tokenizer = AutoTokenizer.from_pretrained(source)
    results = json.loads(args.json.read_text()) if args.json.exists() else {}
    runs = results.setdefault("runs", {})
    for setting in args.setting:
        if setting == "sentiment":
            queries, reward = sentiment_queries(args.data, tokenizer, 200 + args.test, 0), sentiment
        else:
            answers = arithmetic_problems(200 + args.test, 0)
            from graphs.rewards import exact_answer

            exact = exact_answer(answers)
            # the usual stop sequence of one-shot arithmetic (lm-eval's GSM8K stops there too):
            # a new "Question:" the model goes on to invent is not part of its answer
            queries, reward = list(answers), lambda q, r: exact(q, [x.split("\nQuestion:")[0] for x in r])
        train, test = queries[: -args.test], queries[-args.test :]
        for seed in args.seeds:
            for method in ["base", *(m for m in METHODS[setting] if not args.methods or m in args.methods)]:
                key = f"{setting}/{method}/{seed}"
                if key in runs:
                    continue
                console.print(f"{key} ...")
                with shown(console) as progress:
                    runs[key] = run(method, setting, seed, source, train, test, reward, args, progress)
                console.print(f"{key}: {runs[key]['eval']}")
                results["config"] = {k: str(v) for k, v in vars(args).items()}
                results["summary"] = {s: summarise(runs, s, list(METHODS[s])) for s in METHODS}
                args.json.parent.mkdir(parents=True, exist_ok=True)
                args.json.write_text(json.dumps(results, indent=1))
                plot(runs, [s for s in METHODS if any(k.startswith(s) for k in runs)], METHODS, args.plot)
    console.print_json(data=results["summary"])


if __name__ == "__main__":
    main()
