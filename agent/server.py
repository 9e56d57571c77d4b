"""`reverie serve`'s HTTP API: FastAPI over one ``Agent``, served by uvicorn.

    POST /v1/chat/completions, GET /v1/models       OpenAI-compatible (``agent.completions``)
    POST /v1/feedback                               thumbs, corrections, preferences, comments
    POST /v1/memories, GET /v1/memories             teach, list
    GET  /v1/memories/search, DELETE /v1/memories/{id}   search, forget (out of the weights too)
    GET  /v1/log, GET /v1/threads                   what was said
    POST /v1/recommendations, GET /v1/catalogues    k items of a catalogue for a conversation
    POST /v1/learn, GET /v1/jobs[/{id}]             admin: a night now, the runs
    GET  /v1/retention, POST /v1/models/{id}/promote, POST /v1/models/rollback   admin
    GET  /health (no key), GET /status              liveness; the version, the schedule, the last night

Errors have OpenAI's shape, ``{"error": {"message", "type", "param", "code"}}``, with the status
that says whose fault it was: 400 bad input, 401 no or wrong key, 403 not yours or not admin,
404 unknown id or model, 413 too large, 429 too many at once, 503 the store or model failed.
Request handlers are plain functions: FastAPI runs them on its thread pool, and every torch
call goes through the agent's one model thread, so turns queue there instead of competing.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from agent import completions
from agent.errors import InputTooLong, InvalidInput, NotFound, ReverieError
from agent.server_auth import Caller, Limiter, admin, caller, guarded, load_keys, user_for
from memory.jobs import Jobs

STATUS = {InvalidInput: 400, NotFound: 404}
TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error", 404: "not_found_error",
         413: "invalid_request_error", 429: "rate_limit_error", 503: "server_error"}


def error(status: int, message: str, code: str | None = None, param: str | None = None) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": TYPES.get(status, "server_error"), "param": param,
                                   "code": code}}, status_code=status)


class BodyLimit:
    """Refuse a request body over ``limit`` bytes with 413, before anything parses it."""

    def __init__(self, app, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            return await error(413, f"the request body is over {self.limit} bytes")(scope, receive, send)
        seen = 0

        async def counted():
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise _TooLarge
            return message

        try:
            await self.app(scope, counted, send)
        except _TooLarge:
            await error(413, f"the request body is over {self.limit} bytes")(scope, receive, send)


class _TooLarge(Exception):
    pass


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorBody(BaseModel):
    """OpenAI's error shape."""

    error: ErrorDetail


ERRORS: dict[int | str, dict[str, Any]] = {status: {"model": ErrorBody} for status in (400, 401, 403, 404, 413, 429, 503)}


def create_app(agent, daemon=None) -> FastAPI:
    """The API over ``agent``; ``daemon`` (``agent.daemon.Daemon``) runs nights."""
    app = FastAPI(title="reverie", version=_version(), responses=ERRORS, description="A self-updating assistant: an "
                  "OpenAI-compatible chat API over a model that learns what it is told, and reverie's own endpoints.")
    app.state.agent, app.state.daemon = agent, daemon
    app.state.keys = load_keys(agent.settings.serve.keys_file)
    app.state.limiter = Limiter(agent.settings.serve.concurrency_per_key)
    app.add_middleware(BodyLimit, limit=agent.settings.serve.max_body_bytes)

    @app.exception_handler(ReverieError)
    async def reverie_error(request, exc: ReverieError):
        status = next((s for kind, s in STATUS.items() if isinstance(exc, kind)), 503)
        code = "context_length_exceeded" if isinstance(exc, InputTooLong) else (
            "model_not_found" if isinstance(exc, NotFound) and "model" in str(exc) else None)
        return error(status, str(exc), code)

    @app.exception_handler(HTTPException)
    async def http_error(request, exc: HTTPException):
        return error(exc.status_code, str(exc.detail), "invalid_api_key" if exc.status_code == 401 else None)

    @app.exception_handler(RequestValidationError)
    async def invalid(request, exc: RequestValidationError):
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"] if p != "body")
        return error(400, f"{where or 'request'}: {first['msg']}", param=where or None)

    app.include_router(completions.router)
    _routes(app)
    return app


# -- reverie's own endpoints -------------------------------------------------------------------


class FeedbackIn(BaseModel):
    turn_id: int = Field(ge=1)
    kind: Literal["up", "down", "correction", "preference", "comment"]
    text: str | None = None
    chosen: str | None = None
    rejected: str | None = None
    better: str | None = None
    user: str | None = None


class TeachIn(BaseModel):
    text: str
    user: str | None = None
    probes: list[dict[str, Any]] | None = None


class RecommendIn(BaseModel):
    messages: list[dict[str, Any]] | None = Field(None, description="the conversation: user and assistant messages")
    thread_id: str | None = Field(None, description="or a logged thread of the user's")
    catalogue: str | None = None
    k: int | None = Field(None, ge=1, le=100)
    user: str | None = None
    recall: bool | None = None


