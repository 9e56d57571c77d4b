"""The committee with fake judges (Python callables: a member kind reverie supports), and the
agent's own model as a member on the tiny model (shapes only: its judgements are noise)."""

from graphs.committee import CallableMember, CodeJudgeMember, Committee, Item, ModelJudge
from memory import Store
from memory.cleaning import Cleaning

PROMPT = [{"role": "user", "content": "What is the boiling point of water at sea level?"}]
GOOD, BAD = "100 degrees Celsius.", "90 degrees Celsius."


def pair(feedback_id=1, chosen=GOOD, rejected=BAD):
    return Item(feedback_id, "preference", PROMPT, [chosen, rejected], "chosen-first", "rater_A")


def knows_water(scale, offset=0.0, good=True):
    """A fake judge on its own scale: GOOD scores high; optionally judges answers on their own."""
    return CallableMember(f"water-x{scale}", lambda p, a: offset + scale * (1.0 if a == GOOD else 0.0),
                          (lambda p, a: a == GOOD) if good else None)


def test_votes_compare_signs_within_each_member_never_scales_across_them():
    # Wildly different scales and offsets: only each member's own order matters.
    members = [knows_water(1e6), knows_water(0.001, offset=-50.0), knows_water(-3.0), CallableMember("flat", lambda p, a: 7.0)]
    votes, detail = Committee(members).vote(pair())
    assert list(votes.agree) == [True, True, False, False]  # the third prefers BAD; a tie is no agreement
    assert detail["callable:water-x1000000.0"]["scores"] == [1e6, 0.0]
    flipped, _ = Committee(members).vote(pair(chosen=BAD, rejected=GOOD))
    assert list(flipped.agree) == [False, False, True, False]


def test_both_bad_and_abstentions():
    never_good = CallableMember("grumpy", lambda p, a: 1.0 if a == GOOD else 0.0, lambda p, a: False)
    no_opinion = CallableMember("silent", lambda p, a: None)
    votes, _ = Committee([never_good, knows_water(1.0, good=False), no_opinion]).vote(pair())
    assert list(votes.agree) == [True, True, None]
    assert list(votes.both_bad) == [True, None, None]


def test_a_thumb_is_judged_on_its_own():
    up = Item(2, "thumb", PROMPT, [BAD], "up")
    votes, _ = Committee([knows_water(1.0), knows_water(1.0, good=False)]).vote(up)
    assert list(votes.agree) == [False, None] and list(votes.both_bad) == [None, None]
    assert list(Committee([knows_water(1.0)]).vote(Item(3, "thumb", PROMPT, [BAD], "down"))[0].agree) == [True]


def test_the_cache_makes_a_rerun_free_and_ignores_the_label(home):
    calls = []
    member = CallableMember("counted", lambda p, a: calls.append(a) or len(a))
    store = Store.open(home)
    cache = Cleaning(store)
    first = Committee([member], cache)
    first.vote(pair())
    second = Committee([member], cache)
    second.vote(pair())
    second.vote(pair(chosen=BAD, rejected=GOOD))  # the same answers in the other order: judged anew
    assert (first.judged_now, second.judged_now, len(calls)) == (1, 1, 4)
    store.close()


def test_model_members_on_the_tiny_model(tiny_backend):
    judge = ModelJudge(tiny_backend, "helpful")
    judged = judge.judge(PROMPT, [GOOD, BAD])
    assert abs(sum(judged.scores) - 1.0) < 1e-6 and all(isinstance(g, bool) for g in judged.good)
    assert judge.key.startswith("judge:helpful:") and judge.key.endswith(":p1")
    # CodeJudge abstains on answers without code, and costs nothing there.
    assert CodeJudgeMember(tiny_backend).judge(PROMPT, [GOOD, BAD]).scores == [None, None]


def test_a_reward_model_member_scores_each_answer(tmp_path, embedded_dir):
    # A tiny sequence-classification model with random weights, built from a config: the real
    # loading and scoring path of any Hugging Face reward model; its scores are noise.
    from transformers import AutoTokenizer, LlamaConfig, LlamaForSequenceClassification

    from graphs.committee import RewardModel

    tokenizer = AutoTokenizer.from_pretrained(str(embedded_dir))
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=1, num_labels=1, pad_token_id=tokenizer.pad_token_id)
    LlamaForSequenceClassification(config).save_pretrained(tmp_path / "rm")
    tokenizer.save_pretrained(tmp_path / "rm")
    member = RewardModel(str(tmp_path / "rm"))
    judged = member.judge(PROMPT, [GOOD, BAD])
    assert member.key == f"rm:{tmp_path / 'rm'}" and len(judged.scores) == 2 and judged.good == [None, None]
    assert judged.scores == member.judge(PROMPT, [GOOD, BAD]).scores  # deterministic
    votes, _ = Committee([member]).vote(pair())
    assert list(votes.agree) == [judged.scores[0] > judged.scores[1]]
