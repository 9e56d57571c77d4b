import pytest

from agent.llm.protocol import Generation
from learners.synthesis import (
    QAPair,
    SynthesisConfig,
    check_pair,
    grounded,
    parse_questions,
    probe_answer,
    second_person,
    set_aside_probes,
    split_sentences,
    synthesize,
    topic,
    writer_parts,
)

EXPERIENCE = "My brother Teodor works as a ferry mechanic in Port Halvik. His greyhound is called Pimento."


@pytest.mark.parametrize(
    "output, expected",
    [
        ("1. Where does Teodor work?\n2) What is his dog called?", ["Where does Teodor work?", "What is his dog called?"]),
        ("Q: Where does Teodor work?\nA: Port Halvik", ["Where does Teodor work?"]),
        ("Question 2: Who is Pimento? - What breed is Pimento?", ["Who is Pimento?", "What breed is Pimento?"]),
        ("- Where does Teodor work?\n* Where does Teodor work?", ["Where does Teodor work?"]),
        ('"Where does Teodor work?"', ["Where does Teodor work?"]),
        ("Teodor works in Port Halvik.", []),  # no question
        ("Why?", []),  # too short
        ("What " + "very " * 40 + "long?", []),  # too long
        ("", []),
        ("Where does Teodor", []),  # truncated mid-question
    ],
)
def test_parse_questions_takes_what_small_models_write(output, expected):
    assert parse_questions(output) == expected


@pytest.mark.parametrize(
    "question, answer, reason",
    [
        ("Where does Teodor work?", "Teodor works in Port Halvik.", None),
        ("What does this sentence answer?", "Port Halvik.", "meta question"),
        ("What is the capital of France?", "Paris is the capital of France.", "not about the experience"),
        ("Is Teodor a ferry mechanic in Port Halvik?", "Teodor is a ferry mechanic in Port Halvik.",
         "answer adds nothing the question lacks"),
        ("Where does Teodor work?", "Teodor works at a bakery in Oslo near the fjord.", "answer not supported by the experience"),
        ("Where does Teodor work?", "", "empty answer"),
    ],
)
def test_the_self_check(question, answer, reason):
    assert check_pair(EXPERIENCE, question, answer, min_support=0.6)[0] == reason


def test_text_helpers():
    assert split_sentences(EXPERIENCE) == ["My brother Teodor works as a ferry mechanic in Port Halvik.",
                                           "His greyhound is called Pimento."]
    assert second_person("My sister and I live in Lisbon; I'm happy.") == "Your sister and you live in Lisbon; you're happy."
    assert topic("My brother Teodor works in Port Halvik.") == "Teodor"
    assert topic("My best friend Marguerite Vasko is getting married.") == "Marguerite Vasko"
    assert topic("It rains.") == ""
    assert grounded(EXPERIENCE, "Your brother Teodor works in Port Halvik.")
    assert not grounded(EXPERIENCE, "Teodor moved to Oslo last year.")
    assert grounded("I'm allergic to sesame.", "You're allergic to sesame.")
    assert grounded("I'm allergic to sesame.", "The user is allergic to sesame.")


class ScriptedBackend:
    """A fake model that replies from a script: for testing the pipeline's control flow only."""

    def __init__(self, reply):
        self.reply = reply
        self.calls = []

    def generate_batch(self, conversations, options):
        self.calls.append((conversations, options))
        return [Generation(self.reply(c), 10, 10, "stop") for c in conversations]


def test_synthesis_keeps_checked_pairs_and_recites_uncovered_sentences():
    questions = {
        0: "1. Where does Teodor work?\n2. Where does Teodor work?\n3. What does this sentence say?",
        1: "What is the capital of France?",
    }
    generator = ScriptedBackend(lambda c: questions[0] if "Teodor" in c[-1]["content"] else questions[1])
    answers = {"Where does Teodor work?": "Teodor works in Port Halvik. He loves it.",
               "What does this sentence say?": "It says things.",
               "What is the capital of France?": "Paris."}
    answerer = ScriptedBackend(lambda c: answers[c[-1]["content"]])
    pairs, report = synthesize(generator, answerer, EXPERIENCE, system_prompt="Sys.",
                               teacher_system=lambda x: f"Sys. Facts: {x}", config=SynthesisConfig(samples=2, rule_questions=False))

    assert [(p.question, p.answer, p.recited) for p in pairs] == [
        ("Where does Teodor work?", "Teodor works in Port Halvik.", False),  # first sentence only
        ("What did I tell you about Pimento?", "His greyhound is called Pimento.", True),
    ]
    assert report.as_dict() == {
        "sentences": 2, "generated": 4, "parsed": 3, "cloze": 0, "kept": 2, "kept_cloze": 0, "rule_answered": 0, "recited": 1,
        "rejected": {"meta question": 1, "not about the experience": 1},
        "coverage": 0.667,  # brother, ferry and mechanic are in no kept answer
    }
    # The teacher sees the experience; the generator samples.
    assert all(c[0] == {"role": "system", "content": f"Sys. Facts: {EXPERIENCE}"} for c in answerer.calls[0][0])
    assert generator.calls[0][1].temperature == 0.9


