"""The Agent facade on the tiny random model: plumbing, validation and bookkeeping."""

import pytest

from agent import Agent, InputTooLong, InvalidInput, NotFound


def test_a_reply_carries_ids_version_and_usage(tiny_agent):
    reply = tiny_agent.chat("Hello")
    assert reply.model_version == "base" and reply.user == "default"
    assert reply.completion_tokens >= 1 and reply.prompt_tokens > 0 and reply.latency_s > 0
    said, answered = tiny_agent.log(thread_id=reply.thread_id)
    assert (said.id, answered.id) == (reply.user_turn_id, reply.turn_id)
    assert answered.content == reply.text and answered.model_version == "base"
    follow_up = tiny_agent.chat("And then?", thread_id=reply.thread_id)
    assert follow_up.thread_id == reply.thread_id
    assert follow_up.prompt_tokens > reply.prompt_tokens  # the first exchange is in the prompt
    assert len(tiny_agent.log(thread_id=reply.thread_id)) == 4


def test_streaming_returns_the_same_reply(tiny_agent):
    stream = tiny_agent.stream("Hello")
    text = "".join(stream)
    assert stream.reply.text == text.strip()
    assert tiny_agent.log(thread_id=stream.reply.thread_id)[-1].content == stream.reply.text


@pytest.mark.parametrize("text", ["", "   \n\t", None, "nul\x00byte"])
def test_empty_messages_are_refused_and_write_nothing(tiny_agent, text):
    with pytest.raises(InvalidInput):
        tiny_agent.chat(text)
    assert tiny_agent.threads() == [] and tiny_agent.log() == []


def test_a_message_beyond_the_context_window_is_refused_and_writes_nothing(tiny_agent):
    with pytest.raises(InputTooLong, match="message too long"):
        tiny_agent.chat("word " * 5000)
    assert tiny_agent.threads() == [] and tiny_agent.log() == []


def test_a_new_thread_id_starts_that_thread_and_a_foreign_one_is_refused(tiny_agent):
    first = tiny_agent.chat("hi", thread_id="ana-support-1", user="ana")
    assert first.thread_id == "ana-support-1" and tiny_agent.store.get_thread("ana-support-1").user == "ana"
    again = tiny_agent.chat("and again", thread_id="ana-support-1", user="ana")
    assert [t.role for t in tiny_agent.log(thread_id=again.thread_id)] == ["user", "assistant"] * 2
    with pytest.raises(InvalidInput, match="belongs to user 'ana'"):
        tiny_agent.chat("hi", thread_id="ana-support-1", user="bob")
    for bad in ("", "two words", "x" * 129, "tab\there"):
        with pytest.raises(InvalidInput, match="thread id"):
            tiny_agent.chat("hi", thread_id=bad)
    assert [t.id for t in tiny_agent.threads()] == ["ana-support-1"]


def test_recall_uses_only_this_users_short_term_memories(tiny_agent):
    ana_fact = tiny_agent.teach("My dog is called Pimento.", user="ana")
    tiny_agent.teach("My dog is called Rex.", user="bob")
    reply = tiny_agent.chat("What is my dog called?", user="ana")
    assert [m["id"] for m in reply.memories] == [ana_fact]
    assert tiny_agent.chat("What is my dog called?", user="ana", recall=False).memories == []
    tiny_agent.forget(ana_fact)
    assert tiny_agent.chat("What is my dog called?", user="ana").memories == []
    assert [m.status for m in tiny_agent.memories(user="ana", include_forgotten=True)] == ["forgotten"]
    assert tiny_agent.memories(user="ana") == []


def test_teaching_many_is_all_or_nothing(tiny_agent):
    with pytest.raises(InvalidInput):
        tiny_agent.teach_many(["a fact", "   "])
    assert tiny_agent.memories() == []
    ids = tiny_agent.teach_many(["first fact", "second fact"], user="ana")
    assert [m.id for m in tiny_agent.memories(user="ana")] == ids


