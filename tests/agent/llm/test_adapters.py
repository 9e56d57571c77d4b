"""Adapters merged by name into a plain model answer exactly as peft's own LoRA modules do, and
the plain weights come back bit for bit (they are never written)."""

import pytest
import torch

from agent.errors import ModelError
from agent.llm.protocol import GenerationOptions
from agent.llm.transformers_backend import TransformersBackend


def _planted_adapter(tiny_dir, folder, seed):
    """A LoRA with random (non-zero) A and B, saved as peft saves one; returns its peft model."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(tiny_dir))
    peft = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", task_type="CAUSAL_LM"))
    torch.manual_seed(seed)
    with torch.no_grad():
        for name, param in peft.named_parameters():
            if "lora_" in name:
                param.normal_(0, 0.2)
    peft.save_pretrained(str(folder))
    return peft.eval()


@pytest.fixture
def backend(tiny_dir):
    return TransformersBackend(tiny_dir, device="cpu", dtype="float32")


def test_a_merged_adapter_gives_peft_s_logits_and_unmerging_gives_the_base_back(backend, tiny_dir, tmp_path):
    peft = _planted_adapter(tiny_dir, tmp_path / "a", seed=1)
    prompt = backend.render([{"role": "user", "content": "Where does Ines live?"}])
    plain = backend.logits(prompt, "In Lisbon.")
    backend.attach({"a": tmp_path / "a"})

    merged = backend.logits(prompt, "In Lisbon.", adapter="a")
    ids = torch.tensor([backend.encode(prompt) + backend.encode("In Lisbon.")])
    with torch.no_grad():
        expected = peft(input_ids=ids).logits[0, len(backend.encode(prompt)) - 1 :]
    assert not torch.allclose(merged, plain, atol=1e-3)  # the adapter changes the model
    assert torch.allclose(merged, expected, atol=1e-4)
    assert torch.equal(backend.logits(prompt, "In Lisbon."), plain)  # the base, untouched


def test_two_adapters_merge_as_peft_sums_two_active_adapters(backend, tiny_dir, tmp_path):
    """A knowledge adapter and a user's policy answer a turn together (graphs/chat.py)."""
    peft = _planted_adapter(tiny_dir, tmp_path / "a", seed=1)
    _planted_adapter(tiny_dir, tmp_path / "b", seed=2)
    peft.load_adapter(str(tmp_path / "b"), adapter_name="b")
    peft.base_model.set_adapter(["default", "b"])  # peft sums the deltas of its active adapters
    prompt = backend.render([{"role": "user", "content": "Hi"}])
    plain = backend.logits(prompt, "Hello.")
    backend.attach({"a": tmp_path / "a", "b": tmp_path / "b"})
    both = backend.logits(prompt, "Hello.", adapter=("a", "b"))
    ids = torch.tensor([backend.encode(prompt) + backend.encode("Hello.")])
    with torch.no_grad():
        expected = peft(input_ids=ids).logits[0, len(backend.encode(prompt)) - 1 :]
    assert torch.allclose(both, expected, atol=1e-4)
    assert not torch.allclose(both, backend.logits(prompt, "Hello.", adapter="a"), atol=1e-3)
    assert torch.equal(backend.logits(prompt, "Hello."), plain)


def test_switching_straight_from_one_adapter_to_another_gives_the_second_s_logits(backend, tiny_dir, tmp_path):
    """The switch subtracts the old product and adds the new one in one matmul per module."""
    _planted_adapter(tiny_dir, tmp_path / "a", seed=1)
    peft_b = _planted_adapter(tiny_dir, tmp_path / "b", seed=2)
    prompt = backend.render([{"role": "user", "content": "Hi"}])
    plain = backend.logits(prompt, "Hello.")
    backend.attach({"a": tmp_path / "a", "b": tmp_path / "b"})
    assert set(backend._adapters.loaded) == {"a", "b"}  # read when attached, not in a turn
    backend.logits(prompt, "Hello.", adapter="a")
    switched = backend.logits(prompt, "Hello.", adapter="b")
    ids = torch.tensor([backend.encode(prompt) + backend.encode("Hello.")])
    with torch.no_grad():
        expected = peft_b(input_ids=ids).logits[0, len(backend.encode(prompt)) - 1 :]
    assert torch.allclose(switched, expected, atol=1e-4)
    assert torch.equal(backend.logits(prompt, "Hello."), plain)


