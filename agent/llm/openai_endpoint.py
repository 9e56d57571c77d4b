"""A question writer behind any OpenAI-compatible chat endpoint (vLLM, a llama.cpp server, a
hosted API): ``generator_model = "openai:MODEL"`` with ``generator_base_url``.

Only what a generator needs: ``generate`` and ``generate_batch`` over ``/chat/completions``.
It cannot serve chat turns, judge or be trained: those need logits, tokens and weights, which
such endpoints do not give. Plain ``urllib``, so no new dependency; a batch is sent one
conversation at a time (servers batch concurrent requests themselves, we keep it simple).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence

from agent.errors import ModelError
from agent.llm.protocol import Generation, GenerationOptions, Message

PREFIX = "openai:"


class OpenAIEndpoint:
    def __init__(self, model: str, base_url: str, api_key: str | None = None, timeout_s: float = 120.0) -> None:
        if not model.strip():
            raise ModelError("openai: needs a model name, e.g. openai:Qwen/Qwen2.5-7B-Instruct")
        self.name, self.version, self.path = PREFIX + model, "remote", None
        self.model, self.url = model, base_url.rstrip("/") + "/chat/completions"
        self.api_key, self.timeout_s = api_key, timeout_s

    def generate(
        self,
        messages: Sequence[Message],
        options: GenerationOptions = GenerationOptions(),
        on_text: Callable[[str], None] | None = None,
        prefill: str = "",
    ) -> Generation:
        if prefill:
            raise ModelError(f"{self.name} cannot start a reply with given text (prefill)")
        body = {"model": self.model, "messages": list(messages), "max_tokens": options.max_new_tokens,
                "temperature": options.temperature, "top_p": options.top_p if options.temperature > 0 else 1.0}
        if options.seed is not None:
            body["seed"] = options.seed
        answer = self._post(body)
        try:
            choice, usage = answer["choices"][0], answer.get("usage") or {}
            text = choice["message"]["content"] or ""
        except (KeyError, IndexError, TypeError) as exc:
            raise ModelError(f"{self.url} answered without a message ({exc!r})") from exc
        if on_text is not None:
            on_text(text)
        finish = "length" if choice.get("finish_reason") == "length" else "stop"
        return Generation(text.strip(), usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0), finish)

    def generate_batch(
        self, conversations: Sequence[Sequence[Message]], options: GenerationOptions = GenerationOptions(),
        prefill: str = "",
    ) -> list[Generation]:
        return [self.generate(c, options, prefill=prefill) for c in conversations]

    def _post(self, body: dict) -> dict:
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        request = urllib.request.Request(self.url, json.dumps(body).encode(), headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace").strip().replace("\n", " ")[:200]
            raise ModelError(f"{self.url} answered HTTP {exc.code}: {detail}") from None
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ModelError(f"cannot reach {self.url}: {reason}") from None
        except ValueError as exc:
            raise ModelError(f"{self.url} did not answer JSON: {exc}") from None