def test_feedback_kinds(tiny_agent):
    reply = tiny_agent.chat("What is 2+2?", user="ana")
    assert tiny_agent.feedback(reply.turn_id, "up").user == "ana"
    assert tiny_agent.feedback(reply.turn_id, "down", text="too vague", user="bob").payload == {"text": "too vague"}
    fix = tiny_agent.feedback(reply.turn_id, "correction", text="2+2 is 4.")
    [taught] = tiny_agent.memories(user="ana")
    assert (taught.source, taught.text, taught.turn_id) == ("correction", "2+2 is 4.", reply.turn_id)
    assert fix.payload == {"text": "2+2 is 4."}
    pref = tiny_agent.feedback(reply.turn_id, "preference", payload={"chosen": "4", "rejected": "5"})
    assert pref.payload == {"chosen": "4", "rejected": "5"}
    assert [f.kind for f in tiny_agent.export().feedback] == ["up", "down", "correction", "preference"]
    with pytest.raises(InvalidInput, match="correction needs its text"):
        tiny_agent.feedback(reply.turn_id, "correction")
    with pytest.raises(InvalidInput, match="needs two answers"):
        tiny_agent.feedback(reply.turn_id, "preference")
    with pytest.raises(InvalidInput, match="is the user's"):
        tiny_agent.feedback(reply.user_turn_id, "up")
    with pytest.raises(NotFound):
        tiny_agent.feedback(424242, "up")


