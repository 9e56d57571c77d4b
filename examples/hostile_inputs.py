"""Hostile inputs through the real console script: every command, as a careless user or an attacker
would call it, each checked for a crash (exit 70), a traceback, an error longer than one line, a
half-written state (the home changed although the command failed), and raw control codes on the
terminal.

    python examples/hostile_inputs.py                          # the embedded model
    python examples/hostile_inputs.py --model PATH --json out.json

A fresh home is seeded (a taught fact, a turn, feedback on it), then each input runs in its own
process; failures are listed and the counts go to examples/results/hostile_inputs.json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from agent.progress import steps  # noqa: E402

RESULTS = ROOT / "examples" / "results" / "hostile_inputs.json"
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
BIG = str(2**63)


def inputs(tmp: Path) -> list[tuple[str, list[str], bytes | None]]:
    """(name, arguments, stdin) for every command; files are written into ``tmp`` first."""
    files = {
        "latin1": "Caf\xe9 au lait.\n".encode("latin-1"),
        "binary": b"\x89PNG\x00\x00\x01",
        "nul.jsonl": b'{"prompt": "a\\u0000b", "chosen": "x", "rejected": "y"}\n',
        "huge-line": b"x" * 200_000 + b"\n",
        "markup": "[/oops] [bold]stored\n\x1b[2J\x1b]0;pwned\x07 escape\n".encode(),
        "empty": b"",
        "bad.jsonl": b'{oops\n{"instruction": "Which?", "items": ["a"]}\n',
        "prefs.jsonl": b'{"prompt": "Q?", "chosen": "[/x]", "rejected": "\x1b[31mred"}\n',
    }
    for name, data in files.items():
        (tmp / name).write_bytes(data)
    (tmp / "a-folder").mkdir(exist_ok=True)
    f = lambda name: str(tmp / name)  # noqa: E731
    missing, folder, under_file = str(tmp / "no" / "such" / "x.png"), f("a-folder"), f("empty") + "/x.png"
    numbers = ["0", "-1", BIG, str(2**64), "99999999999999999999999", "1e3", "0x10", "", " ", "NaN"]
    texts = ["", " ", "\t", "[/oops]", "\x1b[2J", "\u202eevil", "x" * 100_000, "é" * 3000, "-", "--", "'; DROP TABLE turns;--"]
    rows: list[tuple[str, list[str], bytes | None]] = []
    for n in numbers:
        rows += [("feedback N --up", ["feedback", n, "--up"], None), ("feedback show N", ["feedback", "show", n], None),
                 ("memory forget N", ["memory", "forget", n], None), ("log -n N", ["log", "-n", n], None),
                 ("memory search -k N", ["memory", "search", "dog", "-k", n], None),
                 ("models prune --keep N", ["models", "prune", "--keep", n], None),
                 ("judge consistency --k N", ["judge", "consistency", f("bad.jsonl"), "--k", n], None),
                 ("judge rank --k N", ["judge", "rank", "--instruction", "Which?", "a", "b", "c", "--k", n], None),
                 ("judge code --samples N", ["judge", "code", "--problem", f("markup"), "--code", f("markup"),
                                             "--samples", n], None)]
    for t in texts:
        rows += [("ask TEXT", ["ask", t], None), ("teach TEXT", ["teach", t], None),
                 ("ask --thread TEXT", ["ask", "hi", "--thread", t], None),
                 ("ask --user TEXT", ["ask", "hi", "--user", t], None),
                 ("feedback --fix TEXT", ["feedback", "2", "--fix", t], None),
                 ("models show TEXT", ["models", "show", t], None),
                 ("threads repair TEXT", ["threads", "repair", t], None),
                 ("--set TEXT", ["--set", t, "log"], None), ("learn --only TEXT", ["learn", "--only", t], None)]
    for path in (missing, folder, under_file, "/proc/version", ""):
        rows += [("feedback export -o PATH", ["feedback", "export", "-o", path], None),
                 ("memory export -o PATH", ["memory", "export", "-o", path], None),
                 ("retention --plot PATH", ["retention", "--plot", path], None),
                 ("teach --file PATH", ["teach", "--file", path], None),
                 ("feedback import PATH", ["feedback", "import", path], None),
                 ("--home PATH", ["--home", path, "log"], None)]
    for name in files:
        rows += [(f"teach --file {name}", ["teach", "--file", f(name)], None),
                 (f"feedback import {name}", ["feedback", "import", f(name)], None),
                 (f"judge consistency {name}", ["judge", "consistency", f(name)], None)]
    rows += [
        ("chat stdin non-UTF-8", ["chat"], b"hi\xff\xfe\n/good\n"),
        ("chat stdin NUL", ["chat"], b"a\x00b\n"),
        ("chat stdin escapes", ["chat"], b"\x1b[2J hello\n/fix \x1b]0;t\x07\n"),
        ("teach stdin binary", ["teach", "--file", "-"], b"\x00\x01\x02"),
        ("--set home", ["--set", "home=/tmp", "log"], None),
        ("--set models_dir=file", ["--set", f"models_dir={f('empty')}", "log"], None),
        ("--set selfparam.epochs=0", ["--set", "selfparam.epochs=0", "log"], None),
        ("--set clean_committee=bad", ["--set", "clean_committee=nope", "log"], None),
        ("--model missing", ["--model", "/no/model", "ask", "hi"], None),
        ("--model unknown embedded", ["--model", "embedded:gpt-7", "ask", "hi"], None),
        ("unknown command", ["frobnicate"], None),
        ("missing argument", ["feedback", "add"], None),
        ("two thumbs", ["feedback", "2", "--up", "--down"], None),
        ("rollback at base", ["models", "rollback"], None),
        ("promote unknown", ["models", "promote", "v99"], None),
    ]
    return rows


def fingerprint(home: Path) -> tuple:
    db = home / "reverie.db"
    if not db.is_file():
        return ()
    conn = sqlite3.connect(db)
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
    counts = tuple((t, conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]) for t in tables)
    conn.close()
    folder = home / "versions"
    return counts, tuple(sorted(p.name for p in folder.iterdir())) if folder.is_dir() else ()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="embedded:smollm2-135m-instruct")
    parser.add_argument("--models-dir", type=Path, help="converted base models (default: HOME/models)")
    parser.add_argument("--json", type=Path, default=RESULTS)
    args = parser.parse_args()
    console = Console()
    exe = str(Path(sys.executable).with_name("reverie"))

    with tempfile.TemporaryDirectory() as scratch:
        tmp, home = Path(scratch), Path(scratch) / "home"
        env = {**os.environ, "REVERIE_HOME": str(home), "REVERIE_MAX_NEW_TOKENS": "16"}
        if args.models_dir:
            env["REVERIE_MODELS_DIR"] = str(args.models_dir)
        base = [exe, "--model", args.model]

        def run(argv: list[str], stdin: bytes | None = None) -> subprocess.CompletedProcess:
            return subprocess.run(base + argv, input=stdin or b"", capture_output=True, env=env, timeout=600)

        for seed in (["teach", "My dog is called Pimento."], ["ask", "Hello!"], ["feedback", "2", "--up"]):
            assert run(seed).returncode == 0, seed
        rows, problems = [], []
        started = time.perf_counter()
        for name, argv, stdin in steps(inputs(tmp), "hostile inputs", console=console):
            before = fingerprint(home)
            result = run(argv, stdin)
            out, err = result.stdout.decode("utf-8", "replace"), result.stderr.decode("utf-8", "replace")
            # Progress bars and notes are not errors; a failure's stderr must be its one line.
            said = [line for line in err.splitlines() if line.strip() and "Converting" not in line]
            row = {
                "name": name, "code": result.returncode,
                "crash": result.returncode == 70, "traceback": "Traceback" in err or "Traceback" in out,
                # (a piped chat is a conversation: each failed line has its own error line, by design)
                "multi_line_error": result.returncode not in (0, 70) and argv[:1] != ["chat"]
                and not (len(said) == 1 and said[0].startswith("error: ")),
                # A turn that fails after validation keeps what the user said, by design: not half-written.
                "half_written": result.returncode != 0 and argv[:1] not in (["ask"], ["chat"]) and fingerprint(home) != before,
                "raw_control": bool(CONTROL.search(out.replace("\n", "").replace("\t", ""))),
            }
            rows.append(row)
            if any(row[k] for k in ("crash", "traceback", "multi_line_error", "half_written", "raw_control")):
                problems.append({**row, "argv": [a[:60] for a in argv], "stderr": err[-400:]})
        for listing in (["memory", "list", "--all"], ["feedback", "list"], ["log"], ["memory", "search", "stored"]):
            result = run(listing)
            text = result.stdout.decode("utf-8", "replace")
            rows.append({"name": " ".join(listing), "code": result.returncode, "crash": result.returncode == 70,
                         "traceback": "Traceback" in result.stderr.decode(), "multi_line_error": False,
                         "half_written": False, "raw_control": bool(CONTROL.search(text.replace("\n", "").replace("\t", "")))})
    summary = {key: sum(r[key] for r in rows) for key in ("crash", "traceback", "multi_line_error", "half_written",
                                                          "raw_control")}
    report = {"model": args.model, "inputs": len(rows), "refused": sum(r["code"] != 0 for r in rows),
              "accepted": sum(r["code"] == 0 for r in rows), **summary, "problems": problems,
              "seconds": round(time.perf_counter() - started, 1)}
    table = Table("inputs", "accepted", "refused (one line)", "exit 70", "tracebacks", "multi-line errors",
                  "half-written", "raw control codes", box=None, header_style="bold")
    table.add_row(*(str(report[k]) for k in ("inputs", "accepted", "refused", "crash", "traceback", "multi_line_error",
                                             "half_written", "raw_control")))
    console.print(table)
    for p in problems:
        console.print(f"{p['name']}: {p['argv']} -> {p['code']}", markup=False)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    console.print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
