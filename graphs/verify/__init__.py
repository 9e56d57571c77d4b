"""Self-verification: CodeJudge and logical-consistency checks as plain functions, with thin
verifier wrappers (``nodes``) for the chat graph. Prompts live in ``prompts``, versioned."""

from graphs.verify.codejudge import CodeTask, CodeVerdict, JudgeConfig, judge_code
from graphs.verify.consistency import Comparator, ConsistencySet, Ranking, check_sets, rank, read_sets

__all__ = ["CodeTask", "CodeVerdict", "JudgeConfig", "judge_code", "Comparator", "ConsistencySet", "Ranking",
           "check_sets", "rank", "read_sets"]
