"""The LangGraph graphs and their nodes: the chat graph (``chat``: recall -> respond -> verify ->
log), the nightly graph (``nightly``: clean -> extract -> select -> prepare -> train -> evaluate
-> gate -> record), feedback cleaning (``cleaning``, ``committee``) and the verifiers
(``verify``). Nodes are plain functions over a typed state; SQL stays in ``memory``."""
