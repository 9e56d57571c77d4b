"""The OpenAI-compatible half of the API: ``POST /v1/chat/completions`` and ``GET /v1/models``.

How an OpenAI request becomes a reverie turn:
  - the OpenAI ``user`` field is reverie's user (with API keys, a key bound to a user may name
    only that user);
  - a thread continues when the request names one, in the extra body field ``thread_id`` or the
    header ``X-Reverie-Thread``; an id never seen starts a thread under that id. Then only the
    last message (a user message) is new: the thread keeps its own history;
  - without a thread the request is stateless, as with any OpenAI server: a new thread starts
    from the request's earlier user and assistant messages, and the last one is answered. The
    client's system messages are not used: reverie's own system prompt and recall are;
  - ``model`` is ``reverie`` (the active version) or the active version's id; other versions are
    listed by ``/v1/models`` (vLLM's convention: adapters by name) but answer only once promoted;
  - the reply's ``id`` is ``chatcmpl-<turn id>``; the extra field ``reverie`` holds the turn and
    thread ids, the version and adapter that answered, the verdicts, the recalled memories, and
    the recommendation agent's answer when the message asked for picks.
    The ``openai`` client keeps unknown fields (``completion.model_extra["reverie"]``).
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any, Literal

import anyio
from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from agent.errors import InvalidInput, NotFound
from agent.server_auth import Caller, caller, guarded, user_for

MODEL = "reverie"
router = APIRouter()


class Message(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):  # content parts: the text ones, joined
            return "".join(p.get("text", "") for p in self.content if isinstance(p, dict) and p.get("type") == "text")
        return self.content or ""


class StreamOptions(BaseModel):
    include_usage: bool = False


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")  # OpenAI clients send many optional fields

    model: str
    messages: list[Message] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    user: str | None = None
    thread_id: str | None = Field(None, description="reverie: continue this thread, or start one under this id")
    recall: bool | None = Field(None, description="reverie: false answers from the weights alone (no memories)")
    max_tokens: int | None = Field(None, ge=1, le=4096)
    max_completion_tokens: int | None = Field(None, ge=1, le=4096)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    seed: int | None = Field(None, ge=0, le=2**63 - 1)
    n: int | None = Field(None, ge=1, le=1)


def check_model(request: Request, name: str) -> str:
    agent = request.app.state.agent
    if name == MODEL:  # the common case: no lookup at all
        return MODEL
    active = agent.versions.active(agent.settings.model)  # the server registered the base at start
    if name == active.id:
        return active.id
    if name in {v.id for v in agent.versions.list(active.base_model)}:
        raise InvalidInput(f"model {name} is not the active version ({active.id}); reverie answers with the active "
                           f"version: promote {name} first, or ask for model \"{MODEL}\"")
    raise NotFound(f"the model {name!r} does not exist; GET /v1/models lists them")


def _turn(body: ChatRequest, request: Request, who: Caller, thread_header: str | None) -> dict[str, Any]:
    limits = request.app.state.agent.settings.serve
    if len(body.messages) > limits.max_messages:
        raise InvalidInput(f"{len(body.messages)} messages; at most {limits.max_messages} in one request")
    for message in body.messages:
        if len(message.text()) > limits.max_message_chars:
            raise InvalidInput(f"a message of {len(message.text())} characters; at most {limits.max_message_chars}")
    check_model(request, body.model)
    last = body.messages[-1]
    if last.role != "user":
        raise InvalidInput("the last message must be a user message: it is what reverie answers")
    thread = body.thread_id or thread_header
    earlier = [{"role": m.role, "content": m.text()} for m in body.messages[:-1] if m.role in ("user", "assistant")]
    options = {"max_new_tokens": body.max_completion_tokens or body.max_tokens, "temperature": body.temperature,
               "top_p": body.top_p, "seed": body.seed}
    return {"text": last.text(), "thread_id": thread, "user": user_for(who, body.user), "recall": body.recall,
            "history": None if thread else earlier, "options": options}


def _extra(reply) -> dict[str, Any]:
    return {"turn_id": reply.turn_id, "user_turn_id": reply.user_turn_id, "thread_id": reply.thread_id,
            "user": reply.user, "model_version": reply.model_version, "adapter": reply.adapter,
            "verdicts": reply.verdicts, "memories": reply.memories, "latency_s": reply.latency_s,
            "recommendation": reply.recommendation}


def _usage(reply) -> dict[str, int]:
    return {"prompt_tokens": reply.prompt_tokens, "completion_tokens": reply.completion_tokens,
            "total_tokens": reply.prompt_tokens + reply.completion_tokens}


@router.post("/v1/chat/completions", responses={200: {"content": {"application/json": {}, "text/event-stream": {}},
                                                                 "description": "A completion, or (stream) its chunks"}})
def chat_completions(body: ChatRequest, request: Request, who: Caller = Depends(caller),
                     x_reverie_thread: str | None = Header(None)):
    """A turn, the OpenAI way (see the module's docstring for threads, users and models)."""
    turn = _turn(body, request, who, x_reverie_thread)
    agent = request.app.state.agent
    if body.stream:
        return _stream(agent, turn, body, request, who)
    with guarded(request, who):
        reply = agent.chat(**turn)
    return {"id": f"chatcmpl-{reply.turn_id}", "object": "chat.completion", "created": int(time.time()),
            "model": body.model, "system_fingerprint": reply.model_version,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": reply.text},
                         "finish_reason": reply.finish_reason, "logprobs": None}],
            "usage": _usage(reply), "reverie": _extra(reply)}