def test_the_writer_is_shown_each_clause_of_a_compound_sentence():
    def shown(conversation):
        return conversation[-1]["content"].split("Sentence: ")[1].split("\n")[0]

    # A scripted writer that asks about whatever it is shown: control flow only.
    generator = ScriptedBackend(lambda c: f"What about {shown(c)}?")
    answerer = ScriptedBackend(lambda c: "You are allergic to sesame.")
    compound = "I'm allergic to sesame, and on flights I always want an aisle seat."
    synthesize(generator, answerer, compound, system_prompt="Sys.", teacher_system=str,
               config=SynthesisConfig(samples=3, rule_questions=False))
    assert [shown(c) for c in generator.calls[0][0]] == [
        "I'm allergic to sesame.", "On flights I always want an aisle seat.", "I'm allergic to sesame."]
    assert writer_parts("My grandmother Ysolde turns 94 on 11 October.", 2) == [
        "My grandmother Ysolde turns 94 on 11 October."] * 2


def test_with_generator_answers_the_generator_answers_and_the_student_is_not_asked():
    # Scripted models: which one answers is control flow.
    def reply(c):
        return "Teodor works in Port Halvik." if c[0]["role"] == "system" else "1. Where does Teodor work?"

    generator, student = ScriptedBackend(reply), ScriptedBackend(lambda c: "I do not know.")
    pairs, _ = synthesize(generator, student, EXPERIENCE, system_prompt="Sys.", teacher_system=lambda x: f"Sys. {x}",
                          config=SynthesisConfig(samples=1, rule_questions=False, generator_answers=True))
    assert ("Where does Teodor work?", "Teodor works in Port Halvik.") in [(p.question, p.answer) for p in pairs]
    assert student.calls == []
    assert any(c[0] == {"role": "system", "content": f"Sys. {EXPERIENCE}"} for call in generator.calls for c in call[0])


def test_near_duplicate_questions_and_the_cap():
    generator = ScriptedBackend(lambda c: "Where does Teodor work now?\nWhere does Teodor work?\nWho is Teodor?")
    answerer = ScriptedBackend(lambda c: "Teodor is a ferry mechanic in Port Halvik.")
    one_sentence = "My brother Teodor works as a ferry mechanic in Port Halvik."
    pairs, report = synthesize(generator, answerer, one_sentence, system_prompt="Sys.", teacher_system=str,
                               config=SynthesisConfig(samples=1, max_pairs=1, max_overlap=0.7, recite_uncovered=False,
                                                      rule_questions=False))
    assert len(pairs) == 1 and report.recited == 0
    assert report.rejected["duplicate"] + report.rejected["over max_pairs"] == 2


