import pytest
import torch

from agent.errors import ModelError
from agent.llm import GenerationOptions, load_backend
from agent.llm.protocol import Backend
from agent.llm.transformers_backend import TransformersBackend

HELLO = [{"role": "user", "content": "Hello there"}]


def test_it_speaks_the_protocol(tiny_backend):
    assert isinstance(tiny_backend, Backend)
    assert tiny_backend.context_window == 2048
    assert tiny_backend.render(HELLO).endswith("<|im_start|>assistant\n")
    assert tiny_backend.count_chat_tokens(HELLO) == tiny_backend.count_tokens(tiny_backend.render(HELLO))


def test_greedy_generation_is_deterministic_and_counts_tokens(tiny_backend):
    options = GenerationOptions(max_new_tokens=6)
    first, second = tiny_backend.generate(HELLO, options), tiny_backend.generate(HELLO, options)
    assert first == second
    assert first.prompt_tokens == tiny_backend.count_chat_tokens(HELLO)
    assert 1 <= first.completion_tokens <= 6
    assert first.finish_reason in ("stop", "length")


def test_seeded_sampling_repeats(tiny_backend):
    options = GenerationOptions(max_new_tokens=6, temperature=1.0, seed=7)
    assert tiny_backend.generate(HELLO, options) == tiny_backend.generate(HELLO, options)


def test_streaming_yields_the_same_text_as_generate(tiny_backend):
    options = GenerationOptions(max_new_tokens=8)
    stream = tiny_backend.stream(HELLO, options)
    chunks = []
    while True:
        try:
            chunks.append(next(stream))
        except StopIteration as done:
            result = done.value
            break
    assert result == tiny_backend.generate(HELLO, options)
    assert "".join(chunks).strip() == result.text


def test_batched_generation_matches_one_by_one(embedded_backend):
    chats = [[{"role": "user", "content": "What is the capital of France?"}], [{"role": "user", "content": "Say hi."}]]
    options = GenerationOptions(max_new_tokens=12)
    batch = embedded_backend.generate_batch(chats, options)
    single = [embedded_backend.generate(c, options) for c in chats]
    assert [b.text for b in batch] == [s.text for s in single]
    assert [b.prompt_tokens for b in batch] == [s.prompt_tokens for s in single]


def test_scores_and_logits_agree(tiny_backend):
    prompt = tiny_backend.render(HELLO)
    scores = tiny_backend.score(prompt, "Hi, how are you?")
    logits = tiny_backend.logits(prompt, "Hi, how are you?")
    n = len(scores.token_ids)
    assert logits.shape == (n + 1, tiny_backend.model.config.vocab_size)
    manual = torch.log_softmax(logits[:-1], -1)[torch.arange(n), torch.tensor(scores.token_ids)]
    assert torch.allclose(manual, torch.tensor(scores.logprobs), atol=1e-5)
    assert scores.total < 0
    # The continuation is tokenised on its own: its ids do not depend on the prompt before it.
    assert tiny_backend.score("Another prompt", "Hi, how are you?").token_ids == scores.token_ids
    assert tiny_backend.logits(prompt).shape == (1, tiny_backend.model.config.vocab_size)


def test_scoring_in_a_batch_equals_scoring_one_at_a_time(tiny_backend):
    prompt = tiny_backend.render(HELLO)
    texts = ["Hi.", "You like films about time travel and very long sentences.", "", "Hello there, friend"]
    batched = tiny_backend.score_batch(prompt, texts, batch_size=3)  # a padded batch, and a batch of one
    for text, scores in zip(texts, batched):
        single = tiny_backend.score(prompt, text)
        assert scores.token_ids == single.token_ids
        assert torch.allclose(torch.tensor(scores.logprobs), torch.tensor(single.logprobs), atol=1e-4)


def test_reload_swaps_weights_in_place(tiny_dir, tiny_dir_b):
    backend = TransformersBackend(tiny_dir, device="cpu")
    prompt = backend.render(HELLO)
    before = backend.logits(prompt)
    backend.reload(tiny_dir_b, "v1")
    assert backend.version == "v1" and backend.path == tiny_dir_b
    assert not torch.allclose(before, backend.logits(prompt))
    backend.reload(tiny_dir, "base")
    assert torch.allclose(before, backend.logits(prompt))


def test_unloadable_models_are_one_model_error(tmp_path, models_dir, tiny_dir):
    with pytest.raises(ModelError, match="no model folder"):
        load_backend(str(tmp_path / "missing"), models_dir=models_dir)
    with pytest.raises(ModelError, match="not in the local Hugging Face cache"):
        load_backend("nobody-here/no-such-model", models_dir=models_dir)  # tests run with HF_HUB_OFFLINE=1
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelError, match="cannot load model"):
        load_backend(str(empty), models_dir=models_dir)
    # A model without a chat template cannot hold a conversation.
    import shutil

    plain = tmp_path / "plain"
    shutil.copytree(tiny_dir, plain)
    (plain / "chat_template.jinja").unlink()
    with pytest.raises(ModelError, match="no chat template"):
        load_backend(str(plain), models_dir=models_dir)


def test_a_lora_version_loads_merged_and_rollback_restores_identical_outputs(tiny_dir, tmp_path):
    from learners.selfparam import SelfParamConfig, target_set, train

    backend = TransformersBackend(tiny_dir, device="cpu")
    prompt = backend.render(HELLO)
    base_logits = backend.logits(prompt)
    trainee = TransformersBackend(tiny_dir, device="cpu")
    sentences = target_set(trainee.tokenizer, "Sys.", lambda x: f"Sys. {x}",
                           [(1, "My dog is Rex.", "Who is my dog?", "Your dog is Rex.")])
    trained = train(trainee.model, trainee.tokenizer, sentences, SelfParamConfig(epochs=3, batch_size=1, lr=1e-2)).model
    trained.save_pretrained(tmp_path / "v1")  # adapter_config.json + adapter weights
    with torch.inference_mode():
        expected = trained(input_ids=torch.tensor([backend.tokenizer(prompt, add_special_tokens=False)["input_ids"]])).logits[0, -1:]

    backend.reload(tmp_path / "v1", "v1")
    assert backend.version == "v1"
    assert torch.allclose(backend.logits(prompt), expected, atol=1e-4)
    assert not torch.allclose(backend.logits(prompt), base_logits)
    backend.reload(tiny_dir, "base")
    assert torch.equal(backend.logits(prompt), base_logits)  # rollback: bit-identical outputs


def test_a_stop_request_ends_generation_within_a_token(tiny_backend):
    import threading

    from agent.errors import Interrupted

    tiny_backend.stop = threading.Event()
    try:
        tiny_backend.stop.set()
        with pytest.raises(Interrupted):
            tiny_backend.generate([{"role": "user", "content": "Hello"}])
        tiny_backend.stop.clear()
        assert tiny_backend.generate([{"role": "user", "content": "Hello"}]).completion_tokens >= 1
    finally:
        tiny_backend.stop = None
