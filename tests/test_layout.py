"""The house rules of ../shared/DESIGN.md, checked: packages import downward only
(memory, agent.llm, learners <- graphs <- agent), through the two shared leaves; no learner
imports another; importing agent loads no torch; no file under agent/ passes 400 lines."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("agent", "memory", "learners", "graphs")
LEAVES = {"agent.errors", "agent.llm.protocol"}
# The algorithms themselves; the rest of learners/ (training, metrics, questions, synthesis,
# evaluate) is what they stand on. ppo.py is both: single-agent PPO's loop, and the components
# (rollout, rewards, GAE, losses, updates) that CORY's own loop is built from.
LEARNERS = {"learners.selfparam", "learners.finetune", "learners.sac", "learners.repair", "learners.cory"}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def ours(path: Path) -> set[str]:
    """Every module of ours that ``path`` imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            # `from agent import chat` imports the module agent.chat
            names = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
        else:
            continue
        found |= {n for n in names if n.split(".")[0] in PACKAGES}
    return found


def allowed(importer: str, imported: str) -> bool:
    if any(imported == leaf or imported.startswith(leaf + ".") for leaf in LEAVES):
        return True
    if importer in LEAVES:
        return False
    layer = importer.split(".")[0] if not importer.startswith("agent.llm") else "agent.llm"
    may = {
        "memory": ("memory",),
        "agent.llm": ("agent.llm",),
        "learners": ("learners",),
        "graphs": ("graphs", "memory", "agent.llm", "learners"),
        "agent": PACKAGES,
    }[layer]
    return any(imported == p or imported.startswith(p + ".") for p in may)


SOURCES = sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_packages_import_downward_only(path):
    importer = module_name(path)
    wrong = sorted(m for m in ours(path) if not allowed(importer, m))
    assert not wrong, f"{importer} may not import {wrong}"


def test_the_rules_catch_an_upward_import():
    # The checker itself: each of these would break the layering.
    assert not allowed("memory.store", "graphs.chat")
    assert not allowed("learners.selfparam", "agent.settings")
    assert not allowed("agent.llm.tiny", "memory.db")
    assert not allowed("graphs.nightly", "agent.learn")
    assert not allowed("agent.errors", "agent.inputs")
    assert allowed("graphs.nightly", "learners.selfparam") and allowed("memory.db", "agent.errors")


def test_no_learner_imports_another():
    for name in LEARNERS:
        path = ROOT / (name.replace(".", "/") + ".py")
        assert not (ours(path) & LEARNERS), f"{name} imports another learner"


def test_importing_agent_loads_no_torch():
    code = ("import sys, agent, agent.cli, agent.settings; from agent import Agent, Reply, LearnReport; "
            "print(sorted(m for m in ('torch', 'transformers', 'langgraph', 'chromadb') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert result.stdout.strip() == "[]"


def test_no_file_under_agent_passes_400_lines():
    long = {str(p.relative_to(ROOT)): n for p in (ROOT / "agent").rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > 400}
    assert not long
