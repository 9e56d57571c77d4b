"""What the user wants, read from a conversation: the hard constraints a recommendation must
never violate, and the titles they mentioned or liked.

The reader is rules over the catalogue's own vocabulary, not the model: a 135M model does not
parse "nothing made before 1990" reliably, and a constraint it invented would empty a list or
let a violation through. Only what the catalogue can be asked about is read: genres, tags,
ratings and languages its items carry, years and runtimes when they have them. Each user
message is split into clauses ("A romance, but please no science fiction" is two); a negation
cue earlier in a clause ("no", "not", "nothing", "avoid", "without", ...) turns a wish into an
exclusion, and a limit ("nothing before 1990" is 1990 or later). Several statements combine:
both limits hold, so the stricter wins, and a later wish overrides an earlier exclusion of the
same thing.

A tag (a topic: robots, heists, dogs) counts only where the words around it say it is what the
film is about ("about robots", "loves dogs", "heist movies", "set in space"): "my kids are
obsessed with robots" asks for robots, not for films tagged kids.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from graphs.titles import Titles
from memory.records import CatalogueItem

NEGATION = re.compile(r"\b(no|not|nothing|never|avoid|without|except|skip|hate|dislike|don'?t|do not|rather not|"
                      r"none|isn'?t|aren'?t|won'?t|can'?t stand|nor)\b", re.I)
CLAUSE = re.compile(r"[.;!?,]|\bbut\b|\band\b(?!\s+a\s+half)|\bthough\b|\bhowever\b", re.I)
TOPIC_CUE = re.compile(r"\b(about|with|featuring|involving|set|in|on|loves?|loved|likes?|into|obsessed|has|have|"
                       r"having|includes?|where|themed|of)\b\W*(?:\w+\W+){0,3}$", re.I)
TOPIC_AFTER = re.compile(r"^[\s-]*(movies?|films?|flicks?|stor(?:y|ies)|themed|shows?)\b", re.I)
NOT_TOPICS = re.compile(r"\b(movie|film|date|game) night\b|\btonight\b", re.I)
YEAR = r"(1[89]\d\d|20\d\d|(?:the\s+)?(?:19|20)?\d0'?s)"
RATING_ORDER = ["G", "PG", "PG-13", "R", "NC-17"]
GENRE_WORDS = {
    "sci-fi": ["science fiction", "science-fiction", "scifi", "sci fi", "sf"],
    "animation": ["animated", "cartoon", "cartoons", "anime"],
    "horror": ["scary"],
    "comedy": ["comedies", "funny", "comedic"],
    "romance": ["romantic", "rom-com", "romcom", "love story"],
    "documentary": ["documentaries", "docs"],
    "musical": ["songs", "singing"],
    "thriller": ["suspense"],
    "mystery": ["mysteries", "whodunnit"],
    "western": ["cowboy", "cowboys"],
    "family": ["family-friendly"],
    "sports": ["sport"],
    "crime": ["gangster", "gangsters"],
}
LANGUAGE_WORDS = {"Hindi": ["bollywood"]}
NUMBERS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "half an": 0.5, "half a": 0.5}
DURATION = (r"((?:\d+(?:\.\d+)?)|an?|one|two|three|four|half an?)\s*(?:-\s*)?(hours?|hrs?|h|minutes?|mins?|m)\b"
            r"(\s+and\s+a\s+half)?")
SHORTER = re.compile(r"\b(under|less than|shorter than|below|within|no (?:more|longer) than|at most|max(?:imum)?|"
                     r"up to|(?:only )?(?:have|got)(?: only)?(?: about| around| roughly)?)\s+(?:about |around )?"
                     + DURATION, re.I)
LONGER = re.compile(r"\b(over|more than|longer than|at least|above|minimum)\s+" + DURATION, re.I)
BEFORE = re.compile(r"\b(before|earlier than|older than|prior to|pre-?)\s*" + YEAR, re.I)
AFTER = re.compile(r"\b(after|later than|newer than|post-?)\s*" + YEAR, re.I)
SINCE = re.compile(r"\b(since|from|starting|onwards? from)\s+" + YEAR + r"(?!\s*(?:to|-|until|through|till)\b)", re.I)
RANGE = re.compile(r"\bfrom\s+" + YEAR + r"\s*(?:to|-|until|through|till)\s*" + YEAR, re.I)
BETWEEN = re.compile(r"\bbetween\s+" + YEAR + r"\s+and\s+" + YEAR, re.I)
ONWARDS = re.compile(YEAR + r"\s*(?:onwards?|or later|or newer|and later|and newer|and up|\+)", re.I)
UNTIL = re.compile(YEAR + r"\s*(?:or earlier|or before|or older|and earlier|and older)", re.I)
DECADE = re.compile(r"\b(?:the\s+)?((?:19|20)?\d0)'?s\b", re.I)


class Wants(BaseModel):
    """Hard constraints (the key names of the recsys fixture, plus ``tags_none``) and mentions."""

    genres_all: list[str] = []
    genres_any: list[str] = []  # "a comedy or a drama": one of them at least
    genres_none: list[str] = []
    tags_any: list[str] = []
    tags_none: list[str] = []
    year_min: int | None = None
    year_max: int | None = None
    runtime_lt: int | None = None
    runtime_gt: int | None = None
    rating_in: list[str] = []
    rating_not: list[str] = []
    language_in: list[str] = []
    language_not: list[str] = []
    seen: list[str] = []  # ids of items mentioned in the conversation: never recommended again
    liked: list[str] = []  # ids of mentioned items the user spoke well of ("like X", "I loved X")

    def constraints(self) -> dict[str, Any]:
        """The hard constraints only, those that are set."""
        return {k: v for k, v in self.model_dump(exclude={"seen", "liked"}).items() if v not in (None, [])}


@dataclass
class Vocabulary:
    """What a catalogue's items can be asked about, and the phrases that ask for it."""

    genres: dict[str, str] = field(default_factory=dict)  # phrase -> genre
    tags: dict[str, str] = field(default_factory=dict)  # phrase -> tag
    ratings: list[str] = field(default_factory=list)
    languages: dict[str, str] = field(default_factory=dict)  # phrase -> language
    main_language: str | None = None  # more than half the items: "foreign" means not this
    years: bool = False
    runtimes: bool = False
    titles: Titles = field(default_factory=lambda: Titles(()))

    @classmethod
    def of(cls, items: Iterable[CatalogueItem]) -> Vocabulary:
        genres: Counter = Counter()
        tags: Counter = Counter()
        ratings: set[str] = set()
        languages: Counter = Counter()
        years = runtimes = False
        titles = []
        for item in items:
            titles.append((item.id, item.title))
            genres.update(values(item, "genres"))
            tags.update(values(item, "tags"))
            ratings.update(r for r in [rating(item)] if r)
            languages.update(values(item, "language"))
            years = years or year(item) is not None
            runtimes = runtimes or runtime(item) is not None
        vocab = cls(ratings=sorted(ratings), years=years, runtimes=runtimes, titles=Titles(titles))
        for genre in genres:
            for phrase in [genre, *GENRE_WORDS.get(genre, [])]:
                vocab.genres.update({variant: genre for variant in plurals(phrase)})
        for tag in tags:
            vocab.tags.update({variant: tag for variant in plurals(tag) if variant not in vocab.genres})
        for language in languages:
            for phrase in [language.lower(), *LANGUAGE_WORDS.get(language, [])]:
                vocab.languages[phrase] = language
        total = sum(languages.values())
        if languages and languages.most_common(1)[0][1] * 2 > total:
            vocab.main_language = languages.most_common(1)[0][0]
        return vocab


