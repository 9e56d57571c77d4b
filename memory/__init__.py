"""Persistence: the SQLite experience log, episodic memory in Chroma, and their records.

Imports nothing of ours but the shared error types in ``agent.errors``.
"""

from memory.records import Experience, Feedback, Hit, NewTurn, Thread, Turn
from memory.store import Store

__all__ = ["Experience", "Feedback", "Hit", "NewTurn", "Store", "Thread", "Turn"]
