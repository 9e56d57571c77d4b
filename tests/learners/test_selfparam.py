import math

import pytest
import torch

from learners.evaluate import CHAT_TEXT, GENERAL_QUESTIONS
from learners.selfparam import (
    FACTUAL_PROMPTS,
    OPEN_PROMPTS,
    REPLAY_PROMPTS,
    SelfParamConfig,
    encode,
    kl_per_token,
    masked_mean,
    render_sentence,
    replay_count,
    sentence_logits,
    target_set,
    train,
)

SYSTEM = "You are a helpful AI assistant."


def teacher_system(experience: str) -> str:
    return f"{SYSTEM}\nFacts you know about the user:\n- {experience}"


@pytest.fixture
def tiny(tiny_dir):
    from agent.llm.transformers_backend import TransformersBackend

    backend = TransformersBackend(tiny_dir, device="cpu")  # a fresh copy: training changes it
    return backend.model, backend.tokenizer


def test_a_sentence_is_what_the_chat_template_writes_after_the_prompt(tiny):
    _, tokenizer = tiny
    prefix, text = render_sentence(tokenizer, SYSTEM, "Where does Teodor work?", "Teodor works in Port Halvik.")
    assert prefix.endswith("<|im_start|>user\n") and SYSTEM in prefix
    assert text == "Where does Teodor work?<|im_end|>\n<|im_start|>assistant\nTeodor works in Port Halvik.<|im_end|>\n"
    inference = tokenizer.apply_chat_template(
        [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "Where does Teodor work?"}],
        tokenize=False, add_generation_prompt=True)
    assert (prefix + text).startswith(inference)  # the student sees exactly the inference-time prompt


def test_teacher_and_student_see_identical_sentence_ids(tiny):
    _, tokenizer = tiny
    sentences = target_set(tokenizer, SYSTEM, teacher_system, [
        (1, "My brother Teodor is a ferry mechanic in Port Halvik.", "Where does Teodor work?", "In Port Halvik."),
        (2, "My grandmother Ysolde plays the bandoneon.", "What does Ysolde play?", "Ysolde plays the bandoneon, a kind of concertina."),
        (None, "", "Give me a tip for sleeping better.", "Keep a regular bedtime."),
    ])
    assert sentences[0].teacher_prefix != sentences[0].student_prefix
    assert sentences[2].teacher_prefix == sentences[2].student_prefix  # replay: no experience
    batch = encode(tokenizer, sentences, pad_id=tokenizer.pad_token_id)
    for i, s in enumerate(sentences):
        n = int(batch.token_mask[i].sum())
        ids = batch.sentence_ids[i, :n]
        assert ids.tolist() == tokenizer(s.text, add_special_tokens=False)["input_ids"]
        # The token each kept logit predicts is the same sentence token on both sides.
        assert torch.equal(batch.teacher_ids[i, batch.teacher_positions[i, :n] + 1], ids)
        assert torch.equal(batch.student_ids[i, batch.student_positions[i, :n] + 1], ids)
        teacher_len = len(tokenizer(s.teacher_prefix, add_special_tokens=False)["input_ids"])
        assert batch.teacher_positions[i, 0] == teacher_len - 1


def test_the_answer_mask_covers_a_grounded_answer_only(tiny):
    _, tokenizer = tiny
    teodor = "My brother Teodor is a ferry mechanic in Port Halvik."
    sentences = target_set(tokenizer, SYSTEM, teacher_system, [
        (1, teodor, "Where does Teodor work?", "In Port Halvik."),
        (1, teodor, "Where does Teodor live?", "Teodor lives in Oslo."),  # words the fact does not have
        (None, "", "Give me a tip for sleeping better.", "Keep a regular bedtime."),
    ])
    batch = encode(tokenizer, sentences, pad_id=tokenizer.pad_token_id)
    marked = batch.sentence_ids[0][batch.answer_mask[0].bool()]
    assert tokenizer.decode(marked).startswith("In Port Halvik.")  # the answer, then the turn's end
    assert "Teodor" not in tokenizer.decode(marked)  # not the question
    assert batch.answer_mask[1].sum() == 0  # left to the KL, which corrects it towards the teacher
    assert batch.answer_mask[2].sum() == 0  # replay is held by the KL alone


