"""Questions written by rule: pick a short answer inside a sentence, ask for it in place.

The 135M model cannot write questions (selfparam_feasibility.md: 1 usable pair per fact; asked
for a question with a given answer, it asks what the sentence means), but with the sentence in
its prompt it answers a plain wh-question about it well (in-context "contains" 0.70 on the
facts set). So reverie writes questions itself, the way a cloze test does:

  1. answer spans: names and other capitalised runs, numbers with their unit, times, dates,
     quoted names, the word after "called"/"named", and the plain noun phrase a clause ends on
     ("I'm allergic to sesame": what a preference is about has no capital letter);
  2. each span is replaced in place by a wh-phrase chosen by its shape ("in Port Halvik" ->
     "in which place", "at 5:30 pm" -> "at what time", "214 kilometres" -> "how many
     kilometres"), and a sentence that opens with a pronoun gets the experience's topic back
     ("His greyhound is called Pimento." -> "Teodor's greyhound is called what?"); the subject
     itself is asked for with a wh-word in its place ("The Halvenmoor Observatory was built in
     1911" -> "Which observatory was built in 1911?"), the way round a reader also asks; a piece
     that does not name the topic gets it in front ("For Marrowfield, the vendor chosen is
     who?"), and a question about the user is asked again in the third person ("I'm allergic to
     what?" -> "The user is allergic to what?");
  3. the caller keeps a question only if the model, seeing the experience, answers it with the
     span (``learners.synthesis``): the span doubles as the self-check's gold answer.
In-place ("echo") questions are stilted but unambiguous, and they name what is asked in the
experience's own words; the model's own sampled questions still add other wordings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

MONTHS = ("January February March April May June July August September October November December "
          "Jan Feb Mar Apr Jun Jul Aug Sep Sept Oct Nov Dec").split()
WEEKDAYS = "Monday Tuesday Wednesday Thursday Friday Saturday Sunday".split()
_DAY_WORDS = {d.lower() for d in WEEKDAYS} | {d.lower() + "s" for d in WEEKDAYS}
# Words that open sentences or stand for someone; never an answer on their own.
_NOT_NAMES = set("""a an the my our your his her its their this that these those i i'm i've i'd we he she it they
please when for in on at after before every each if while since during and but or so then there here
what who where which how why""".split())
_PRONOUNS = {"he": "", "she": "", "it": "", "they": "", "his": "'s", "her": "'s", "its": "'s", "their": "'s",
             "he's": " is", "she's": " is", "it's": " is", "they're": " are"}
_PLACE_PREPOSITIONS = {"in", "at", "to", "from", "near", "into", "across", "on"}
_NUMBER = r"(?<![\w-])\d(?:[\d,.:]*\d)?(?:\s?(?:am|pm|a\.m\.|p\.m\.))?(?:st|nd|rd|th)?(?![\w-])"
_SPAN = re.compile(
    r"'[^']{2,40}'|\"[^\"]{2,40}\"|"  # quoted names: 'Old Wick'
    rf"\b(?:{_NUMBER})(?:\s(?:{'|'.join(MONTHS)})\b)?|"  # numbers, times, "11 October"
    rf"\b(?:{'|'.join(MONTHS)})\s\d{{1,2}}(?:st|nd|rd|th)?\b|"  # "October 11"
    r"\b[A-Z][\w'.-]*(?:\s(?:of\s|the\s)?[A-Z][\w'.-]*)*"  # capitalised runs: "Port Halvik", "Gannet Firth"
)
_UNIT = re.compile(r"\s([a-z]+)\b")
_FUNCTION_WORDS = {"and", "or", "on", "in", "at", "from", "to", "by", "after", "before", "because", "but", "is", "was"}
SUBJECT_WORDS = 4  # a span this early is the sentence's subject: "My grandmother what turns 94?" reads badly


@dataclass(frozen=True)
class ClozeQuestion:
    question: str
    span: str  # the answer the experience gives; the self-check looks for it in the model's answer
    clause: str = ""  # what the question was cut from, the span in place: the answer by rule
    asks_subject: bool = False  # asked the other way round: the sentence's subject is the answer


def _is_time(span: str) -> bool:
    return bool(re.search(r"\d:\d\d|\b(am|pm|a\.m\.|p\.m\.)$", span))


def _is_date(span: str) -> bool:
    return any(m in span.split() for m in MONTHS) or bool(re.fullmatch(r"\d{1,2}(st|nd|rd|th)", span))


def answer_spans(sentence: str) -> list[tuple[int, int, str]]:
    """(start, end, text) of each short answer in the sentence, left to right."""
    spans = []
    for match in _SPAN.finditer(sentence):
        start, text = match.start(), match.group(0).rstrip(".,")
        words = text.split()
        while words and words[0].lower().strip("'") in _NOT_NAMES:  # "My Brother" never, "The Tesk" -> "Tesk"
            start += len(words[0]) + 1
            words = words[1:]
        text = " ".join(words)
        if text and text.lower() not in _DAY_WORDS | {"utc"}:
            spans.append((start, start + len(text), text))
    # The word after "called"/"named", when lowercase: "a cortado" is not a name but is the answer.
    for match in re.finditer(r"\b(?:called|named)\s+((?:a |an |the )?[a-z][\w-]*(?:\s[a-z][\w-]*)?)", sentence):
        if not any(s <= match.start(1) < e for s, e, _ in spans):
            spans.append((match.start(1), match.end(1), match.group(1)))
    return sorted(spans)


def wh_phrase(sentence: str, start: int, end: int, span: str) -> tuple[str, int, int]:
    """The wh-phrase that replaces ``sentence[start:end]``, and the stretch it replaces (a unit
    after a number goes into the phrase: "214 kilometres" -> "how many kilometres")."""
    before = sentence[:start].split()
    previous = before[-1].lower() if before else ""
    following = _UNIT.match(sentence, end)  # the word after the span
    noun = following.group(1) if following and following.group(1) not in _FUNCTION_WORDS else None
    if _is_time(span):
        return "what time", start, end
    if re.fullmatch(r"\d+(st|nd|rd|th)", span) and noun and previous == "the":
        return "which", start - len("the "), end  # "above the 10th floor" -> "above which floor"
    if span in MONTHS:
        return "what month", start, end
    if _is_date(span):
        return "what date", start, end
    if re.fullmatch(r"1[0-9]{3}|20[0-9]{2}", span) and not (noun and noun.endswith("s")):
        return "what year", start, end
    if re.fullmatch(r"\d[\d,.]*", span):
        if noun and noun.endswith("s") and span != "1":  # a plural unit: "214 kilometres"
            return f"how many {noun}", start, following.end()
        return "what number", start, end
    if previous in _PLACE_PREPOSITIONS:
        return "which place", start, end
    if previous in {"by", "with"} or (previous in {"is", "was"} and len(span.split()) >= 2):
        return "whom" if previous in {"by", "with"} else "who", start, end
    return "what", start, end


def subject(text: str) -> str:
    """The name an experience is about: the first answer span of its opening words, if any."""
    spans = [(s, t) for s, _, t in answer_spans(text) if len(text[:s].split()) < SUBJECT_WORDS]
    return spans[0][1].removesuffix("'s") if spans else ""


def resolve_pronoun(sentence: str, topic: str) -> str:
    """'His greyhound is called Pimento.' -> "Teodor's greyhound is called Pimento." (topic 'Teodor')."""
    first, _, rest = sentence.partition(" ")
    suffix = _PRONOUNS.get(first.lower())
    if suffix is None or not topic or not rest:
        return sentence
    return f"{topic}{suffix} {rest}"


def anchor(piece: str, topic: str) -> str:
    """A sentence or clause that does not name the experience's topic gets it in front: "The 2023
    race was won by Fenna Lowgate" -> "For Copperwind Festival, the 2023 race was won by Fenna
    Lowgate". Asked alone, "The 2023 race was won by whom?" ties the answer to nothing, and a
    later question names the topic ("Who won the Copperwind kite race in 2023?")."""
    words = piece.split()
    named = {w.lower().strip(".,;:!?'\"").removesuffix("'s") for w in words}
    if not topic or not words or set(topic.lower().split()) & named or words[0] in _AFTER_SUBJECT:
        return piece  # it names the topic, or it is a fragment ("has a broken brake")
    first = words[0]
    if first.lower() in _NOT_NAMES - {"i", "i'm", "i've", "i'd"}:  # "The 2023 race", but "I'm giving"
        first = first.lower()
    return f"For {topic}, {' '.join([first, *words[1:]])}"


_CLAUSE_BREAK = re.compile(r",\s+(?:and|but|so|which)\s+|\s+because\s+|;\s+")


def clauses(sentence: str) -> list[str]:
    """The sentence's clauses, split where a new one starts: ", and", ", but", " because", ";"."""
    return [c.strip() for c in _CLAUSE_BREAK.split(sentence) if c.strip()]


