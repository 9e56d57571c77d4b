"""What the HTTP server costs a turn, and what a night learning beside it costs chat.

    python examples/bench_serve.py                     # embedded SmolLM2-135M, 2 cores
    python examples/bench_serve.py --model PATH_OR_ID --turns 10 --clients 4

In one run, same prompts, one agent behind a real uvicorn server on loopback:
  in-process vs HTTP   `Agent.chat` against `POST /v1/chat/completions` through the `openai`
                       client, alternated (goal: the HTTP path adds at most 5% to a turn)
  first token          in-process streaming against an SSE stream through the `openai` client
  concurrent clients   --clients clients x --turns turns each: turns per minute, p50 / p95
                       latency, idle; then while a night learns in its child process, with the
                       server's protection (the night at `nice` 10 on one torch thread) and
                       without it (nice 0, torch's default threads)
Writes JSON as each figure is measured.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from rich.console import Console

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agent import Agent  # noqa: E402
from agent.daemon import Daemon  # noqa: E402
from agent.server import create_app  # noqa: E402
from memory.jobs import Jobs  # noqa: E402

PROMPTS = ["What is the capital of France?", "Give me a tip for learning a language.", "How do I boil an egg?",
           "Why is the sky blue?", "What does a thermometer measure?", "Suggest a quick breakfast."]
FACTS = ["My sister Ines moved to Lisbon in May.", "My cat Miso eats salmon on Sundays.",
         "My brother Teodor works in Port Halvik.", "My grandmother Ysolde plays the bandoneon."]

# The in-process turns pass recall=False; the HTTP turns must say so too, or they also pay for a
# recall (embedding the query, a Chroma search: the 0.1-0.15 s once measured as "HTTP overhead").
SAME_WORK = {"recall": False}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def serve(agent: Agent, daemon: Daemon | None):
    import uvicorn

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(agent, daemon), port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return server, f"http://127.0.0.1:{port}/v1"


def overhead(agent: Agent, client, turns: int, tokens: int) -> dict:
    local, http = [], []
    for i in range(turns):
        prompt = PROMPTS[i % len(PROMPTS)]
        started = time.perf_counter()
        agent.chat(prompt, user="bench", recall=False, options={"max_new_tokens": tokens})
        local.append(time.perf_counter() - started)
        started = time.perf_counter()
        client.chat.completions.create(model="reverie", user="bench", max_tokens=tokens, extra_body=SAME_WORK,
                                       messages=[{"role": "user", "content": prompt}])
        http.append(time.perf_counter() - started)
    a, b = statistics.median(local), statistics.median(http)
    return {"in_process_s": round(a, 3), "http_s": round(b, 3), "overhead": round(b / a - 1, 3)}


def first_token(agent: Agent, client, turns: int, tokens: int) -> dict:
    local, http = [], []
    for i in range(turns):
        prompt = PROMPTS[i % len(PROMPTS)]
        started = time.perf_counter()
        stream = agent.stream(prompt, user="bench", recall=False, options={"max_new_tokens": tokens})
        for _ in stream:
            local.append(time.perf_counter() - started)
            break
        for _ in stream:  # finish the turn before the next measurement
            pass
        started, seen = time.perf_counter(), False
        for chunk in client.chat.completions.create(model="reverie", user="bench", max_tokens=tokens, stream=True,
                                                    extra_body=SAME_WORK, messages=[{"role": "user", "content": prompt}]):
            if not seen and chunk.choices and chunk.choices[0].delta.content:
                http.append(time.perf_counter() - started)
                seen = True
    return {"in_process_s": round(statistics.median(local), 3), "http_s": round(statistics.median(http), 3)}


def clients(url: str, count: int, turns: int, tokens: int) -> dict:
    import openai

    def one(n: int) -> list[float]:
        client = openai.OpenAI(base_url=url, api_key="none", max_retries=0, timeout=600)
        took = []
        for i in range(turns):
            started = time.perf_counter()
            client.chat.completions.create(model="reverie", user=f"client{n}", max_tokens=tokens,
                                           messages=[{"role": "user", "content": PROMPTS[(n + i) % len(PROMPTS)]}])
            took.append(time.perf_counter() - started)
        return took

    started = time.perf_counter()
    with ThreadPoolExecutor(count) as pool:
        took = [t for ts in pool.map(one, range(count)) for t in ts]
    wall = time.perf_counter() - started
    return {"turns": len(took), "turns_per_min": round(len(took) / wall * 60, 1),
            "p50_s": round(statistics.median(took), 3), "p95_s": round(percentile(took, 0.95), 3)}


def while_learning(agent: Agent, daemon: Daemon, url: str, args) -> dict:
    for fact in FACTS:  # something new each time: the night has work to do
        agent.teach(f"{fact} (night {time.time():.0f})", user="learner")
    job = daemon.request()
    jobs = Jobs(agent.store)
    while jobs.get(job.id).status in ("scheduled",):
        time.sleep(0.2)
    figures = clients(url, args.clients, args.turns, args.tokens)
    figures["night_running_throughout"] = jobs.get(job.id).status == "running"
    while jobs.get(job.id).status == "running":
        time.sleep(1)
    figures["night"] = jobs.get(job.id).status
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="embedded:smollm2-135m-instruct")
    parser.add_argument("--models-dir", type=Path)
    parser.add_argument("--turns", type=int, default=8, help="turns per condition (per client when concurrent)")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--no-nights", action="store_true", help="only the turn overhead, first token and idle clients")
    parser.add_argument("--json", type=Path, default=ROOT / "examples" / "results" / "bench_serve.json")
    args = parser.parse_args()
    console = Console()
    results: dict = {"args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}}

    def save(key: str, value) -> None:
        results[key] = value
        console.print(key, value)
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1))

    overrides = {"model": args.model, "verify_code": "off", "verify_choices": False,
                 **({"models_dir": str(args.models_dir)} if args.models_dir else {})}
    with tempfile.TemporaryDirectory() as home, Agent.open(home, **overrides) as agent:
        import openai

        daemons = {name: Daemon(agent, overrides, None, 3600, nice=nice, threads=threads)
                   for name, nice, threads in (("protected", 10, 1), ("unprotected", 0, 2))}
        server, url = serve(agent, daemons["protected"])
        client = openai.OpenAI(base_url=url, api_key="none", max_retries=0, timeout=600)
        agent.chat("Hello", user="bench")  # load and warm up
        client.chat.completions.create(model="reverie", messages=[{"role": "user", "content": "Hello"}])
        save("overhead", overhead(agent, client, args.turns, args.tokens))
        save("first_token", first_token(agent, client, args.turns, args.tokens))
        save("idle", clients(url, args.clients, args.turns, args.tokens))
        for name, daemon in ({} if args.no_nights else daemons).items():
            server.config.app.state.daemon = daemon
            daemon.start()
            try:
                save(f"learning_{name}", while_learning(agent, daemon, url, args))
            finally:
                daemon.stop()
        server.should_exit = True
    if args.no_nights:
        return
    idle = results["idle"]["p50_s"]
    for name in ("protected", "unprotected"):
        results[f"slowdown_{name}"] = round(results[f"learning_{name}"]["p50_s"] / idle, 2)
    save("summary", {k: results[k] for k in ("slowdown_protected", "slowdown_unprotected")})
    console.print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
