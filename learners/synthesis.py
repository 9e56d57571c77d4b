"""QA synthesis for SELF-PARAM's target set: questions about an experience, answered by the model
that sees it, kept only when they pass a self-check.

SELF-PARAM (arXiv 2410.00487) asks a strong generator for many diverse QA pairs per context. Our
generator is usually the 135M model itself, which writes mostly off-target or malformed
questions (selfparam_feasibility.md: 1 usable pair per fact from a greedy list). So:
  1. the experience is split into sentences; for each, reverie writes in-place wh-questions
     about its names, numbers and dates by rule (``learners.questions``), and the generator
     samples several questions of its own (any backend, a bigger one included), shown each
     clause of a compound sentence in turn so that every clause is asked about;
  2. parsing accepts the shapes small models write (numbered, bulleted, "Q:", "Question 2.");
  3. the answerer (the model being trained, with the experience in its prompt: SELF-PARAM's
     teacher) answers each question; its first sentence is the answer, in its own style;
  4. a self-check keeps a pair only if the question is about the experience, does not give its
     answer away, and the answer's content is supported by the experience; a rule-written
     question must also be answered with the span it was written for, and one that is not is
     answered by rule instead: the clause it was cut from, in the assistant's voice ("I'm
     allergic to what?" -> "You're allergic to sesame."), because the 135M answerer misses most
     of what a preference is about, and without these pairs its facts reach training only as
     recitations;
  5. near-duplicate questions are dropped, and a sentence no kept pair covers is recited back
     ("What did I tell you about Teodor?" -> the sentence, in the second person), so every fact
     of the experience reaches the target set.
The report says how many candidates each stage kept, and why the others were dropped.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field

from agent.llm.protocol import Backend, GenerationOptions
from learners.metrics import normalize_answer
from learners.questions import ClozeQuestion, about_the_user, clauses, cloze_questions, third_person
from learners.questions import subject as experience_subject

# -- config ------------------------------------------------------------------------------------


class SynthesisConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    samples: int = Field(6, ge=0, le=32, description="sampled question batches per sentence (0: rule-written only)")
    rule_questions: bool = Field(True, description="also ask about names, numbers and dates by rule (in place)")
    temperature: float = Field(0.9, ge=0, le=2, description="sampling temperature of the question writer")
    top_p: float = Field(0.95, gt=0, le=1)
    question_tokens: int = Field(48, ge=1, description="generation budget for a batch of questions")
    answer_tokens: int = Field(40, ge=1, description="generation budget for an answer (the first sentence is kept)")
    max_pairs: int = Field(16, ge=1, description="kept pairs per experience, at most")
    min_support: float = Field(0.6, ge=0, le=1, description="share of the answer's content words found in the "
                                                          "experience or question")
    max_overlap: float = Field(0.8, ge=0, le=1, description="word Jaccard above which two questions are duplicates")
    recite_uncovered: bool = Field(True, description="add a recitation pair for a sentence no kept pair covers")
    rule_answers: bool = Field(True, description="a rule-written question the answerer misses is answered with "
                               "the clause it was cut from, in the assistant's voice, instead of dropped")
    generator_answers: bool = Field(False, description="the generator_model also answers the questions, seeing the "
                                    "experience, so a student learns a larger model's answers (with "
                                    "selfparam.answer_ce, their own tokens); default: the student answers them")
    seed: int = 0


QUESTION_PROMPT = "Write a question that this sentence answers.\n\nSentence: {sentence}\n\nQuestion:"


@dataclass(frozen=True)
class QAPair:
    question: str
    answer: str
    sentence: int  # index of the experience sentence it was written from
    support: float  # share of the answer's content words that the experience or question holds
    recited: bool = False
    span: str = ""  # for a rule-written question, the short answer it asks for
    asks_subject: bool = False  # a rule-written question whose answer is its sentence's subject


@dataclass
class SynthesisReport:
    sentences: int = 0
    generated: int = 0  # sampled generations
    parsed: int = 0  # distinct questions parsed out of them
    cloze: int = 0  # rule-written questions
    kept: int = 0
    kept_cloze: int = 0  # kept pairs whose question was written by rule
    rule_answered: int = 0  # of those, answered by rule (the answerer missed the span)
    recited: int = 0
    rejected: Counter = field(default_factory=Counter)  # reason -> count
    coverage: float = 0.0  # share of the experience's content words found in kept answers

    def as_dict(self) -> dict:
        return {"sentences": self.sentences, "generated": self.generated, "parsed": self.parsed,
                "cloze": self.cloze, "kept": self.kept, "kept_cloze": self.kept_cloze,
                "rule_answered": self.rule_answered, "recited": self.recited,
                "rejected": dict(self.rejected), "coverage": round(self.coverage, 3)}


# -- text helpers -------------------------------------------------------------------------------

_STOP = set(
    "a an the and or but if of to in on at by for with from as into about over after before under "
    "is are was were be been being am do does did doing have has had having will would can could "
    "should may might must shall this that these those there here it its i me my mine you your "
    "yours we us our ours he him his she her hers they them their theirs what which who whom whose "
    "where when why how not no yes so than then too very just also still only all any each some "
    "every much many more most other such one called named tell told know said".split()
)
_META = re.compile(r"\b(this|the|that) (sentence|text|passage|context|paragraph|statement)\b|\banswer\b", re.I)
_LEAD = re.compile(r"^\s*(?:\d+\s*[.)]|[-*•]|q(?:uestion)?\s*\d*\s*[:.)])\s*", re.I)
_SECOND_PERSON = {"i": "you", "me": "you", "my": "your", "mine": "yours", "myself": "yourself",
                  "we": "you", "us": "you", "our": "your", "ours": "yours", "am": "are", "i'm": "you're",
                  "i've": "you've", "i'll": "you'll", "i'd": "you'd", "we're": "you're"}


def split_sentences(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s.strip()]


def _stem(word: str) -> str:
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def content_words(text: str) -> set[str]:
    """Normalised, crudely stemmed words that carry meaning (names, numbers, nouns, verbs)."""
    return {_stem(w) for w in normalize_answer(text).split() if w not in _STOP}


def grounded(experience: str, answer: str) -> bool:
    """Whether the answer says only what the experience says: every content word of it is there
    in some voice (a rule answer or a recitation always; a model's answer when it adds nothing)."""
    voices = (experience, second_person(experience), third_person(experience))
    return content_words(answer) <= set().union(*map(content_words, voices))


def parse_questions(text: str, max_words: int = 25) -> list[str]:
    """Questions a small model wrote, in whatever list shape it chose; in order, without repeats."""
    found: list[str] = []
    for line in text.splitlines():
        for piece in re.split(r"(?<=\?)\s+", line):  # several questions on one line
            question = _LEAD.sub("", piece).strip().strip('"').strip()
            if question.endswith("?") and 3 <= len(question.split()) <= max_words and question not in found:
                found.append(question)
    return found


def writer_parts(sentence: str, samples: int) -> list[str]:
    """What the question writer is shown, one entry a sample: the sentence, or for a sentence of
    several clauses each clause in turn, the samples spread over them. Shown a whole sentence, the
    0.5B writer asked about one clause only ("I'm allergic to sesame, and on flights ... an aisle
    seat": its kept questions asked about the seat, none about sesame)."""
    parts = clauses(sentence.strip().rstrip(".!?").rstrip())
    if len(parts) < 2:
        return [sentence] * samples
    return [f"{part[0].upper()}{part[1:]}." for part in (parts[i % len(parts)] for i in range(samples))]


def first_sentence(text: str) -> str:
    sentences = split_sentences(text)
    return sentences[0] if sentences else ""


def second_person(sentence: str) -> str:
    """'My brother lives in Lisbon.' -> 'Your brother lives in Lisbon.' (the assistant's voice)."""

    def swap(match: re.Match) -> str:
        word = match.group(0)
        swapped = _SECOND_PERSON.get(word.lower())
        if swapped is None:
            return word
        return swapped.capitalize() if word[0].isupper() and match.start() == 0 else swapped

    return re.sub(r"\b[\w']+\b", swap, sentence)


def topic(sentence: str) -> str:
    """The first name-like phrase of a sentence (capitalised words after its first word), if any."""
    words = re.findall(r"[\w'-]+", sentence)
    names: list[str] = []
    for word in words[1:]:
        if word[:1].isupper() and word.lower() not in _SECOND_PERSON:
            names.append(word)
        elif names:
            break
    return " ".join(names)


# -- the self-check -----------------------------------------------------------------------------


def check_pair(experience: str, question: str, answer: str, min_support: float) -> tuple[str | None, float]:
    """Why a pair fails (None if it passes), and the answer's support by experience and question."""
    about = content_words(experience)
    asked, said = content_words(question), content_words(answer)
    if _META.search(question):
        return "meta question", 0.0
    if not asked & about:
        return "not about the experience", 0.0
    if not said:
        return "empty answer", 0.0
    support = len(said & (about | asked)) / len(said)
    if support < min_support:
        return "answer not supported by the experience", support
    if not (said & about) - asked:
        return "answer adds nothing the question lacks", support
    return None, support


def _jaccard(a: str, b: str) -> float:
    x, y = set(normalize_answer(a).split()), set(normalize_answer(b).split())
    return len(x & y) / max(1, len(x | y))


def _told(pair: QAPair) -> bool:
    """Whether the question speaks of the user in the third person: "my brother" and "the user's
    brother" are different wordings, each kept, however few words tell them apart."""
    return bool(re.search(r"\bthe user\b", pair.question, re.I))


def recite(sentences: list[str], covered: set[int]) -> list[QAPair]:
    """A recitation pair for each sentence no kept pair covers, in the assistant's voice."""
    pairs = []
    for index, sentence in enumerate(sentences):
        if index not in covered:
            subject = topic(sentence)
            question = f"What did I tell you about {subject}?" if subject else "What did I tell you?"
            pairs.append(QAPair(question, second_person(sentence), index, 1.0, recited=True))
    return pairs


# -- the recipe ---------------------------------------------------------------------------------


def synthesize(
    generator: Backend,
    answerer: Backend,
    experience: str,
    *,
    system_prompt: str,
    teacher_system: Callable[[str], str],
    config: SynthesisConfig = SynthesisConfig(),
) -> tuple[list[QAPair], SynthesisReport]:
    """QA pairs about ``experience`` in the answerer's own words, and a report of the yield.
    ``answerer`` is the student; the generator answers instead when ``config.generator_answers``."""
    answerer = generator if config.generator_answers else answerer
    report = SynthesisReport()
    sentences = split_sentences(experience)
    report.sentences = len(sentences)

    # 1-2. Rule-written questions, then sampled ones (no span), per sentence: (sentence, question).
    candidates: list[tuple[int, ClozeQuestion]] = []
    sampling = GenerationOptions(max_new_tokens=config.question_tokens, temperature=config.temperature,
                                 top_p=config.top_p, seed=config.seed)
    about = experience_subject(experience)
    for index, sentence in enumerate(sentences):
        if config.rule_questions:
            for question in cloze_questions(sentence, about):
                candidates += [(index, q) for q in (question, about_the_user(question)) if q]
        if not config.samples:
            continue
        prompts = [[{"role": "user", "content": QUESTION_PROMPT.format(sentence=part)}]
                   for part in writer_parts(sentence, config.samples)]
        outputs = generator.generate_batch(prompts, sampling)
        report.generated += len(outputs)
        seen: list[str] = [c.question for _, c in candidates]
        for output in outputs:
            for question in parse_questions(output.text):
                if question not in seen:
                    seen.append(question)
                    candidates.append((index, ClozeQuestion(question, "")))
                    report.parsed += 1
    report.cloze = sum(1 for _, c in candidates if c.span)

    # 3. The teacher answers: the answerer with the experience in its system prompt, greedy.
    teacher = {"role": "system", "content": teacher_system(experience)}
    answers = answerer.generate_batch(
        [[teacher, {"role": "user", "content": c.question}] for _, c in candidates],
        GenerationOptions(max_new_tokens=config.answer_tokens),
    ) if candidates else []

    # 4-5. Self-check, then drop near-duplicates, keeping the best supported first.
    passed: list[QAPair] = []
    for (index, candidate), generation in zip(candidates, answers):
        question, span = candidate.question, candidate.span
        answer = first_sentence(generation.text)
        reason, support = check_pair(experience, question, answer, config.min_support)
        if not reason and span and normalize_answer(span) not in normalize_answer(answer):
            reason = "answer misses the asked span"
        if reason and span and config.rule_answers:
            answer = second_person(candidate.clause[0].upper() + candidate.clause[1:] + ".")
            reason, support = check_pair(experience, question, answer, config.min_support)
            report.rule_answered += not reason
        if reason:
            report.rejected[reason] += 1
        else:
            passed.append(QAPair(question, answer, index, round(support, 3), span=span,
                                 asks_subject=candidate.asks_subject))
    kept: list[QAPair] = []
    for pair in sorted(passed, key=lambda p: -p.support):
        if any(_jaccard(pair.question, k.question) > config.max_overlap and _told(pair) == _told(k) for k in kept):
            report.rejected["duplicate"] += 1
        elif len(kept) >= config.max_pairs:
            report.rejected["over max_pairs"] += 1
        else:
            kept.append(pair)

    # 5. Every sentence reaches S: recite the ones no kept pair came from.
    if config.recite_uncovered:
        recitations = recite(sentences, {p.sentence for p in kept})
        kept += recitations
        report.recited += len(recitations)
    report.kept = len(kept)
    report.kept_cloze = sum(1 for p in kept if p.span)
    experience_words = content_words(experience)
    said = set().union(*(content_words(p.answer) for p in kept)) if kept else set()
    report.coverage = len(experience_words & said) / max(1, len(experience_words))
    return kept, report



# -- probes: set aside before training, never trained on ----------------------------------------


def probe_answer(experience: str, question: str, answer: str) -> str | None:
    """The short answer inside a full-sentence one: its longest run of words that the experience
    says and the question does not ("Teodor's dog is called Pimento." -> "Pimento")."""
    new = content_words(experience) - content_words(question)
    best: list[str] = []
    run: list[str] = []
    for word in answer.split():
        key = normalize_answer(word)
        if key and _stem(key) in new:
            run.append(word.strip(".,;:!?\"'()"))
            if len(run) > len(best):
                best = list(run)
        else:
            run = []
    return " ".join(best) or None


def set_aside_probes(
    experience: str, pairs: list[QAPair], count: int
) -> tuple[list[tuple[str, list[str]]], list[QAPair]]:
    """Take up to ``count`` probes (question, short answers) out of the model-written pairs, best
    supported first; the rest stay for training. When no written pair yields a probe, one is made
    from the experience itself ("What do you know about Teodor?" -> its rarest content word), worded
    unlike any recitation question, so a probe is never a training question."""
    probes: list[tuple[str, list[str]]] = []
    taken: set[int] = set()
    for i, pair in sorted(enumerate(pairs), key=lambda item: -item[1].support):
        if len(probes) >= count:
            break
        if pair.asks_subject:  # the only pair that teaches its sentence backwards: it stays in training
            continue
        gold = pair.span or (None if pair.recited else probe_answer(experience, pair.question, pair.answer))
        if gold:
            probes.append((pair.question, [gold]))
            taken.add(i)
    if not probes and count > 0:
        subject = topic(experience)
        # Names and numbers the experience gives besides its subject: "Port Halvik", "94".
        named = [m.group(0) for m in re.finditer(r"(?<!^)(?<![.!?] )\b(?:[A-Z][\w'-]*(?: [A-Z][\w'-]*)*|\d[\d.,:]*\d|\d)",
                                                  experience)
                 if normalize_answer(m.group(0)) not in normalize_answer(subject).split()]
        if subject and named:
            probes.append((f"What do you know about {subject}?", named))
    # Another rule-written question for a probe's span asks the same thing in nearly the same words.
    asked = {pairs[i].span for i in taken} - {""}
    rest = [p for i, p in enumerate(pairs) if i not in taken and p.span not in asked]
    # A sentence whose only pair became a probe is recited instead, so it still reaches training.
    orphaned = {pairs[i].sentence for i in taken} - {p.sentence for p in rest}
    sentences = split_sentences(experience)
    return probes, rest + recite(sentences, set(range(len(sentences))) - orphaned)