# What ends the plain noun phrase a clause ends on, read from its end: prepositions, articles,
# possessives, copulas and adverbs of frequency ("always want an aisle seat" -> "aisle seat").
_DETERMINERS = set("a an the my our your his her its their this that these those".split())
_PHRASE_STOPS = _DETERMINERS | set("""to with as on in at for of from by about into under over after before during
across than is are was were be am and or but never always only""".split())


def object_span(clause: str) -> tuple[int, int, str] | None:
    """The plain noun phrase a clause ends on, when no name or number is there to ask for
    ("I'm allergic to sesame" -> "sesame"; "I always want an aisle seat" -> "aisle seat"): up to
    three lowercase words after the last preposition, article or copula, or else the last word
    alone ("I dislike audiobooks"); a weekday before it belongs to it ("Monday mornings"). None
    when a name or number comes right before it ("Larkfield community hall", "37 books"): that is
    a span of its own. The stretch to replace takes a determiner with it, so the question reads
    "I always want what?", not "...want an what?"."""
    words = [(m.start(), m.end(), m.group(0)) for m in re.finditer(r"[\w'-]+", clause)]
    first = len(words)  # index of the phrase's first word
    while first > 0 and len(words) - first < 3:
        text = words[first - 1][2]
        if text.lower() in _PHRASE_STOPS or not (text.islower() or text in WEEKDAYS):
            break
        first -= 1
    if first == len(words):
        return None
    before = words[first - 1][2] if first > 0 else ""
    if before and not before.islower() and before not in {"I", "I'm", "I've", "I'd"}:
        return None
    if before.lower() not in _PHRASE_STOPS:  # no preposition before it: a verb may be in it ("dislike audiobooks")
        first = len(words) - 1
        before = words[first - 1][2] if first > 0 else ""
    start = words[first - 1][0] if before.lower() in _DETERMINERS else words[first][0]
    return start, words[-1][1], clause[words[first][0]:words[-1][1]]