# -- reading the conversation ----------------------------------------------------------------


def read(messages: Sequence[dict], vocab: Vocabulary) -> Wants:
    """What the user asks for in ``messages`` (user turns for constraints, every turn for mentions)."""
    wants = Wants()
    for message in messages:
        text = message.get("content") or ""
        mentioned = vocab.titles.find(text)
        wants.seen += [i for i in mentioned if i not in wants.seen]
        if message.get("role") != "user":
            continue
        text = BETWEEN.sub(r"from \1 to \2", text.replace("anything but", "not"))  # before "and" splits it
        for clause in CLAUSE.split(text):
            _read_clause(clause, vocab, wants)
    return wants


LIKED = re.compile(r"\b(like|likes|liked|love|loved|loves|enjoy|enjoyed|similar to|fan of|in the vein of|"
                   r"favou?rite|adore|adored|great|good)\b", re.I)


def _read_clause(clause: str, vocab: Vocabulary, wants: Wants) -> None:
    negated = NEGATION.search(clause)
    cut = negated.start() if negated else len(clause)  # a cue counts for what follows it

    def neg(position: int) -> bool:
        return position > cut  # "no more than 90 minutes" is a limit, not a negated one

    _read_limits(clause, vocab, wants, neg)
    if LIKED.search(clause) and not negated:
        wants.liked += [i for i in vocab.titles.find(clause) if i not in wants.liked]
    lowered = NOT_TOPICS.sub(lambda m: " " * len(m.group()), clause.lower())
    taken = [False] * len(lowered)
    genres_here: list[tuple[int, int, str]] = []  # the wished genres of this clause: start, end, genre
    phrases = [(p, "genre", g) for p, g in vocab.genres.items()] + [(p, "tag", t) for p, t in vocab.tags.items()]
    phrases += [(p, "language", lang) for p, lang in vocab.languages.items()]
    for phrase, kind, value in sorted(phrases, key=lambda x: -len(x[0])):
        for match in re.finditer(r"(?<![\w-])" + re.escape(phrase) + r"(?![\w-])", lowered):
            if any(taken[match.start() : match.end()]):
                continue
            if kind == "tag" and not (TOPIC_CUE.search(lowered[: match.start()])
                                      or TOPIC_AFTER.match(lowered[match.end() :])):
                continue
            taken[match.start() : match.end()] = [True] * (match.end() - match.start())
            plural = {"genre": "genres", "tag": "tags", "language": "language"}[kind]
            wanted, unwanted = (f"{plural}_all" if kind == "genre" else f"{plural}_any" if kind == "tag"
                                else "language_in"), (f"{plural}_none" if kind != "language" else "language_not")
            _wish(wants, unwanted if neg(match.start()) else wanted, unwanted if not neg(match.start()) else wanted,
                  value)
            if kind == "genre" and not neg(match.start()):
                genres_here.append((match.start(), match.end(), value))
    genres_here.sort()
    if len(genres_here) > 1 and all(re.search(r"\bor\b", lowered[a[1] : b[0]]) for a, b in zip(genres_here, genres_here[1:])):
        for _, _, genre in genres_here:  # "a thriller or a mystery": either will do
            wants.genres_all.remove(genre)
            _wish(wants, "genres_any", "genres_none", genre)
    foreign = vocab.main_language and re.search(r"\bforeign\b", lowered)
    if foreign:  # "a foreign-language film": not the catalogue's main language; "nothing foreign": only it
        key, opposite = ("language_in", "language_not") if neg(foreign.start()) else ("language_not", "language_in")
        _wish(wants, key, opposite, vocab.main_language)