def test_answer_ce_adds_the_answers_cross_entropy_to_the_first_loss(tiny):
    model, tokenizer = tiny
    sentences = target_set(tokenizer, SYSTEM, teacher_system, [
        (1, "My dog is called Pimento.", "What is my dog called?", "Your dog is called Pimento.")] * 2)
    batch = encode(tokenizer, sentences, pad_id=tokenizer.pad_token_id)
    with torch.no_grad():
        teacher = sentence_logits(model, batch.teacher_ids, batch.teacher_mask, batch.teacher_positions)
        student = sentence_logits(model, batch.student_ids, batch.student_mask, batch.student_positions)
    kl = masked_mean(kl_per_token(teacher, student), batch.token_mask).item()
    nll = -student.log_softmax(-1).gather(-1, batch.sentence_ids.unsqueeze(-1)).squeeze(-1)
    ce = masked_mean(nll, batch.answer_mask).item()
    first = train(model, tokenizer, sentences, SelfParamConfig(epochs=1, batch_size=2, answer_ce=0.5)).losses[0]
    assert first == pytest.approx(kl + 0.5 * ce, rel=1e-4)  # LoRA starts as the identity


def test_kl_direction_and_reduction_match_a_hand_computation():
    teacher = torch.tensor([[[2.0, 0.0, -1.0], [0.5, 0.5, 0.0]]])  # (B=1, N=2, V=3)
    student = torch.tensor([[[0.0, 1.0, 0.0], [0.5, 0.5, 0.0]]])

    def hand(t_logits, s_logits):
        p = [math.exp(v) for v in t_logits]
        q = [math.exp(v) for v in s_logits]
        p = [v / sum(p) for v in p]
        q = [v / sum(q) for v in q]
        return sum(pi * math.log(pi / qi) for pi, qi in zip(p, q))

    got = kl_per_token(teacher, student)
    assert got.shape == (1, 2)
    assert got[0, 0].item() == pytest.approx(hand(teacher[0, 0].tolist(), student[0, 0].tolist()), abs=1e-6)
    assert got[0, 1].item() == pytest.approx(0.0, abs=1e-7)  # identical distributions
    reverse = kl_per_token(student, teacher)[0, 0].item()
    assert reverse == pytest.approx(hand(student[0, 0].tolist(), teacher[0, 0].tolist()), abs=1e-6)
    assert abs(reverse - got[0, 0].item()) > 1e-3  # so a swapped direction would be caught
    mask = torch.tensor([[1.0, 0.0]])
    assert masked_mean(got, mask).item() == pytest.approx(got[0, 0].item())  # padding does not count


def test_the_loss_is_zero_when_the_student_is_the_teacher(tiny):
    model, tokenizer = tiny
    replay = target_set(tokenizer, SYSTEM, teacher_system, [(None, "", "Name a colour.", "Blue is a colour.")] * 2)
    batch = encode(tokenizer, replay, pad_id=tokenizer.pad_token_id)
    with torch.no_grad():
        teacher = sentence_logits(model, batch.teacher_ids, batch.teacher_mask, batch.teacher_positions)
        student = sentence_logits(model, batch.student_ids, batch.student_mask, batch.student_positions)
    assert masked_mean(kl_per_token(teacher, student), batch.token_mask).item() == pytest.approx(0.0, abs=1e-6)
    # LoRA starts as the identity (B = 0), so the first step's loss on replay is zero too.
    result = train(model, tokenizer, replay, SelfParamConfig(epochs=1, batch_size=2))
    assert result.losses[0] == pytest.approx(0.0, abs=1e-6)


def test_training_pulls_the_student_towards_the_teacher(tiny):
    model, tokenizer = tiny
    pairs = [(1, "My dog is called Pimento and she is a greyhound.", q, a) for q, a in [
        ("What is my dog called?", "Your dog is called Pimento."),
        ("What breed is my dog?", "Your dog is a greyhound."),
        ("Tell me about my dog.", "Your dog Pimento is a greyhound."),
    ]]
    sentences = target_set(tokenizer, SYSTEM, teacher_system, pairs)
    # The paper's loss alone: the tiny random model's cross-entropy on the answers barely moves.
    result = train(model, tokenizer, sentences, SelfParamConfig(epochs=30, batch_size=3, lr=3e-3, answer_ce=0))
    assert result.steps == 30 and len(result.losses) == 30
    assert result.losses[0] > 0
    assert sum(result.losses[-3:]) / 3 < 0.5 * sum(result.losses[:3]) / 3
    summary = result.summary()
    assert summary["config"]["lora_r"] == 16 and summary["sentences"] == 3


