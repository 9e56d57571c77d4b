"""Fixtures for the agent's own tests: a real API server on loopback."""

from __future__ import annotations

import socket
import threading
import time

import httpx
import openai
import pytest
import uvicorn

from agent import Agent
from agent.server import create_app


class Served:
    def __init__(self, agent: Agent, daemon=None) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.agent = agent
        self.server = uvicorn.Server(uvicorn.Config(create_app(agent, daemon), port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        while not self.server.started:
            time.sleep(0.05)

    def client(self, key: str = "none") -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.url}/v1", api_key=key, max_retries=0)

    def http(self, key: str | None = None) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {key}"} if key else {}, timeout=120)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


@pytest.fixture
def serve(home, tiny_dir, monkeypatch):
    started = []

    def make(keys: str | None = None, **overrides) -> Served:
        if keys:
            monkeypatch.setenv("REVERIE_API_KEYS", keys)
        agent = Agent.open(home, **{"model": str(tiny_dir), "max_new_tokens": 8, **overrides})
        started.append(Served(agent))
        return started[-1]

    yield make
    for served in started:
        served.stop()
        served.agent.close()
