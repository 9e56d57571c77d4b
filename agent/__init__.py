"""reverie: a self-updating assistant.

    from agent import Agent
    bot = Agent.open()
    print(bot.chat("What is the capital of France?").text)

Importing this package is cheap: it does not import torch or transformers. The facade is
resolved on first use, so the lower packages can import ``agent.errors`` (a leaf) without
pulling in the facade that imports them.
"""

from agent.errors import (
    ConfigError,
    InputTooLong,
    Interrupted,
    InvalidInput,
    ModelError,
    NotFound,
    ReverieError,
    StoreError,
)

_FACADE = ("Agent", "Export", "LearnReport", "Reply", "ReplyStream")

__all__ = [
    *_FACADE,
    "ConfigError",
    "InputTooLong",
    "Interrupted",
    "InvalidInput",
    "ModelError",
    "NotFound",
    "ReverieError",
    "StoreError",
]


def __getattr__(name: str):
    if name in _FACADE:
        from agent import facade

        return getattr(facade, name)
    raise AttributeError(f"module 'agent' has no attribute {name!r}")
