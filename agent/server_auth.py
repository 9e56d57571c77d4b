"""Who is calling the API, what they may reach, and how many of their requests run at once.

Without keys the server answers only on loopback (``reverie serve`` refuses any other address),
every caller names their user (OpenAI's ``user`` field, default ``default``), and the admin
endpoints are off. With keys (``REVERIE_API_KEYS="KEY:USER[:admin],..."`` or ``serve.keys_file``,
JSON ``{"KEY": {"user": "ana", "admin": false}}``) every request needs ``Authorization: Bearer
KEY``; a key bound to a user reaches only that user's memories, feedback, log and threads, and
only an admin key reaches the admin endpoints (learn, jobs, retention, promote, rollback, prune)
or another user's data.
"""

from __future__ import annotations

import hmac
import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from fastapi import HTTPException, Request

from agent.errors import ConfigError


@dataclass(frozen=True)
class Key:
    user: str
    admin: bool = False


@dataclass(frozen=True)
class Caller:
    key: str | None  # None: no keys are configured
    user: str | None  # the user the key is bound to (None: any, for an admin key or without keys)
    admin: bool


def load_keys(keys_file: Path | None) -> dict[str, Key]:
    """The API keys from ``REVERIE_API_KEYS`` and the keys file; one ConfigError line if malformed."""
    keys: dict[str, Key] = {}
    for entry in filter(None, (e.strip() for e in os.environ.get("REVERIE_API_KEYS", "").split(","))):
        parts = entry.split(":")
        if len(parts) not in (2, 3) or not parts[0] or not parts[1] or (len(parts) == 3 and parts[2] != "admin"):
            raise ConfigError("REVERIE_API_KEYS holds KEY:USER or KEY:USER:admin entries, separated by commas")
        keys[parts[0]] = Key(parts[1], len(parts) == 3)
    if keys_file is not None:
        try:
            data = json.loads(Path(keys_file).read_text(encoding="utf-8"))
            keys.update({k: Key(str(v["user"]), bool(v.get("admin", False))) for k, v in data.items()})
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ConfigError(f'cannot read API keys from {keys_file}: {exc}; write {{"KEY": {{"user": "ana"}}}}') from exc
    return keys


def caller(request: Request) -> Caller:
    """The FastAPI dependency every endpoint but /health takes."""
    keys: dict[str, Key] = request.app.state.keys
    if not keys:
        return Caller(None, None, False)
    header = request.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not given:
        raise HTTPException(401, "missing API key: send Authorization: Bearer KEY")
    for key, bound in keys.items():
        if hmac.compare_digest(key.encode(), given.strip().encode()):
            return Caller(key, None if bound.admin else bound.user, bound.admin)
    raise HTTPException(401, "invalid API key")


def user_for(who: Caller, asked: str | None) -> str:
    """The user a request acts for: the key's own, or (admin, or no keys) the one it names."""
    if who.user is not None:
        if asked not in (None, "", who.user):
            raise HTTPException(403, f"this API key belongs to user {who.user!r}; it cannot act for {asked!r}")
        return who.user
    return asked or "default"


def admin(who: Caller) -> None:
    """Admin endpoints need an admin key; without keys they are off."""
    if not who.admin:
        raise HTTPException(403, "an admin endpoint: it needs an admin API key (REVERIE_API_KEYS=KEY:USER:admin)")


class Limiter:
    """At most ``cap`` requests of one key (or of everyone, without keys) at once."""

    def __init__(self, cap: int) -> None:
        self.cap, self.running, self.lock = cap, {}, threading.Lock()

    def enter(self, key: str | None) -> None:
        with self.lock:
            if self.running.get(key, 0) >= self.cap:
                raise HTTPException(429, f"{self.cap} requests of this key are running; retry when one is done")
            self.running[key] = self.running.get(key, 0) + 1

    def leave(self, key: str | None) -> None:
        with self.lock:
            self.running[key] -= 1


@contextmanager
def guarded(request: Request, who: Caller) -> Iterator[None]:
    limiter: Limiter = request.app.state.limiter
    limiter.enter(who.key)
    try:
        yield
    finally:
        limiter.leave(who.key)
