"""``reverie``: the command line. Expected failures print one line and exit non-zero.

Exit codes: 0 ok, 1 other expected error, 2 bad input or settings (and usage errors),
3 not found, 4 storage (corrupt or locked database), 5 model, 70 internal error (a bug: run
with REVERIE_DEBUG=1 for its traceback), 130 interrupted.
"""

from __future__ import annotations

import os
import sys

from typer.exceptions import Abort, TyperException

from agent.cli import chat, config, feedback, judge, learn, logs, memory, models, recommend, serve, threads  # noqa: F401  (they register commands)
from agent.cli.app import app, debug, err
from agent.errors import ReverieError


def main(argv: list[str] | None = None) -> None:
    code = run(argv)
    if code == 130:
        # Interrupted: whatever the model thread still does was told to stop, and everything
        # written is consistent (a kill at any moment is, by design), so nobody waits for it.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


def run(argv: list[str] | None = None) -> int:
    try:
        # Not standalone: usage errors come back to us, to be said in one line like every other.
        code = app(args=argv, prog_name="reverie", standalone_mode=False)
        return code if isinstance(code, int) else 0
    except TyperException as exc:  # usage errors: a missing argument, a bad value, an unknown command
        if type(exc).__name__ == "NoArgsIsHelpError":  # plain `reverie`: the help is the answer
            err.print(exc.format_message())
            return 2
        context = getattr(exc, "ctx", None)
        hint = f" (see `{context.command_path} --help`)" if context is not None else ""
        err.print(f"error: {' '.join(exc.format_message().split())}{hint}")
        return exc.exit_code
    except Abort:
        err.print("aborted")
        return 1
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except KeyboardInterrupt:
        err.print("interrupted")
        return 130
    except ReverieError as exc:
        if debug():
            raise
        err.print(f"error: {' '.join(str(exc).split())}")
        return exc.exit_code
    except Exception as exc:
        if debug():
            raise
        err.print(f"internal error: {type(exc).__name__}: {' '.join(str(exc).split())} (REVERIE_DEBUG=1 shows the traceback)")
        return 70
    return 0