def _read_limits(clause: str, vocab: Vocabulary, wants: Wants, neg) -> None:
    if vocab.ratings:
        _read_ratings(clause, vocab, wants, neg)
    if vocab.years:
        for m in BEFORE.finditer(clause):
            y = _year(m.group(2))
            _limit(wants, "year_min", y[0]) if neg(m.start()) else _limit(wants, "year_max", y[0] - 1)
        for m in AFTER.finditer(clause):
            y = _year(m.group(2))
            _limit(wants, "year_max", y[1]) if neg(m.start()) else _limit(wants, "year_min", y[1] + 1)
        for m in RANGE.finditer(clause):
            if not neg(m.start()):
                _limit(wants, "year_min", _year(m.group(1))[0])
                _limit(wants, "year_max", _year(m.group(2))[1])
        for m in SINCE.finditer(clause):  # "since 2000"; "from the 80s" is the decade, not onwards
            first, last = _year(m.group(2))
            if neg(m.start()):
                _limit(wants, "year_max", first - 1)
            else:
                _limit(wants, "year_min", first)
                if m.group(1).lower() == "from" and first != last and not ONWARDS.match(clause, m.start(2)):
                    _limit(wants, "year_max", last)
        for m in ONWARDS.finditer(clause):
            first, _ = _year(m.group(1))
            _limit(wants, "year_max", first - 1) if neg(m.start()) else _limit(wants, "year_min", first)
        for m in UNTIL.finditer(clause):
            _, last = _year(m.group(1))
            _limit(wants, "year_min", last + 1) if neg(m.start()) else _limit(wants, "year_max", last)
        if not any(p.search(clause) for p in (BEFORE, AFTER, SINCE, ONWARDS, UNTIL, RANGE)):
            for m in DECADE.finditer(clause):
                first, last = _year(m.group(1) + "s")
                if first != last and not neg(m.start()):
                    _limit(wants, "year_min", first)
                    _limit(wants, "year_max", last)
    if vocab.runtimes:
        for m in SHORTER.finditer(clause):
            minutes = _minutes(m.group(2), m.group(3), m.group(4))
            strict = m.group(1).lower() in ("under", "less than", "shorter than", "below")
            if neg(m.start()):  # "nothing under 90 minutes": 90 or more
                _limit(wants, "runtime_gt", minutes - 1)
            else:
                _limit(wants, "runtime_lt", minutes if strict else minutes + 1)
        for m in LONGER.finditer(clause):
            minutes = _minutes(m.group(2), m.group(3), m.group(4))
            inclusive = m.group(1).lower() in ("at least", "minimum")
            if neg(m.start()):  # "nothing over two hours": two hours at most
                _limit(wants, "runtime_lt", minutes + 1)
            else:
                _limit(wants, "runtime_gt", minutes - 1 if inclusive else minutes)


