"""`make demo`: a scripted tour of reverie on the embedded model, as a server and from the command line.

    python examples/demo.py [--model SPEC]

The whole loop, the way a long-running assistant lives: it measures how far the model's judges
can be trusted (its card: once per model, kept in .demo/models), starts `reverie serve` with a night
scheduled two minutes ahead, chats through the official `openai` client, teaches facts and rates
an answer over HTTP, answers from recall and (recall off) from the weights alone, lets the
scheduled night clean the feedback (an audit only, on a committee the card does not trust) and
fold the day into a new version (SELF-PARAM into a frozen adapter, evaluation, the gate), and asks again once the server serves it; then it stops the server cleanly, shows the
night's job, the retention table and plot, a check of its own judgement from the CLI, and
recommendations from a small catalogue (from the CLI, and asked for in a chat).
Everything lives in .demo/ (the converted model in .demo/models is kept between runs; the rest
starts afresh). The answers are the 135M model's own: small, sometimes odd, never scripted.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
from rich.console import Console

ROOT = Path(__file__).resolve().parents[1]
HOME = ROOT / ".demo"
console = Console(highlight=False)

FACTS = [
    "My sister Ines lives in Lisbon and repairs violins for a living.",
    "Our weekly planning meeting is on Thursdays at 10:00 in the Orchid room.",
    "My cat Biscuit only eats salmon-flavoured food.",
]
QUESTIONS = ["Where does my sister Ines live?", "What does my cat Biscuit eat?"]
FILMS = [  # a catalogue is data the user brings: any JSONL with an id and a title
    {"id": "f1", "title": "Good Boy Rex", "genres": ["family", "comedy"], "tags": ["dogs"], "year": 2001,
     "runtime_min": 92, "rating": "G", "description": "A stray terrier adopts a family that does not want a dog."},
    {"id": "f2", "title": "Paws on Mars", "genres": ["family", "sci-fi"], "tags": ["dogs", "space"], "year": 2015,
     "runtime_min": 101, "rating": "PG", "description": "The first dog on Mars has to find her way home."},
    {"id": "f3", "title": "The Cellar Door", "genres": ["horror"], "tags": ["haunted"], "year": 1999,
     "runtime_min": 97, "rating": "R", "description": "A family's new house has one door nobody can open."},
    {"id": "f4", "title": "Night Tide", "genres": ["horror", "mystery"], "tags": ["sea"], "year": 2012,
     "runtime_min": 88, "rating": "PG-13", "description": "Something answers the lighthouse keeper's radio."},
    {"id": "f5", "title": "Long Walk Home", "genres": ["family", "drama"], "tags": ["dogs"], "year": 1987,
     "runtime_min": 134, "rating": "PG", "description": "A collie crosses three states to find the boy who lost her."},
    {"id": "f6", "title": "Chess Club", "genres": ["comedy"], "tags": ["chess"], "year": 2019, "runtime_min": 95,
     "rating": "PG", "description": "Five misfits enter the state chess championship."},
]
PORT = 8321
URL = f"http://127.0.0.1:{PORT}"


def reverie(*args: str, model: str, show: bool = True, live: bool = False) -> str:
    """Run one reverie command as a user would type it; print it and what it says (``live``: its
    progress, on stderr, as it happens)."""
    if show:
        printable = " ".join(f'"{a}"' if " " in a else a for a in args)
        console.print(f"\n[bold cyan]$ reverie {printable}[/bold cyan]")
    env = {**os.environ, "REVERIE_HOME": str(HOME), "REVERIE_MODELS_DIR": str(HOME / "models")}
    exe = Path(sys.executable).with_name("reverie")
    result = subprocess.run([str(exe), "--model", model, *args], stdout=subprocess.PIPE,
                            stderr=None if live else subprocess.PIPE, text=True, env=env)
    if show:
        console.print(result.stdout.rstrip(), markup=False)
        if result.stderr and result.stderr.strip():
            console.print(result.stderr.rstrip(), style="dim", markup=False)
    if result.returncode != 0:
        raise SystemExit(f"`reverie {' '.join(args)}` failed with exit code {result.returncode}")
    return result.stdout


def near_schedule(lead_s: int = 100) -> str:
    """A daily cron for the first whole minute at least ``lead_s`` from now, in UTC."""
    at = datetime.now(timezone.utc) + timedelta(seconds=lead_s + 59)
    return f"{at.minute} {at.hour} * * *"


class Server:
    """`reverie serve` in the background, as a systemd unit or a container would run it."""

    def __init__(self, model: str, schedule: str) -> None:
        env = {**os.environ, "REVERIE_HOME": str(HOME), "REVERIE_MODELS_DIR": str(HOME / "models")}
        exe = Path(sys.executable).with_name("reverie")
        console.print(f'\n[bold cyan]$ reverie serve --port {PORT} --schedule "{schedule}" &[/bold cyan]')
        self.log = open(HOME / "serve.log", "w")
        self.process = subprocess.Popen([str(exe), "--model", model, "serve", "--port", str(PORT),
                                         "--schedule", schedule], stdout=self.log, stderr=subprocess.STDOUT, env=env)
        while True:
            if self.process.poll() is not None:
                raise SystemExit(f"reverie serve exited: see {HOME / 'serve.log'}")
            try:
                if httpx.get(f"{URL}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        console.print(f"[dim]serving on {URL}/v1; its log: {HOME / 'serve.log'}[/dim]")

    def stop(self) -> None:
        console.print("\n[bold cyan]$ kill -TERM <reverie serve>[/bold cyan]")
        self.process.send_signal(signal.SIGTERM)
        console.print(f"exited with code {self.process.wait(timeout=300)}", markup=False)
        self.log.close()


def ask(client, question: str, **extra) -> dict:
    """One turn through the openai client, shown as a user would see it."""
    flags = " ".join(f"{k}={v}" for k, v in extra.items())
    console.print(f"\n[bold cyan]>>> {question}[/bold cyan]" + (f" [dim]({flags})[/dim]" if flags else ""))
    reply = client.chat.completions.create(model="reverie", user="you", extra_body=extra, max_tokens=60,
                                           messages=[{"role": "user", "content": question}])
    meta = reply.model_extra["reverie"]
    console.print(reply.choices[0].message.content, markup=False)
    console.print(f"[dim]turn {meta['turn_id']} · {meta['model_version']}"
                  + (f" · adapter {meta['adapter']}" if meta["adapter"] else "")
                  + (f" · recalled {[m['id'] for m in meta['memories']]}" if meta["memories"] else "") + "[/dim]")
    return meta


def main() -> None:
    import openai

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="embedded:smollm2-135m-instruct")
    args = parser.parse_args()
    model = args.model

    HOME.mkdir(exist_ok=True)
    for entry in HOME.iterdir():  # a fresh start, but keep the converted model
        if entry.name != "models":
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()

    console.rule("1. The model knows general things on its own")
    reverie("ask", "What is the capital of France?", model=model)

    console.rule("2. Its judges measure how far to trust themselves (once per model, minutes the first time)")
    reverie("models", "card", model=model, live=True)

    console.rule("3. Run it as a server that learns at night (here: in two minutes)")
    server = Server(model, near_schedule())
    try:
        client = openai.OpenAI(base_url=f"{URL}/v1", api_key="none")
        console.print(f"\n[bold cyan]POST {URL}/v1/memories[/bold cyan] (three facts)")
        for fact in FACTS:
            console.print(httpx.post(f"{URL}/v1/memories", json={"text": fact, "user": "you"}, timeout=120).json(),
                          markup=False)

        console.rule("4. Any OpenAI client chats with it; new threads recall what was taught")
        meta = ask(client, "Where does my sister Ines live?")
        ask(client, "When is the weekly planning meeting?")
        console.print(f"\n[bold cyan]POST {URL}/v1/feedback[/bold cyan]")
        console.print(httpx.post(f"{URL}/v1/feedback", json={"turn_id": meta["turn_id"], "kind": "up", "user": "you",
                                                             "text": "exactly right"}).json(), markup=False)

        console.rule("5. Without recall, the weights alone do not know it (yet)")
        for question in QUESTIONS:
            ask(client, question, recall=False)

        console.rule("6. The scheduled night: clean the feedback, fold the day into a new adapter, gate")
        before = httpx.get(f"{URL}/status").json()
        console.print(f"serving {before['active_version']}; next night {before['next_night']}", markup=False)
        started = time.time()
        while not (ended := [j for j in json.loads(reverie("jobs", "list", "--json", model=model, show=False))["jobs"]
                             if j["status"] in ("succeeded", "failed", "interrupted")]):
            if time.time() - started > 1200:
                raise SystemExit(f"no night ended in 20 minutes: see {HOME / 'serve.log'}")
            time.sleep(10)
            console.print(f"[dim]waiting for the night ... {time.time() - started:.0f} s[/dim]")
        status = httpx.get(f"{URL}/status").json()
        console.print(f"night {ended[0]['status']}; serving {status['active_version']}, adapters {status['adapters']}",
                      markup=False)

        console.rule("7. The same questions, recall still off: the weights now answer")
        for question in QUESTIONS:
            ask(client, question, recall=False)
    finally:
        server.stop()

    console.rule("8. What the night did, and retention per experience and version")
    reverie("jobs", "list", model=model)
    reverie("retention", "--plot", str(HOME / "retention.png"), model=model)
    reverie("memory", "list", model=model)
    reverie("feedback", "list", model=model)  # the thumb stays as given: the card's committee only audits

    console.rule("9. It checks its own judgements: order, negation, transitivity")
    reverie("judge", "rank", "--instruction", "Which number is larger?", "--", "7", "300", "42", model=model)

    console.rule("10. It recommends from a catalogue you bring, never breaking what you asked for")
    films = HOME / "films.jsonl"
    films.write_text("\n".join(json.dumps(f) for f in FILMS) + "\n")
    reverie("catalogue", "import", str(films), model=model)
    reverie("recommend", "A family film with dogs in it, under two hours, nothing rated R.", "-k", "3", model=model)
    reverie("ask", "Can you recommend a horror film? Nothing made before 2000.", model=model)
    console.print(f"\n[dim]demo data: {HOME} (try: REVERIE_HOME={HOME} reverie serve)[/dim]")


if __name__ == "__main__":
    main()
