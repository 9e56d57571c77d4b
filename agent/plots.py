"""Pictures people would rather look at than read: retention over nights, as PNG (matplotlib, Agg)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed, none assumed
    import matplotlib.pyplot as plt

    return plt


def _whole_numbers(ax, xs) -> None:
    """Nights and runs are counted: integer ticks, and room around a single point."""
    xs = sorted(set(xs)) or [0]
    ax.set_xticks(range(min(xs), max(xs) + 1, max(1, (max(xs) - min(xs)) // 10 + 1)))
    ax.set_xlim(min(xs) - 0.5, max(xs) + 0.5)


def draw_by_age(ax, by_age: list[dict[str, Any]]) -> None:
    """Mean probe "contains" and QA-F1 by age in nights (0 = the night it was learned)."""
    ages = [p["age"] for p in by_age]
    ax.plot(ages, [p["contains"] for p in by_age], marker="o", color="#4c72b0", label='"contains"')
    ax.plot(ages, [p["f1"] for p in by_age], marker="^", color="#55a868", label="QA-F1")
    for p in by_age:
        ax.annotate(f"n={p['experiences']}", (p["age"], p["contains"]), textcoords="offset points", xytext=(0, 6),
                    ha="center", fontsize=7, color="#555555")
    _whole_numbers(ax, ages)
    ax.set_xlabel("age in nights (0 = efficacy, later = retention)")
    ax.set_ylabel("probe score, no recall")
    ax.set_ylim(0, 1.05)
    ax.set_title("efficacy and retention by age")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right")


def draw_refines(reward_ax, kl_ax, refines: list[dict[str, Any]]) -> None:
    """Each refine's pioneer reward and KL to the base per CORY iteration."""
    for refine in refines:
        steps = [row["iteration"] for row in refine["curve"]]
        label = f"{refine['version']} ({refine['user']}{'' if refine['promoted'] else ', refused'})"
        reward_ax.plot(steps, [row["reward"] for row in refine["curve"]], marker=".", label=label)
        kl_ax.plot(steps, [row["kl"] for row in refine["curve"]], marker=".", label=label)
    for ax, what in ((reward_ax, "task reward (pioneer)"), (kl_ax, "KL to the base per reply")):
        ax.set_xlabel("CORY iteration")
        ax.set_title(f"refined policies: {what}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)


def plot_retention(report: dict[str, Any], path: Path) -> Path:
    """Two panels: each experience's probe score after every learn run, and the curves by age; and
    when policies were refined, a row of their reward and KL curves."""
    plt = _pyplot()
    refines = report.get("refines") or []
    fig, axes = plt.subplots(2 if refines else 1, 2, figsize=(12, 9 if refines else 4.5), squeeze=False)
    (left, right) = axes[0]
    if refines:
        draw_refines(*axes[1], refines)
    runs = [r["id"] for r in report["runs"]]
    promoted = {r["id"] for r in report["runs"] if r["promoted"]}
    for experience in sorted({p["experience_id"] for p in report["points"]}):
        points = [p for p in report["points"] if p["experience_id"] == experience]
        xs = [runs.index(p["run_id"]) + 1 for p in points]
        line, = left.plot(xs, [p["contains"] for p in points], alpha=0.55, linewidth=1)
        left.scatter([x for x, p in zip(xs, points) if p["run_id"] in promoted],
                     [p["contains"] for p in points if p["run_id"] in promoted], s=14, color=line.get_color())
    for i, run in enumerate(report["runs"], start=1):
        if not run["promoted"]:
            left.axvspan(i - 0.4, i + 0.4, color="#dd8452", alpha=0.12, linewidth=0)
    _whole_numbers(left, range(1, len(runs) + 1))
    left.set_xlabel("learn run (shaded: refused by the gate; dots: promoted)")
    left.set_ylabel('probe "contains", no recall')
    left.set_ylim(-0.05, 1.05)
    left.set_title("each experience over the nights")
    left.grid(alpha=0.3)
    draw_by_age(right, report["by_age"])
    fig.suptitle(f"retention of {report['base_model']}")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
