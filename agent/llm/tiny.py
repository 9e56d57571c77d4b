"""A tiny random Llama with the SmolLM2 tokenizer, for tests that need a real model but not a good one.

About 3.2M parameters (most in the 49k-token embedding), so building, generating and a few
training steps take seconds on CPU. Its text is noise; use it for control flow, shapes and
plumbing, and the embedded 135M model wherever output quality matters.

    python -m agent.llm.tiny OUT_DIR TOKENIZER_DIR
"""

from __future__ import annotations

import sys
from pathlib import Path


def build_tiny_model(out_dir: Path, tokenizer_dir: Path, *, seed: int = 0, hidden: int = 64, layers: int = 2) -> Path:
    """Save a seeded random Llama that uses the tokenizer and chat template of ``tokenizer_dir``."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=hidden * 2,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


if __name__ == "__main__":
    print(build_tiny_model(Path(sys.argv[1]), Path(sys.argv[2])))
