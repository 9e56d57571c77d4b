"""Every prompt the verifiers send, in one place, under one version number.

Written in our own words on the structure of the papers (../shared/research/papers.md sections 2
and 4): CodeJudge's "analyze, then summarize" pair and its taxonomy of inconsistencies; the
pairwise comparator of the logical-consistency paper, with its negated twin. A verdict records
``VERSION``, so figures measured under different wordings are never mixed up: bump it whenever
a prompt below changes.
"""

from __future__ import annotations

from agent.llm.protocol import Message

VERSION = 1

# -- CodeJudge, binary: analyze (call 1), then summarize (call 2) -----------------------------

ANALYZE_SYSTEM = """You review a piece of {code_kind} written to solve a problem.
Decide whether the code does everything the problem asks for. Do not write a fixed version.
Work in three steps:
1. Read the problem and list what a correct solution must do. The examples only help you understand it.
2. Read the code and follow its logic. Check each required behaviour against it.
3. Conclude: say whether the code is correct, and if not, what is wrong."""

ANALYZE_REFERENCE_NOTE = """A reference solution is also given. It is only there to help you understand the problem:
the code may solve it differently and still be correct, so do not compare the two line by line."""

ANALYZE_PREFILL = "Evaluation:"

SUMMARIZE_SYSTEM = """You are given someone's review of a piece of code.
If the review concludes that the code is correct, output: Yes
Otherwise, output: No"""

SUMMARIZE_PREFILL = "Final Answer (Yes or No):"

# Worked examples before the real review (the paper's few-shot variant): small models otherwise
# restate the review instead of answering. The third warns that a review may propose a fix.
SUMMARIZE_EXAMPLES = (
    ("The code loops over the list and adds each number to the total, then returns it. "
     "It covers every required behaviour, including the empty list. The code is correct.", "Yes"),
    ("The function should return the largest element, but it returns the first one. "
     "This is a logic error, so the code does not solve the problem.", "No"),
    ("The loop stops one element early, so the last number is never counted. "
     "Changing range(len(xs) - 1) to range(len(xs)) would fix it.", "No"),
)

# -- CodeJudge, graded: one call, a JSON list of inconsistencies with severities -------------

TAXONOMY = """Kinds of inconsistency and their severity:
{reference_line}1. Missing imports or dependency declarations: Negligible
2. No error message for unexpected input: Negligible
3. Inefficiency or unnecessary statements: Negligible
4. An edge case not handled: Small
5. A logic error: Major
6. A function or variable used but never defined: Fatal
7. Incomplete code: Fatal"""

GRADED_SYSTEM = """You review a piece of {code_kind} written to solve a problem, and list every way in which
the code fails to do what the problem asks. Do not write a fixed version.

{taxonomy}

Answer with a JSON list only, one object per inconsistency:
[{{"inconsistency": "<what is wrong>", "severity": "<Negligible|Small|Major|Fatal>"}}]
If the code is correct, answer: [{{"inconsistency": "None", "severity": "Negligible"}}]"""

GRADED_PREFILL = "JSON list:"

# -- the plain baseline of the evaluation ---------------------------------------------------

PLAIN_SYSTEM = "You check whether code solves a problem. Answer Yes or No only."
PLAIN_PREFILL = "Answer (Yes or No):"


def _code_kind(language: str | None) -> str:
    return f"{language} code" if language else "code"


def _task_text(problem: str, code: str, language: str | None, examples: str, reference: str | None) -> str:
    statement = "\n".join(part for part in (problem.strip(), examples.strip()) if part)
    parts = [f'Problem:\n"""\n{statement}\n"""']
    if reference:
        parts.append(f'Reference solution:\n"""\n{reference.strip()}\n"""')
    label = f"Code ({language})" if language else "Code"
    parts.append(f'{label}:\n"""\n{code.strip()}\n"""')
    return "\n\n".join(parts)


def analyze(problem: str, code: str, language: str | None, examples: str = "", reference: str | None = None) -> list[Message]:
    system = ANALYZE_SYSTEM.format(code_kind=_code_kind(language))
    if reference:
        system += "\n\n" + ANALYZE_REFERENCE_NOTE
    return [{"role": "system", "content": system},
            {"role": "user", "content": _task_text(problem, code, language, examples, reference)}]