def _read_ratings(clause: str, vocab: Vocabulary, wants: Wants, neg) -> None:
    for r in sorted(vocab.ratings, key=len, reverse=True):
        for m in re.finditer(r"(?<![\w-])" + re.escape(r) + r"(?!\w|-\d)", clause):
            before, after = clause[: m.start()].lower(), clause[m.end() :].lower()
            context = (re.search(r"(rated|rating|not|no)\s*$", before) or re.match(r"\s*-?\s*rated", after)
                       or re.search(r"\b(pg-13|pg|nc-17|g|r)\s*(,|or|/)\s*$", before))  # "rated PG or G"
            if len(r) <= 2 and r != "PG" and not context:
                continue  # "G" or "R" alone is too often something else
            if re.match(r"\s*(or|and)\s+(below|lower|under|less)", after) and r in RATING_ORDER:
                allowed = [x for x in vocab.ratings if x in RATING_ORDER and RATING_ORDER.index(x) <= RATING_ORDER.index(r)]
                for x in allowed:
                    _wish(wants, "rating_in", "rating_not", x)
            elif neg(m.start()):
                _wish(wants, "rating_not", "rating_in", r)
            else:
                _wish(wants, "rating_in", "rating_not", r)


def _wish(wants: Wants, key: str, opposite: str, value: str) -> None:
    """Add ``value`` to ``key``; a later statement overrides an earlier opposite one."""
    if value not in getattr(wants, key):
        getattr(wants, key).append(value)
    if value in getattr(wants, opposite):
        getattr(wants, opposite).remove(value)


def _limit(wants: Wants, key: str, value: int) -> None:
    """Both limits hold, so the stricter is kept."""
    current = getattr(wants, key)
    tighter = max if key.endswith(("_min", "_gt")) else min
    setattr(wants, key, value if current is None else tighter(current, value))