def test_keeping_the_teacher_changes_nothing_but_its_passes(tiny_dir):
    from agent.llm.transformers_backend import TransformersBackend

    pairs = [(1, "My dog is called Pimento and she is a greyhound.", q, a) for q, a in [
        ("What is my dog called?", "Your dog is called Pimento."),
        ("What breed is my dog?", "Your dog is a greyhound."),
        ("Tell me about my dog.", "Your dog Pimento is a greyhound, and she rides along on the ferry."),
    ]] + [(None, "", "Name a colour.", "Blue is a colour.")]
    backend = TransformersBackend(tiny_dir, device="cpu")
    sizes = [len(backend.tokenizer(s.text, add_special_tokens=False)["input_ids"]) * len(backend.tokenizer) * 4
             for s in target_set(backend.tokenizer, SYSTEM, teacher_system, pairs)]
    all_but_one = math.ceil((sum(sizes) - min(sizes)) / 2**20)  # MB: whatever the order, one sentence is left out
    assert all_but_one * 2**20 < sum(sizes)
    runs = {}
    for budget in (0, all_but_one, 2048):  # recompute every step; keep 3 sentences of 4; keep all
        backend = TransformersBackend(tiny_dir, device="cpu")
        teacher_passes = []
        backend.model.register_forward_hook(lambda *_: teacher_passes.append(1) if not torch.is_grad_enabled() else None)
        sentences = target_set(backend.tokenizer, SYSTEM, teacher_system, pairs)
        result = train(backend.model, backend.tokenizer, sentences,
                       SelfParamConfig(epochs=4, batch_size=2, lr=3e-3, teacher_cache_mb=budget))
        runs[budget] = (result.losses, len(teacher_passes))
    assert runs[0][1] == 8 and runs[2048][1] == 2  # a teacher pass every step, or only in the first epoch
    assert runs[all_but_one][1] == 2 + 3  # then only the one batch a step that holds the sentence left out
    for budget in (all_but_one, 2048):
        assert runs[budget][0] == pytest.approx(runs[0][0], rel=1e-4, abs=1e-6)


def test_full_finetuning_uses_a_frozen_copy_as_teacher(tiny):
    model, tokenizer = tiny
    sentences = target_set(tokenizer, SYSTEM, teacher_system, [(1, "I live in Lisbon.", "Where do I live?", "You live in Lisbon.")])
    before = [p.detach().clone() for p in model.parameters()]
    result = train(model, tokenizer, sentences, SelfParamConfig(lora_r=0, epochs=5, batch_size=1, lr=1e-4))
    assert result.model is model
    assert any(not torch.equal(b, p) for b, p in zip(before, model.parameters()))
    assert result.losses[-1] < result.losses[0]


def test_an_empty_target_set_is_refused(tiny):
    model, tokenizer = tiny
    with pytest.raises(ValueError, match="non-empty"):
        train(model, tokenizer, [], SelfParamConfig())


def test_the_teacher_prefix_is_the_day_time_prompt_with_the_experience_recalled(tiny):
    _, tokenizer = tiny
    [s] = target_set(tokenizer, SYSTEM, teacher_system, [(3, "I live in Lisbon.", "Where do I live?", "In Lisbon.")])
    assert s.experience_id == 3
    inference = tokenizer.apply_chat_template(
        [{"role": "system", "content": teacher_system("I live in Lisbon.")}, {"role": "user", "content": "Where do I live?"}],
        tokenize=False, add_generation_prompt=True)
    assert (s.teacher_prefix + s.text).startswith(inference) and "Lisbon" not in s.student_prefix
    with pytest.raises(AttributeError):  # S is built once per night and never edited
        s.text = "something else"


def test_replay_never_trains_on_what_the_gate_measures_and_mixes_both_kinds_early():
    measured = {q for q, _ in GENERAL_QUESTIONS} | {q for q, _ in CHAT_TEXT}
    assert not measured & set(REPLAY_PROMPTS)
    assert sorted(REPLAY_PROMPTS) == sorted(set(FACTUAL_PROMPTS + OPEN_PROMPTS))
    # A group takes the first replay_count(rows, learn.replay, ratio) prompts; the default 8 must hold both kinds.
    first = REPLAY_PROMPTS[:8]
    assert len(set(first) & set(FACTUAL_PROMPTS)) == len(set(first) & set(OPEN_PROMPTS)) == 4


def test_replay_count_is_a_ratio_of_the_group_with_a_floor():
    assert replay_count(0, 8, 0.5) == 0  # an empty group trains nothing, replay included
    assert replay_count(6, 8, 0.5) == 8  # small groups get the floor
    assert replay_count(18, 8, 0.5) == 9
    assert replay_count(19, 8, 0.5) == 9  # rounded down, as the nights measured in the README
    assert replay_count(18, 8, 1.0) == 18