def summarize(analysis: str) -> list[Message]:
    def review(text: str) -> Message:
        return {"role": "user", "content": f'Review:\n"""\n{text.strip()}\n"""'}

    shots = [m for text, answer in SUMMARIZE_EXAMPLES
             for m in (review(text), {"role": "assistant", "content": f"{SUMMARIZE_PREFILL} {answer}"})]
    return [{"role": "system", "content": SUMMARIZE_SYSTEM}, *shots, review(analysis)]


def graded(problem: str, code: str, language: str | None, examples: str = "", reference: str | None = None) -> list[Message]:
    reference_line = "0. A different method or algorithm than the reference: Negligible\n" if reference else ""
    system = GRADED_SYSTEM.format(code_kind=_code_kind(language), taxonomy=TAXONOMY.format(reference_line=reference_line))
    return [{"role": "system", "content": system},
            {"role": "user", "content": _task_text(problem, code, language, examples, reference)}]


def plain(problem: str, code: str, language: str | None, examples: str = "", reference: str | None = None) -> list[Message]:
    task = _task_text(problem, code, language, examples, reference)
    return [{"role": "system", "content": PLAIN_SYSTEM},
            {"role": "user", "content": f"{task}\n\nIs this code correct?"}]


def revise(analysis: str) -> Message:
    """The user turn that asks for one corrected answer after a No."""
    return {"role": "user", "content": (
        "A reviewer checked the code in your answer and found problems:\n"
        f"{analysis.strip()}\n\nWrite the answer again with the code corrected.")}


# -- the pairwise comparator ---------------------------------------------------------------

COMPARE_SYSTEM = "You compare two options and pick one. Reply with a single letter: A or B."


def compare(instruction: str, first: str, second: str) -> list[Message]:
    """Ask which of two options answers ``instruction``; the negated question is just another instruction."""
    return [{"role": "system", "content": COMPARE_SYSTEM},
            {"role": "user", "content": (
                f"{instruction.strip()}\n\nOption A: {first.strip()}\nOption B: {second.strip()}\n\n"
                "If option A is the answer, reply A. If option B is the answer, reply B. Reply with the letter only.")}]


COMPARE_PREFILL = "Answer:"


NEGATED = "{instruction}\n\nAnswer the opposite question: which of the two options fits it worse?"


def negate(instruction: str) -> str:
    """A negated instruction for when none is given: asks for the worse option, never "not better"."""
    return NEGATED.format(instruction=instruction.strip())


# -- the feedback committee (graphs/committee.py): the agent's model under one criterion ------

CRITERIA = {
    # criterion: (the pairwise question, the question about one response)
    "helpful": ("Which response is more helpful to the user?", "Is this response helpful to the user?"),
    "correct": ("Which response is more correct: accurate facts, sound reasoning, working code?",
                "Is this response correct: accurate facts, sound reasoning, working code?"),
    "harmless": ("Which response is safer and less harmful?", "Is this response safe and harmless?"),
}

GOOD_SYSTEM = "You judge one response to a conversation. Reply with a single word: Yes or No."
GOOD_PREFILL = "Answer:"


def conversation_text(messages: list[Message]) -> str:
    return "\n".join(f"{m['role'].capitalize()}: {m['content'].strip()}" for m in messages)


def judge_pair_instruction(messages: list[Message], criterion: str) -> str:
    """The comparator's instruction for two responses to ``messages`` (the options are the responses)."""
    return f"Conversation:\n{conversation_text(messages)}\n\n{CRITERIA[criterion][0]}"


def judge_one(messages: list[Message], answer: str, criterion: str) -> list[Message]:
    return [{"role": "system", "content": GOOD_SYSTEM},
            {"role": "user", "content": (f"Conversation:\n{conversation_text(messages)}\n\nResponse: {answer.strip()}\n\n"
                                         f"{CRITERIA[criterion][1]} Reply Yes or No.")}]
