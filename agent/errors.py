"""The errors reverie raises on purpose: few, typed, and each worth one line to the user.

This module imports nothing, so every package (``memory``, ``agent.llm``, ``graphs``) may raise
these without importing anything else of ours. The CLI prints ``str(error)`` on one line and
exits non-zero; anything that is not a ``ReverieError`` is a bug and keeps its traceback.
"""


class ReverieError(Exception):
    """Base of every expected failure. ``exit_code`` is what the CLI exits with."""

    exit_code = 1


class InvalidInput(ReverieError):
    """The caller gave something unusable: an empty message, a binary file, an unknown kind."""

    exit_code = 2


class InputTooLong(InvalidInput):
    """A message that cannot fit in the model's context window even with no history."""


class NotFound(ReverieError):
    """An id (turn, thread, experience, model version) that does not exist."""

    exit_code = 3


class ConfigError(ReverieError):
    """A bad setting in reverie.toml, the environment or a flag."""

    exit_code = 2


class StoreError(ReverieError):
    """The data home cannot be used: a corrupt or locked database, an unwritable folder."""

    exit_code = 4


class ModelError(ReverieError):
    """A model cannot be found, converted or loaded."""

    exit_code = 5


class Interrupted(ReverieError):
    """Work stopped on request (Ctrl-C, a shutdown): what it had written stays consistent."""

    exit_code = 130
