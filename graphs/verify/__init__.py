"""Self-verification: CodeJudge (``codejudge``) and the logical-consistency checks (``consistency``)
as plain functions, with thin verifier wrappers (``nodes``) for the chat graph. Prompts live in
``prompts``, versioned. Nothing is re-exported here, so importing one of them (the prompts, say)
loads no other."""