def _asked(text: str) -> str:
    return text[0].upper() + text[1:] + "?"


# Words that can follow a sentence's subject: copulas, auxiliaries, adverbs and common irregular
# past tenses; a regular verb ends in "-s" or "-ed" ("flows", "turns", "started").
_AFTER_SUBJECT = set("""is are was were has have had will would can could must should just still also always never
usually often lent built made won wrote gave took sent left told met bought sold ran began became got kept held
found brought""".split())


def subject_question(piece: str) -> ClozeQuestion | None:
    """The sentence's subject, asked for in its own place: "The Halvenmoor Observatory was built
    in 1911" -> "Which observatory was built in 1911?", "The river Sallow Ness flows 214
    kilometres" -> "Which river flows 214 kilometres?", "My son Elric is allergic to kiwi" ->
    "Who is allergic to kiwi?", "Quorvex is a programming language" -> "What is a programming
    language?". A wh-word in subject position reads naturally where an in-place one does not,
    and these are the questions asked the other way round ("Which observatory did Cassia Drenholt
    build?"), which a model taught only the forward direction cannot answer. None unless the
    span is the whole subject (a verb follows it) and only a determiner and a noun precede it."""
    spans = answer_spans(piece)
    if not spans or len(piece[: spans[0][0]].split()) >= SUBJECT_WORDS:
        return None
    start, end, span = spans[0]
    following = piece[end:].split()
    verb = following[0].lower().strip(",") if following else ""
    if span.endswith("'s") or not (verb in _AFTER_SUBJECT or (verb.isalpha() and verb.islower() and (
            verb.endswith("ed") or (verb.endswith("s") and not verb.endswith("ss"))))):
        return None
    before = piece[:start].split()
    if not before:
        phrase = "who" if len(span.split()) > 1 else "what"  # "Tomas Eberwyn designed", "Quorvex is"
    elif [w.lower() for w in before] == ["the"]:
        phrase = f"which {span.split()[-1].lower()}" if len(span.split()) > 1 else "what"
    elif before[0].lower() == "the" and len(before) == 2 and before[1].islower():
        phrase = f"which {before[1]}"  # "The river Sallow Ness"
    elif before[0].lower() in {"my", "our"} and all(w.islower() for w in before[1:]):
        phrase = "who"  # "My best friend Marguerite Vasko": names after a kin word are people (or pets)
    else:
        return None
    question = f"{phrase} {piece[end:].strip()}"
    if question.count(" ") < 3:
        return None
    return ClozeQuestion(_asked(question), span.strip("'\""), piece, asks_subject=True)


