"""``reverie``: the command line. Expected failures print one line and exit non-zero.

Exit codes: 0 ok, 1 other expected error, 2 bad input or settings (and usage errors),
3 not found, 4 storage (corrupt or locked database), 5 model, 70 internal error (a bug: run
with REVERIE_DEBUG=1 for its traceback), 130 interrupted.
"""

from __future__ import annotations

import sys

from agent.cli import chat, config, feedback, judge, learn, logs, memory, models  # noqa: F401  (they register commands)
from agent.cli.app import app, debug, err
from agent.errors import ReverieError


def main(argv: list[str] | None = None) -> None:
    sys.exit(run(argv))


def run(argv: list[str] | None = None) -> int:
    try:
        # Standalone mode: Typer prints usage errors itself and always ends in SystemExit.
        app(args=argv, prog_name="reverie")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except KeyboardInterrupt:
        err.print("interrupted")
        return 130
    except ReverieError as exc:
        if debug():
            raise
        err.print(f"error: {exc}", markup=False)
        return exc.exit_code
    except Exception as exc:
        if debug():
            raise
        err.print(f"internal error: {type(exc).__name__}: {exc} (REVERIE_DEBUG=1 shows the traceback)", markup=False)
        return 70
    return 0