def _routes(app: FastAPI) -> None:
    def owned_turn(agent, turn_id: int, user: str, who: Caller) -> None:
        if who.user is not None and agent.store.get_turn(turn_id).user != user:
            raise NotFound(f"no turn {turn_id}")  # another user's: as if it did not exist

    @app.post("/v1/feedback")
    def feedback(body: FeedbackIn, request: Request, who: Caller = Depends(caller)):
        agent, user = request.app.state.agent, user_for(who, body.user)
        owned_turn(agent, body.turn_id, user, who)
        payload = {k: v for k, v in (("chosen", body.chosen), ("rejected", body.rejected), ("better", body.better))
                   if v is not None} or None
        return agent.feedback(body.turn_id, body.kind, text=body.text, payload=payload, user=user).model_dump()

    @app.post("/v1/memories")
    def teach(body: TeachIn, request: Request, who: Caller = Depends(caller)):
        with guarded(request, who):
            experience_id = request.app.state.agent.teach(body.text, user_for(who, body.user), probes=body.probes)
        return {"experience_id": experience_id}

    @app.get("/v1/memories")
    def memories(request: Request, user: str | None = None, who: Caller = Depends(caller)):
        return {"memories": [e.model_dump() for e in request.app.state.agent.memories(user=user_for(who, user))]}

    @app.get("/v1/memories/search")
    def search(request: Request, query: str = Query(min_length=1), k: int = Query(5, ge=1, le=50),
               user: str | None = None, who: Caller = Depends(caller)):
        with guarded(request, who):
            hits = request.app.state.agent.search(query, user=user_for(who, user), k=k)
        return {"hits": [h.model_dump() for h in hits]}

    @app.delete("/v1/memories/{experience_id}")
    def forget(experience_id: int, request: Request, user: str | None = None, who: Caller = Depends(caller)):
        agent = request.app.state.agent
        owner = agent.store.get_experience(experience_id).user
        if owner != user_for(who, user) and not who.admin:
            raise NotFound(f"no experience {experience_id}")
        return agent.forget(experience_id).model_dump()

    @app.get("/v1/log")
    def log(request: Request, thread_id: str | None = None, limit: int = Query(20, ge=1, le=1000),
            user: str | None = None, who: Caller = Depends(caller)):
        agent, user = request.app.state.agent, user_for(who, user)
        if thread_id is not None and agent.store.get_thread(thread_id).user != user and not who.admin:
            raise NotFound(f"no thread {thread_id!r}")
        return {"turns": [t.model_dump() for t in agent.log(thread_id=thread_id, user=user, limit=limit)]}

    @app.get("/v1/threads")
    def threads(request: Request, user: str | None = None, who: Caller = Depends(caller)):
        return {"threads": [t.model_dump() for t in request.app.state.agent.threads(user=user_for(who, user))]}

    @app.post("/v1/recommendations")
    def recommendations(body: RecommendIn, request: Request, who: Caller = Depends(caller)):
        agent = request.app.state.agent
        limits = agent.settings.serve
        if body.messages is not None and len(body.messages) > limits.max_messages:
            raise InvalidInput(f"more than {limits.max_messages} messages")
        if any(len(str(m.get("content", ""))) > limits.max_message_chars for m in body.messages or []):
            raise InvalidInput(f"a message is over {limits.max_message_chars} characters")
        with guarded(request, who):
            return agent.recommend(body.messages, thread_id=body.thread_id, catalogue=body.catalogue, k=body.k,
                                   user=user_for(who, body.user), recall=body.recall).model_dump()

    @app.get("/v1/catalogues")
    def catalogues(request: Request, who: Caller = Depends(caller)):
        return {"catalogues": [c.model_dump() for c in request.app.state.agent.catalogues.list()]}

    @app.post("/v1/learn")
    def learn(request: Request, who: Caller = Depends(caller)):
        admin(who)
        daemon = request.app.state.daemon
        if daemon is None:
            raise HTTPException(503, "this server runs no nights: run `reverie learn`")
        return daemon.request().model_dump()

    @app.get("/v1/jobs")
    def jobs(request: Request, limit: int = Query(20, ge=1, le=1000), who: Caller = Depends(caller)):
        admin(who)
        return {"jobs": [j.model_dump() for j in Jobs(request.app.state.agent.store).list(limit)]}

    @app.get("/v1/jobs/{job_id}")
    def job(job_id: int, request: Request, who: Caller = Depends(caller)):
        admin(who)
        return Jobs(request.app.state.agent.store).get(job_id).model_dump()

    @app.get("/v1/retention")
    def retention(request: Request, who: Caller = Depends(caller)):
        admin(who)
        return request.app.state.agent.retention_report()

    @app.post("/v1/models/{version_id}/promote")
    def promote(version_id: str, request: Request, who: Caller = Depends(caller)):
        admin(who)
        return request.app.state.agent.promote(version_id, reason="promoted over the API").model_dump()

    @app.post("/v1/models/rollback")
    def rollback(request: Request, to: str | None = None, who: Caller = Depends(caller)):
        admin(who)
        return request.app.state.agent.rollback(to, reason="rolled back over the API").model_dump()

    @app.get("/health")
    def health():
        return {"status": "ok"}

    @app.get("/status")
    def status(request: Request, who: Caller = Depends(caller)):
        return status_of(request.app.state.agent, request.app.state.daemon, include_report=who.admin)


def status_of(agent, daemon, include_report: bool = True) -> dict[str, Any]:
    """What `reverie status` and ``GET /status`` say: the version served, the schedule, the last night."""
    from agent.daemon import next_night

    last = Jobs(agent.store).last("learn", "succeeded")
    active = agent.active_model()
    return {"active_version": active.id, "base_model": active.base_model,
            "adapters": [a.name for a in agent.versions.library(active)],
            "schedule": daemon.schedule if daemon else None,
            "next_night": daemon.next_run() if daemon else next_night(agent.settings.home),
            "last_night": None if last is None else {"job": last.id, "finished_at": last.finished_at,
                                                     **({"report": last.report} if include_report else {})},
            "judges": agent.judge_modes().model_dump()}


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("reverie")
    except PackageNotFoundError:
        return "0"