def test_a_rule_written_question_missing_its_span_is_dropped_or_answered_by_rule():
    generator = ScriptedBackend(lambda c: pytest.fail("no sampling was asked for"))
    answers = {"My brother Teodor works as a ferry mechanic in which place?": "Teodor works in Port Halvik.",
               "The user's brother Teodor works as a ferry mechanic in which place?": "In Port Halvik.",
               "Teodor's greyhound is called what?": "Teodor works in Port Halvik.",  # true, but not the span
               "Who works as a ferry mechanic in Port Halvik?": "Your brother Teodor does."}
    answerer = ScriptedBackend(lambda c: answers[c[-1]["content"]])
    pairs, report = synthesize(generator, answerer, EXPERIENCE, system_prompt="Sys.", teacher_system=str,
                               config=SynthesisConfig(samples=0, rule_answers=False))
    assert [(p.question, p.span, p.recited) for p in pairs] == [
        ("Who works as a ferry mechanic in Port Halvik?", "Teodor", False),
        ("My brother Teodor works as a ferry mechanic in which place?", "Port Halvik", False),
        ("The user's brother Teodor works as a ferry mechanic in which place?", "Port Halvik", False),
        ("What did I tell you about Pimento?", "", True),  # its question was answered wrongly
    ]
    assert report.cloze == 4 and report.kept_cloze == 3 and report.generated == 0
    assert report.rejected == {"answer misses the asked span": 1}
    # By default the missed question is answered by rule: its clause, the span in place.
    ruled, report = synthesize(generator, answerer, EXPERIENCE, system_prompt="Sys.", teacher_system=str,
                               config=SynthesisConfig(samples=0))
    assert [(p.question, p.answer, p.recited) for p in ruled] == [
        ("Who works as a ferry mechanic in Port Halvik?", "Your brother Teodor does.", False),
        ("My brother Teodor works as a ferry mechanic in which place?", "Teodor works in Port Halvik.", False),
        ("The user's brother Teodor works as a ferry mechanic in which place?", "In Port Halvik.", False),
        ("Teodor's greyhound is called what?", "Teodor's greyhound is called Pimento.", False),
    ]
    assert report.kept_cloze == 4 and report.rule_answered == 1 and not report.rejected
    # A preference, answered in the assistant's voice when the model cannot say what it is about,
    # and asked again of the user in the third person, answered in that person.
    allergy, _ = synthesize(generator, ScriptedBackend(lambda c: "I do not know."), "I'm allergic to sesame.",
                            system_prompt="Sys.", teacher_system=str, config=SynthesisConfig(samples=0))
    assert {(p.question, p.answer) for p in allergy} == {
        ("I'm allergic to what?", "You're allergic to sesame."),
        ("The user is allergic to what?", "The user is allergic to sesame.")}
    # The span is the probe's gold answer when the pair is set aside, and no other question for
    # that span stays in training; the question asked the other way round is never a probe.
    shorter = QAPair("Teodor works as a ferry mechanic in which place?", "In Port Halvik.", 0, 0.9, span="Port Halvik")
    probes, rest = set_aside_probes(EXPERIENCE, pairs + [shorter], 1)
    # The probe's third-person twin asks for the same span: it leaves training with it.
    assert probes == [("My brother Teodor works as a ferry mechanic in which place?", ["Port Halvik"])]
    assert [p.question for p in rest] == ["Who works as a ferry mechanic in Port Halvik?", "What did I tell you about Pimento?"]
    alone = [p for p in pairs if p.asks_subject]
    probes, rest = set_aside_probes(EXPERIENCE, alone, 1)  # no other pair: the probe is made from the experience
    assert probes == [("What do you know about Teodor?", ["Port Halvik", "Pimento"])] and rest[0] == alone[0]


def test_probe_answer_is_what_the_answer_adds_to_the_question():
    experience = "My brother Teodor works in Port Halvik. His greyhound is called Pimento."
    assert probe_answer(experience, "What is Teodor's dog called?", "Teodor's greyhound is called Pimento.") == "greyhound"
    assert probe_answer(experience, "Where does Teodor work?", "He works in Port Halvik.") == "Port Halvik"
    assert probe_answer(experience, "Where does Teodor work?", "I am not sure.") is None


def test_probes_are_set_aside_and_never_left_in_the_training_pairs():
    experience = "My brother Teodor works in Port Halvik. His greyhound is called Pimento."
    pairs = [QAPair("Where does Teodor work?", "Teodor works in Port Halvik.", 0, 1.0),
             QAPair("What is the greyhound called?", "The greyhound is called Pimento.", 1, 0.9),
             QAPair("What did I tell you about Teodor?", "Your brother Teodor works in Port Halvik.", 0, 1.0, recited=True)]
    probes, rest = set_aside_probes(experience, pairs, 1)
    assert probes == [("Where does Teodor work?", ["Port Halvik"])]
    assert [p.question for p in rest] == ["What is the greyhound called?", "What did I tell you about Teodor?"]
    # A recitation is never a probe; with no written pair, the probe is worded unlike any recitation.
    probes, rest = set_aside_probes(experience, pairs[2:], 1)
    assert probes == [("What do you know about Teodor?", ["Port Halvik", "Pimento"])]
    assert rest == pairs[2:] and probes[0][0] not in {p.question for p in rest}
    assert set_aside_probes(experience, pairs, 0) == ([], pairs)
    # The greyhound sentence's only pair becomes the probe: that sentence is recited instead.
    probes, rest = set_aside_probes(experience, pairs[1:], 1)
    assert probes == [("What is the greyhound called?", ["Pimento"])]
    assert rest == [pairs[2], QAPair("What did I tell you about Pimento?", "His greyhound is called Pimento.", 1, 1.0,
                                     recited=True)]