def _stream(agent, turn: dict, body: ChatRequest, request: Request, who: Caller) -> StreamingResponse:
    guard = guarded(request, who)
    guard.__enter__()  # held until the stream ends: a stream counts against its key's cap
    try:
        stream = agent.stream(**turn)
    except BaseException:
        guard.__exit__(None, None, None)
        raise
    created, include_usage = int(time.time()), bool(body.stream_options and body.stream_options.include_usage)

    def chunk(delta: dict, finish: str | None = None, **extra) -> str:
        data = {"id": "chatcmpl-pending", "object": "chat.completion.chunk", "created": created, "model": body.model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}], **extra}
        return f"data: {json.dumps(data)}\n\n"

    async def events() -> AsyncIterator[str]:
        pieces = iter(stream)
        try:
            yield chunk({"role": "assistant", "content": ""})
            while (piece := await anyio.to_thread.run_sync(next, pieces, None)) is not None:
                yield chunk({"content": piece})
                if await request.is_disconnected():
                    return
            reply = stream.reply
            final = chunk({}, reply.finish_reason, reverie=_extra(reply)).replace("chatcmpl-pending", f"chatcmpl-{reply.turn_id}")
            yield final
            if include_usage:  # OpenAI's convention: one last chunk, no choices, the usage
                usage = {"id": f"chatcmpl-{reply.turn_id}", "object": "chat.completion.chunk", "created": created,
                         "model": body.model, "choices": [], "usage": _usage(reply)}
                yield f"data: {json.dumps(usage)}\n\n"
            yield "data: [DONE]\n\n"
        finally:  # the client went away, or the stream ended: stop generating, keep the user's message
            stream.cancel()
            guard.__exit__(None, None, None)

    return StreamingResponse(events(), media_type="text/event-stream")


@router.get("/v1/models")
def models(request: Request, who: Caller = Depends(caller)):
    """``reverie`` (the active version) and every version by its id, vLLM-style."""
    agent = request.app.state.agent
    active = agent.active_model()
    created = lambda v: int(time.mktime(time.strptime(v.created_at[:19], "%Y-%m-%dT%H:%M:%S")))  # noqa: E731
    data = [{"id": MODEL, "object": "model", "created": created(active), "owned_by": "reverie", "root": active.id}]
    data += [{"id": v.id, "object": "model", "created": created(v), "owned_by": "reverie", "root": v.base_model,
              "parent": v.parent, "active": v.id == active.id} for v in agent.models() if not v.pruned_at]
    return {"object": "list", "data": data}
