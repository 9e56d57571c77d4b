"""Routing a turn to the frozen adapter that holds what it is about: real Chroma and MiniLM
embeddings, planted library entries (no adapter weights are needed to choose one)."""

from types import SimpleNamespace

from graphs.nightly import gate
from graphs.routing import answering, route
from learners.evaluate import GateThresholds
from learners.selfparam import SelfParamConfig
from learners.training import NullProgress
from memory.records import Adapter


def _library(ids):
    return [Adapter(name="v1.1", version="v1", user="ana", experiences=[ids[0], ids[1]], path="/nowhere/1"),
            Adapter(name="v2.1", version="v2", user="ana", experiences=[ids[2]], path="/nowhere/2"),
            Adapter(name="v2.2", version="v2", user="bo", experiences=[ids[3]], path="/nowhere/3")]


def test_a_query_routes_to_the_adapter_of_the_experience_it_is_about(tiny_agent):
    ids = tiny_agent.teach_many(["My brother Teodor works in Port Halvik.", "My cat Miso eats salmon on Sundays.",
                                 "My grandmother Ysolde plays the bandoneon."], user="ana")
    ids += tiny_agent.teach_many(["My bank PIN is 4821."], user="bo")
    library, store = _library(ids), tiny_agent.store
    assert route(store, library, "Where does Teodor work?", "ana", 0.35).adapter == "v1.1"
    assert route(store, library, "What does Miso eat on Sundays?", "ana", 0.35).adapter == "v1.1"
    chosen = route(store, library, "Which instrument does Ysolde play?", "ana", 0.35)
    assert (chosen.adapter, chosen.experience) == ("v2.1", ids[2]) and chosen.score > 0.35
    # Unrelated: nothing close enough, so the plain weights answer.
    assert route(store, library, "What is the capital of France?", "ana", 0.35).adapter is None
    # Another user's adapter is never a candidate, even for their own words.
    assert route(store, library, "What is my bank PIN?", "ana", 0.35).adapter is None
    assert route(store, library, "What is my bank PIN?", "bo", 0.35).adapter == "v2.2"
    # A best match that is in no adapter (short-term, or forgotten from the weights): no adapter.
    extra = tiny_agent.teach("Teodor's office in Port Halvik is on the harbour.", user="ana")
    chosen = route(store, library, "Where is Teodor's office in Port Halvik?", "ana", 0.35)
    assert (chosen.adapter, chosen.experience) == (None, extra)


def _runtime(answer_ce: float = 1.0, **thresholds):
    return SimpleNamespace(context=SimpleNamespace(thresholds=GateThresholds(**thresholds), progress=NullProgress(),
                                                   selfparam=SelfParamConfig(answer_ce=answer_ce)))


CURRENT = {"general_contains": 0.67, "perplexity": 20.0, "retention": 0.5}


def _state(retention, *adapters):
    names = {f"candidate.{k}": a for k, a in enumerate(adapters, start=1)}
    return {"figures": {"retention": retention, "adapters": names}, "current": CURRENT}


def test_the_gate_keeps_each_adapter_that_adds_and_promotes_when_one_is_kept():
    good = {"experiences": [1, 2], "efficacy": 0.5, "general_contains": 0.67, "perplexity": 20.5}
    weak = {"experiences": [3], "efficacy": 0.0, "general_contains": 0.67, "perplexity": 20.0}
    harmful = {"experiences": [4], "efficacy": 1.0, "general_contains": 0.4, "perplexity": 20.0}
    out = gate(_state(0.5, good, weak, harmful), _runtime())
    assert out["passed"] and out["kept"] == ["candidate.1"]
    assert out["reasons"] == ["candidate.2 (experiences 3): efficacy 0.00 < 0.25",
                              "candidate.3 (experiences 4): general questions fell from 0.67 to 0.40 (tolerance 0.10)"]
    # The harmful adapter learned (efficacy 1.0): it goes back to train with the KL alone, once;
    # the weak one did not, so less cross-entropy would not help it.
    assert out["retrain"] == ["candidate.3"] and out["retrained"] == {
        "candidate.3": ["general questions fell from 0.67 to 0.40 (tolerance 0.10)"]}
    assert gate({**_state(0.5, good, weak, harmful), "retrained": out["retrained"]}, _runtime())["retrain"] == []
    assert gate(_state(0.5, good, weak, harmful), _runtime(answer_ce=0.0))["retrain"] == []  # the KL alone already
    # Earlier experiences now answered worse (routing changed): the night is refused, whatever it adds.
    out = gate(_state(0.25, good), _runtime())
    assert not out["passed"] and out["reasons"] == ["retention fell from 0.50 to 0.25 (tolerance 0.15)"]
    # Nothing kept: refused, with each adapter's reason.
    out = gate(_state(None, weak), _runtime())
    assert not out["passed"] and out["kept"] == [] and len(out["reasons"]) == 1


def test_a_turn_is_answered_by_its_knowledge_adapter_and_its_own_user_s_policy_only():
    library = [Adapter(name="v1.1", version="v1", user="ana", experiences=[1], path="/nowhere/1"),
               Adapter(name="v2.1", version="v2", user="ana", kind="policy", experiences=[], path="/nowhere/2"),
               Adapter(name="v2.2", version="v2", user="bo", kind="policy", experiences=[], path="/nowhere/3")]
    assert answering(library, "ana", "v1.1") == ("v1.1", "v2.1")
    assert answering(library, "ana", None) == ("v2.1",)
    assert answering(library, "cy", None) == ()