def _two_attached(backend, tiny_dir, tmp_path):
    """Two planted adapters attached as "a" and "b": a prompt, and the logits with each."""
    _planted_adapter(tiny_dir, tmp_path / "a", seed=1)
    _planted_adapter(tiny_dir, tmp_path / "b", seed=2)
    backend.attach({"a": tmp_path / "a", "b": tmp_path / "b"})
    prompt = backend.render([{"role": "user", "content": "Hi"}])
    return prompt, backend.logits(prompt, "Hello.", adapter="a"), backend.logits(prompt, "Hello.", adapter="b")


def test_merged_sets_beyond_the_memory_budget_are_evicted_and_rebuilt_right(backend, tiny_dir, tmp_path):
    prompt, a, b = _two_attached(backend, tiny_dir, tmp_path)
    assert set(backend._adapters.sets) == {("a",), ("b",)}  # both kept: switching back costs nothing
    backend.attach({})  # a version without them: their sets go
    backend._adapters.budget = 0  # room for one set only: each switch rebuilds into the evicted one
    backend.attach({"a": tmp_path / "a", "b": tmp_path / "b"})
    assert torch.equal(backend.logits(prompt, "Hello.", adapter="a"), a)
    assert list(backend._adapters.sets) == [("a",)]
    assert torch.equal(backend.logits(prompt, "Hello.", adapter="b"), b)
    assert list(backend._adapters.sets) == [("b",)]


def test_generation_follows_the_adapter_a_turn_names(backend, tiny_dir, tmp_path):
    _planted_adapter(tiny_dir, tmp_path / "a", seed=1)
    _planted_adapter(tiny_dir, tmp_path / "b", seed=2)
    backend.attach({"a": tmp_path / "a", "b": tmp_path / "b"})
    messages = [{"role": "user", "content": "Hello"}]
    greedy = lambda adapter: backend.generate(messages, GenerationOptions(max_new_tokens=6, adapter=adapter)).text  # noqa: E731
    plain, a, b = greedy(None), greedy("a"), greedy("b")
    assert len({plain, a, b}) == 3
    assert (greedy("b"), greedy(None), greedy("a")) == (b, plain, a)  # any order of switches, same answers


def test_an_unknown_or_detached_adapter_is_one_clear_error(backend, tiny_dir, tmp_path):
    _planted_adapter(tiny_dir, tmp_path / "a", seed=1)
    prompt = backend.render([{"role": "user", "content": "Hi"}])
    plain = backend.logits(prompt)
    backend.attach({"a": tmp_path / "a"})
    backend.generate([{"role": "user", "content": "Hi"}], GenerationOptions(max_new_tokens=2, adapter="a"))
    assert backend._adapters.merged == ("a",)
    backend.attach({})  # the version changed while "a" was merged: it is unmerged and gone
    assert backend._adapters.merged == ()
    assert torch.equal(backend.logits(prompt), plain)
    with pytest.raises(ModelError, match="no adapter 'a' is attached"):
        backend.generate([{"role": "user", "content": "Hi"}], GenerationOptions(max_new_tokens=2, adapter="a"))


def test_switching_between_kept_sets_reads_no_adapter_from_disk(backend, tiny_dir, tmp_path):
    """Past ``keep`` adapters the parsed LoRAs are dropped; a kept merged set still needs none."""
    import shutil

    prompt, a, b = _two_attached(backend, tiny_dir, tmp_path)
    backend._adapters.loaded.clear()
    shutil.rmtree(tmp_path / "a")
    shutil.rmtree(tmp_path / "b")
    assert torch.equal(backend.logits(prompt, "Hello.", adapter="a"), a)
    assert torch.equal(backend.logits(prompt, "Hello.", adapter="b"), b)