def test_a_failed_turn_keeps_what_the_user_said(tiny_agent, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(tiny_agent.backend, "generate", broken)
    with pytest.raises(RuntimeError):
        tiny_agent.chat("Please remember this sentence.")
    [kept] = tiny_agent.log()
    assert (kept.role, kept.content) == ("user", "Please remember this sentence.")


def test_a_promoted_version_serves_the_next_turn_and_rollback_restores(home, tiny_agent, tiny_dir, tiny_dir_b):
    import shutil

    first = tiny_agent.chat("hi")
    assert first.model_version == "base"

    def copy_weights(folder):
        for item in tiny_dir_b.iterdir():
            shutil.copy(item, folder / item.name)

    # Another agent on the same home (as the nightly learner would be) makes and promotes v1.
    with Agent.open(home, model=str(tiny_dir), max_new_tokens=8) as other:
        version = other.versions.create(parent="base", learner="test", manifest={"note": "other weights"},
                                        write=copy_weights)
        other.promote(version.id, reason="test")
    second = tiny_agent.chat("hi")
    assert second.model_version == "v1" == tiny_agent.log()[-1].model_version
    assert [v.id for v in tiny_agent.models()] == ["base", "v1"]
    assert tiny_agent.active_model().id == "v1"

    tiny_agent.rollback(reason="test")
    again = tiny_agent.chat("hi")
    assert again.model_version == "base" and again.text == first.text  # greedy: the very same answer


def test_search_and_export(tiny_agent):
    reply = tiny_agent.chat("I love sailing on the fjord", user="ana")
    tiny_agent.teach("My boat is called the Albatross.", user="ana")
    assert tiny_agent.search("what is my boat's name", user="ana")[0].text == "My boat is called the Albatross."
    kinds = {h.kind for h in tiny_agent.search("sailing", user="ana", turns=True)}
    assert kinds == {"experience", "turn"}
    assert tiny_agent.search("sailing", user="bob", turns=True) == []
    data = tiny_agent.export(user="ana")
    assert [t.id for t in data.turns] == [reply.user_turn_id, reply.turn_id]
    assert len(data.experiences) == 1 and len(data.threads) == 1
    assert set(tiny_agent.paths()) == {"home", "config", "database", "checkpoints", "episodic", "catalogues", "models"}


def test_a_thread_resumes_in_a_new_agent(home, tiny_dir):
    with Agent.open(home, model=str(tiny_dir), max_new_tokens=4) as first:
        thread = first.chat("first message").thread_id
    with Agent.open(home, model=str(tiny_dir), max_new_tokens=4) as second:
        second.chat("second message", thread_id=thread)
        state = second.graph.get_state({"configurable": {"thread_id": thread}}).values
    assert [m["content"] for m in state["messages"] if m["role"] == "user"] == ["first message", "second message"]


def test_an_abandoned_stream_stops_and_keeps_the_user_message(home, tiny_dir):
    with Agent.open(home, model=str(tiny_dir), max_new_tokens=2000) as bot:
        stream = bot.stream("Tell me everything.")
        iterator = iter(stream)
        next(iterator)
        iterator.close()  # what a caller's `break` or Ctrl-C does
    # Had generation run on (greedy, 2000 tokens, no stop for this model), its reply would be logged.
    with Agent.open(home, model=str(tiny_dir)) as bot:
        assert [(t.role, t.content) for t in bot.log()] == [("user", "Tell me everything.")]


def test_a_long_thread_is_trimmed_to_the_context_window(home, tiny_dir):
    with Agent.open(home, model=str(tiny_dir), max_new_tokens=8, context_window=256) as bot:
        thread, prompts = None, []
        for i in range(12):
            reply = bot.chat(f"This is message number {i} of a long conversation about nothing at all.", thread)
            thread = reply.thread_id
            prompts.append(reply.prompt_tokens)
        assert max(prompts) <= 256 - 8  # room is kept for the reply
        whole = [{"role": t.role, "content": t.content} for t in bot.log(thread_id=thread)]
        assert bot.backend.count_chat_tokens(whole) > 256  # so the last prompts had to drop turns
        assert len(whole) == 24  # trimming touches the prompt, never the log


def test_recall_skips_only_what_the_served_weights_answer(tiny_agent):
    held, weak = tiny_agent.teach_many(["Teodor's dog is Pimento.", "Teodor's cat is Biscuit."])
    tiny_agent.store.set_experience_status(held, "consolidated")
    tiny_agent.store.set_experience_status(weak, "consolidated")
    probes = {e: tiny_agent.retention.add_probes(e, [(f"Q{e}?", ["x"], "recall")], "given")[0] for e in (held, weak)}
    tiny_agent.models()
    run = tiny_agent.retention.start_run(tiny_agent.settings.model, "base")
    # Scored on the version being served (base): one probe passes, the other fails.
    tiny_agent.retention.record_results(run, "base", [(probes[held].id, "x", 1.0, 1.0), (probes[weak].id, "-", 0.0, 0.0)])
    recalled = {m["id"] for m in tiny_agent.chat("What are Teodor's pets called?").memories}
    assert recalled == {weak}  # consolidated but failing: still recalled, so nothing is lost


def test_teach_with_probes_validates_them_and_writes_nothing_on_error(tiny_agent):
    with pytest.raises(InvalidInput, match="a probe needs a list of non-empty answers"):
        tiny_agent.teach("Teodor's dog is Pimento.", probes=[{"question": "Dog?", "answers": "Pimento"}])
    with pytest.raises(InvalidInput, match="probe kind must be recall or near_miss"):
        tiny_agent.teach("Teodor's dog is Pimento.", probes=[{"question": "Dog?", "answers": ["P"], "kind": "x"}])
    assert tiny_agent.memories() == []
    experience = tiny_agent.teach("Teodor's dog is Pimento.", probes=[{"question": "Dog?", "answers": ["Pimento"]}])
    assert [(p.experience_id, p.origin) for p in tiny_agent.retention.probes()] == [(experience, "given")]


def test_turn_locks_are_a_fixed_set_of_files_and_old_ones_are_cleared(tiny_agent, home):
    locks = home / "locks"
    locks.mkdir(parents=True)
    (locks / "thread-0123456789ab.lock").write_text("")  # one file per thread, as earlier versions left them
    for _ in range(3):
        tiny_agent.chat("Hello")  # three threads
    names = {p.name for p in locks.iterdir()} - {".striped", "learn.lock"}
    assert names and all(n.startswith("thread-") and len(n) == len("thread-00.lock") for n in names)