# The user in the third person, as the assistant's own notes speak of them: a clause names them,
# and once they are its subject later mentions are pronouns ("the user drinks their coffee"; a
# clause is asked about on its own, so each one names the user again). A verb after "I" agrees.
_NAMED = {"i": "the user", "me": "the user", "my": "the user's", "mine": "the user's", "myself": "the user",
          "i'm": "the user is", "i've": "the user has", "i'd": "the user would", "i'll": "the user will"}
_LATER = {"i": "they", "me": "them", "my": "their", "mine": "theirs", "myself": "themselves",
          "i'm": "they're", "i've": "they've", "i'd": "they'd", "i'll": "they'll"}
_AGREES = {"am": "is", "have": "has", "do": "does", "don't": "doesn't", "go": "goes"}
_UNCHANGED = _AFTER_SUBJECT | set("can can't cannot may might shall was went saw did said came thought".split())
_ADVERBS = set("always usually never often also still just really sometimes rarely only mostly normally".split())


def _agree(verb: str) -> str:
    """A verb after "the user": "prefer" -> "prefers", "watch" -> "watches", "carry" -> "carries"."""
    lower = verb.lower()
    if lower in _AGREES:
        return _AGREES[lower]
    if lower in _UNCHANGED or not lower.isalpha() or lower.endswith("ed"):
        return verb
    if lower.endswith(("s", "sh", "ch", "x", "o")):
        return verb + "es"
    if lower.endswith("y") and lower[-2:-1] not in set("aeiou"):
        return verb[:-1] + "ies"
    return verb + "s"


def third_person(sentence: str) -> str:
    """'I drink my coffee with oat milk, and my son Elric is allergic to kiwi.' -> 'The user drinks
    their coffee with oat milk, and the user's son Elric is allergic to kiwi.' Unchanged when the
    user is not in it."""
    out: list[str] = []
    pos = 0
    for match in re.finditer(f"{_CLAUSE_BREAK.pattern}|$", sentence):
        clause = sentence[pos : match.start()]
        words = re.split(r"(\s+)", clause)  # words and the spaces between them
        named = False
        for i, word in enumerate(words):
            key = word.lower().rstrip(".,;:!?")
            if key not in _NAMED:
                continue
            said = (_LATER if named else _NAMED)[key]
            if not named and key == "i":  # the verb after "the user" (past any adverbs) agrees
                k = i + 2
                while k < len(words) and words[k].lower() in _ADVERBS:
                    k += 2
                if k < len(words):
                    words[k] = _agree(words[k])
            named = named or key.startswith("i")  # a subject: "they" may follow; after "my", not
            words[i] = said + word[len(key):]
        text = "".join(words)
        out.append(text[0].upper() + text[1:] if pos == 0 and text else text)
        out.append(match.group(0))
        pos = match.end()
    return "".join(out)


def about_the_user(question: ClozeQuestion) -> ClozeQuestion | None:
    """The question asked of the user in the third person ("I'm allergic to what?" -> "The user is
    allergic to what?"), the way the assistant and anyone it serves speak of them; None when the
    user is not in it."""
    told = third_person(question.question)
    if told == question.question:
        return None
    return replace(question, question=told, clause=third_person(question.clause))


def cloze_questions(sentence: str, topic: str = "") -> list[ClozeQuestion]:
    """In-place wh-questions about each answer span of ``sentence``: one over the whole sentence
    and, when the sentence has several clauses, a shorter one over the span's own clause (short
    questions are what people ask). ``topic`` resolves a leading pronoun, and a piece that does
    not name it is asked about with the topic in front."""
    body = sentence.strip().rstrip(".!?").rstrip()
    pieces = [body] + (parts if len(parts := clauses(body)) > 1 else [])
    questions: list[ClozeQuestion] = []
    for piece in pieces:
        resolved = resolve_pronoun(piece, topic)
        # A resolved pronoun is a guess ("she rides along" is the dog, not Teodor): never the answer.
        if resolved == piece and (found := subject_question(piece)):
            questions.append(found)
        piece = anchor(resolved, topic)
        spans = answer_spans(piece)
        for start, end, span in spans:
            if len(piece[:start].split()) < SUBJECT_WORDS:
                continue
            phrase, start, end = wh_phrase(piece, start, end, span)
            question = f"{piece[:start]}{phrase}{piece[end:]}".strip()
            if question.count(" ") >= 3:
                questions.append(ClozeQuestion(_asked(question), span.strip("'\""), piece))
        if (found := object_span(piece)) and not any(s < found[1] and found[0] < e for s, e, _ in spans):
            start, end, span = found
            question = f"{piece[:start]}what{piece[end:]}".strip()
            if question.count(" ") >= 2:
                questions.append(ClozeQuestion(_asked(question), span, piece))
    return questions
