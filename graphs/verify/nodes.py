"""The chat graph's verifiers: thin wrappers that decide whether a turn needs checking, call the
plain judges of this package, and say what to show. Each is a callable
``(state, context) -> Verification | None``; None means the turn had nothing to check (no code,
no options), so such turns pay only a regex.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

from graphs.chat import Verification
from graphs.prompt import turn_prompt
from graphs.verify import prompts
from graphs.verify.choices import find_code, find_options
from graphs.verify.codejudge import CodeTask, CodeVerdict, JudgeConfig, judge_code
from graphs.verify.consistency import Comparator, SetJudgements, merge_sort


def _rank(verdict: CodeVerdict) -> float:
    return -1.0 if verdict.score is None else verdict.score


@dataclass(frozen=True)
class CodeCheck:
    """CodeJudge on answers that contain code: judge against the user's request; on a No,
    regenerate once with the analysis as feedback, judge again, and keep the better answer.
    A judge the model's card does not trust (``unreliable`` says why) is shown, never acted on."""

    mode: str = "binary"  # binary or graded
    budget_s: float = 60.0  # for the whole check, revision included
    config: JudgeConfig = JudgeConfig()
    unreliable: str | None = None

    def __call__(self, state, ctx) -> Verification | None:
        reply = state["reply"]
        found = find_code(reply["text"])
        if found is None:
            return None
        request = state["messages"][-1]["content"]
        start = time.monotonic()
        _status(ctx, f"checking the code ({self.mode} CodeJudge, up to {self.budget_s:.0f} s)")
        first = self._judge(ctx.backend, request, found, start)
        verdict = {**first.model_dump(), "revised": False, "kept": "original"}
        if self.unreliable is not None:
            return Verification({**verdict, "reliability": f"unreliable judge: {self.unreliable}"})
        if first.result != "no" or self._left(start) <= 0:
            return Verification(verdict)
        # One revision, told what the analysis found.
        _status(ctx, "the check said No: writing a revised answer")
        conversation = [*turn_prompt(state, ctx)[0], {"role": "assistant", "content": reply["text"]},
                        prompts.revise(first.analysis)]
        options = replace(ctx.options, max_time_s=self._left(start))
        again = ctx.backend.generate(conversation, options)
        found_again = find_code(again.text)
        second = self._judge(ctx.backend, request, found_again, start) if found_again and self._left(start) > 0 else None
        verdict |= {"revised": True, "second": None if second is None else second.model_dump(include={"result", "score", "analysis"})}
        if second is None or _rank(second) <= _rank(first):
            return Verification(verdict)
        kept = {**reply, "text": again.text, "completion_tokens": reply["completion_tokens"] + again.completion_tokens,
                "finish_reason": again.finish_reason}
        verdict |= {"kept": "revised", "result": second.result, "score": second.score}
        return Verification(verdict, kept)

    def _left(self, start: float) -> float:
        return self.budget_s - (time.monotonic() - start)

    def _judge(self, backend, request: str, found, start: float) -> CodeVerdict:
        code, language = found
        config = replace(self.config, budget_s=self._left(start))
        return judge_code(backend, CodeTask(request, code, language), self.mode, config)


@dataclass(frozen=True)
class ChoiceCheck:
    """When the user asks to choose between or rank options the message lists, ask the
    comparator about every pair in both orders and with the negated question. If those
    verdicts disagree, the verdict is ``inconsistent`` and the reply says it is unsure. On a model
    whose card says its comparator cannot tell (``unavailable`` says why), the verdict says so and
    nothing is computed or changed."""

    max_options: int = 6
    unavailable: str | None = None

    def __call__(self, state, ctx) -> Verification | None:
        found = find_options(state["messages"][-1]["content"], self.max_options)
        if found is None:
            return None
        if self.unavailable is not None:
            return Verification({"kind": "choice", "mode": "consistency", "result": "unavailable", "score": None,
                                 "options": found[1], "analysis": f"the choice check is unavailable: {self.unavailable}",
                                 "prompts": prompts.VERSION})
        start = time.monotonic()
        question, options = found
        _status(ctx, f"checking the pick between {len(options)} options for consistency")
        judged = SetJudgements.collect(Comparator(ctx.backend), question, options, prompts.negate(question))
        better, worse = judged.prefers(calibrated=False), judged.prefers(calibrated=False, negated=True)
        n = len(options)
        flips = [[options[i], options[j]] for i in range(n) for j in range(i + 1, n) if better[i][j] == better[j][i]]
        negation = [[options[i], options[j]] for i in range(n) for j in range(n) if i != j and worse[i][j] == better[i][j]]
        order, _ = merge_sort(n, lambda i, j: judged.calibrated(i, j) > 0.5)
        figures = judged.figures(calibrated=False)
        consistent = not flips and not negation and figures["s_tran_3"] == 1.0
        lean = round(judged.calibrated(order[0], order[1]), 4)
        verdict = {
            "kind": "choice", "mode": "consistency", "result": "consistent" if consistent else "inconsistent",
            "score": lean, "options": options, "ranked": [options[i] for i in order],
            "order_flips": flips, "negation_failures": negation, **figures,
            "analysis": _describe(options, order, flips, negation, figures), "latency_s": round(time.monotonic() - start, 3),
            "prompts": prompts.VERSION,
        }
        if consistent:
            return Verification(verdict)
        reply = state["reply"]
        caution = (f"I am not confident in a pick here: {verdict['analysis']} On balance I lean towards "
                   f"{options[order[0]]} (P = {lean:.2f}), but treat that as uncertain. My first answer was:\n\n")
        return Verification(verdict, {**reply, "text": caution + reply["text"]})


def _status(ctx, text: str) -> None:
    if ctx.on_status is not None:
        ctx.on_status(text)


def _describe(options, order, flips, negation, figures) -> str:
    if not flips and not negation and figures["s_tran_3"] == 1.0:
        return f"my comparisons agree in both orders and when asked which is worse; ranked: {', '.join(options[i] for i in order)}."
    problems = []
    if flips:
        problems.append(f"my verdict changes with the order of presentation for {len(flips)} pair(s)")
    if negation:
        problems.append(f"asking which is worse does not flip it for {len(negation)} ordered pair(s)")
    if figures["s_tran_3"] < 1.0:
        problems.append("my preferences go round in a circle")
    return "; ".join(problems) + "."
