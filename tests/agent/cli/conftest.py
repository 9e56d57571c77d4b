"""What the CLI tests share: `reverie` run in this process on the tiny model."""

import pytest

from agent.cli import run


@pytest.fixture
def cli(tiny_dir, capsys):
    """Run `reverie ARGS` in this process on the tiny model; returns (code, stdout, stderr)."""

    def call(*args):
        code = run(["--model", str(tiny_dir), "--set", "max_new_tokens=6", *args])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return call


@pytest.fixture
def one_line_error():
    """reverie's error shape: one line, `error: ...`, no traceback."""

    def check(err: str) -> bool:
        lines = err.strip().splitlines()
        return len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err

    return check