def _year(text: str) -> tuple[int, int]:
    """A year, or a decade's first and last year ("the 80s", "1990s")."""
    digits = re.sub(r"\D", "", text)
    if len(digits) == 4 and not text.rstrip().endswith("s"):
        return int(digits), int(digits)
    start = int(digits) if len(digits) == 4 else (1900 if int(digits) >= 30 else 2000) + int(digits)
    return start, start + 9


def _minutes(amount: str, unit: str, half: str | None) -> int:
    value = NUMBERS.get(amount.lower()) if amount.lower() in NUMBERS else float(amount)
    value = float(value) + (0.5 if half else 0)
    return round(value * 60 if unit.lower().startswith("h") else value)


# -- the catalogue's fields ------------------------------------------------------------------


def plurals(phrase: str) -> set[str]:
    phrase = phrase.lower()
    out = {phrase, phrase + "s", phrase + "es"}
    if phrase.endswith("y"):
        out.add(phrase[:-1] + "ies")
    if phrase.endswith("s"):
        out.add(phrase[:-1])
    return out


def values(item: CatalogueItem, key: str) -> list[str]:
    """A list field (genres, tags) or a single one (language), in lower case for genres and tags."""
    raw = item.fields.get(key, item.fields.get(key.rstrip("s")))
    raw = raw if isinstance(raw, list) else [] if raw is None else [raw]
    texts = [str(v).strip() for v in raw if str(v).strip()]
    return texts if key == "language" else [t.lower() for t in texts]


def year(item: CatalogueItem) -> int | None:
    return _int(item.fields.get("year", item.fields.get("release_year")))


def runtime(item: CatalogueItem) -> int | None:
    return _int(item.fields.get("runtime_min", item.fields.get("runtime")))


def rating(item: CatalogueItem) -> str | None:
    value = item.fields.get("rating")
    return str(value).strip() if value not in (None, "") else None


def _int(value) -> int | None:
    try:
        return int(value) if value is not None and not isinstance(value, bool) else None
    except (TypeError, ValueError):
        return None


def violations(item: CatalogueItem, wants: Wants) -> list[str]:
    """Every hard constraint ``item`` breaks (an unknown value breaks a limit: it cannot be shown to hold)."""
    broken = []
    genres, tags, language = set(values(item, "genres")), set(values(item, "tags")), values(item, "language")
    if item.id in wants.seen:
        broken.append("already mentioned")
    broken += [f"not {g}" for g in wants.genres_all if g not in genres]
    broken += [f"is {g}" for g in wants.genres_none if g in genres]
    if wants.genres_any and not genres.intersection(wants.genres_any):
        broken.append("none of " + ", ".join(wants.genres_any))
    if wants.tags_any and not genres.union(tags).intersection(wants.tags_any):
        broken.append("about none of " + ", ".join(wants.tags_any))
    broken += [f"about {t}" for t in wants.tags_none if t in tags]
    y, minutes, r = year(item), runtime(item), rating(item)
    if wants.year_min is not None and (y is None or y < wants.year_min):
        broken.append(f"year {y} < {wants.year_min}")
    if wants.year_max is not None and (y is None or y > wants.year_max):
        broken.append(f"year {y} > {wants.year_max}")
    if wants.runtime_lt is not None and (minutes is None or minutes >= wants.runtime_lt):
        broken.append(f"runtime {minutes} >= {wants.runtime_lt}")
    if wants.runtime_gt is not None and (minutes is None or minutes <= wants.runtime_gt):
        broken.append(f"runtime {minutes} <= {wants.runtime_gt}")
    if wants.rating_in and r not in wants.rating_in:
        broken.append(f"rated {r}")
    if r in wants.rating_not:
        broken.append(f"rated {r}")
    if wants.language_in and not set(language) & set(wants.language_in):
        broken.append(f"in {', '.join(language) or 'an unknown language'}")
    broken += [f"in {lang}" for lang in language if lang in wants.language_not]
    return broken
