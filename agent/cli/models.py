"""`reverie models list | show V | promote V | rollback [V] | diff V1 V2 | prune`."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from agent.cli.app import app, err, open_agent, out, print_json, styled

models_app = typer.Typer(help="Model versions: list, inspect, promote, roll back, compare, prune.",
                         no_args_is_help=True)
app.add_typer(models_app, name="models")


@models_app.command("list")
def list_(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help='Print {"active": ID, "versions": [...]}.'),
) -> None:
    """Every version of the configured base model; * marks the one being served."""
    with open_agent(ctx) as bot:
        versions, active = bot.models(), bot.active_model()
    if as_json:
        print_json({"active": active.id, "versions": versions})
        return
    table = Table("", "id", "parent", "learner", "created", "gate", "weights", box=None, header_style="bold")
    for v in versions:
        gate = ("passed" if v.manifest["gate"]["passed"] else "refused") if "gate" in v.manifest else ""
        weights = "pruned" if v.pruned_at else v.path
        table.add_row("*" if v.id == active.id else "", v.id, v.parent or "", v.learner or "",
                      v.created_at[:16].replace("T", " "), gate, weights)
    out.print(table)


@models_app.command()
def show(
    ctx: typer.Context,
    version: str = typer.Argument(..., help="A version id, e.g. v3 or base."),
    as_json: bool = typer.Option(False, "--json", help="Print the ModelVersion."),
) -> None:
    """A version's manifest: parent, learner settings, what it consumed, its figures and gate."""
    with open_agent(ctx) as bot:
        found = bot.model(version)
    if as_json:
        print_json(found)
        return
    out.print(styled(found.id, "bold"), f"  parent {found.parent or '-'}  base {found.base_model}", sep="")
    out.print(f"created {found.created_at}  weights {'pruned ' + found.pruned_at if found.pruned_at else found.path}")
    out.print(json.dumps(found.manifest, indent=2, sort_keys=True), markup=False)


@models_app.command()
def promote(
    ctx: typer.Context,
    version: str = typer.Argument(..., help="The version to serve."),
    reason: str = typer.Option(None, "--reason", help="Why, for the history."),
    as_json: bool = typer.Option(False, "--json", help="Print the ModelVersion now served."),
) -> None:
    """Serve a version from the next turn on, in every process using this home."""
    with open_agent(ctx) as bot:
        served = bot.promote(version, reason)
    print_json(served) if as_json else err.print(f"now serving {served.id}")


@models_app.command()
def rollback(
    ctx: typer.Context,
    version: str = typer.Argument(None, help="The version to go back to (default: the active one's parent)."),
    reason: str = typer.Option(None, "--reason", help="Why, for the history."),
    as_json: bool = typer.Option(False, "--json", help="Print the ModelVersion now served."),
) -> None:
    """Go back to an earlier version."""
    with open_agent(ctx) as bot:
        served = bot.rollback(version, reason)
    print_json(served) if as_json else err.print(f"now serving {served.id}")


@models_app.command()
def diff(
    ctx: typer.Context,
    a: str = typer.Argument(..., help="One version."),
    b: str = typer.Argument(..., help="Another."),
    as_json: bool = typer.Option(False, "--json", help='Print {"a", "b", "changed": {key: {"a", "b"}}}.'),
) -> None:
    """What differs between two versions' manifests."""
    with open_agent(ctx) as bot:
        changes = bot.diff(a, b)
    if as_json:
        print_json(changes)
        return
    table = Table("key", a, b, box=None, header_style="bold")
    for key, sides in changes["changed"].items():
        table.add_row(key, json.dumps(sides["a"]), json.dumps(sides["b"]))
    out.print(table if changes["changed"] else "no differences")


@models_app.command()
def prune(
    ctx: typer.Context,
    keep: int = typer.Option(None, "--keep", min=0, help="Versions to keep besides the active one, its parent "
                                                         "and the base (default: the keep_versions setting)."),
    as_json: bool = typer.Option(False, "--json", help='Print {"pruned": [...]}.'),
) -> None:
    """Delete the weights of old versions; their records stay."""
    with open_agent(ctx) as bot:
        removed = bot.prune(bot.settings.keep_versions if keep is None else keep)
    print_json({"pruned": removed}) if as_json else err.print(f"pruned {', '.join(removed) or 'nothing'}")


@models_app.command()
def card(
    ctx: typer.Context,
    model: str = typer.Option(None, "--model", help="A model spec (default: the configured model)."),
    refresh: bool = typer.Option(False, "--refresh", help="Measure again, even when a card is cached."),
    as_json: bool = typer.Option(False, "--json", help="Print the Card."),
) -> None:
    """How far this model's judges can be trusted: measured once (minutes), then cached."""
    from agent.progress import shown

    with open_agent(ctx) as bot:
        with shown(err, disable=as_json) as progress:
            found = bot.card(model, refresh=refresh, progress=progress)
        modes = bot.judge_modes() if found.model == bot.settings.model else None
    if as_json:
        print_json(found)
        return
    f = found.figures
    table = Table("judge", "measured on", "figures", box=None, header_style="bold",
                  title=f"card of {found.model}, measured {found.measured_at} ({f['seconds']:.0f} s)")
    for mode in ("binary", "graded"):
        c = f["codejudge"][mode]
        table.add_row(f"CodeJudge {mode}", f"{c['items']} programs with test results",
                      f"tau-b {_figure(c['kendall_tau'])} · accuracy {_figure(c['accuracy'])} · "
                      f"invalid {_figure(c['invalid_rate'])} · {c['s_per_item']} s each")
    for view in ("raw", "calibrated"):
        c = f["comparator"][view]
        table.add_row(f"comparator, {view}", "ranked sets with a true order",
                      " · ".join(f"{k} {_figure(c[k])}" for k in ("s_comm", "s_neg", "s_tran_3", "agreement")))
    c = f["committee"]
    table.add_row("cleaning committee", f"{c['pairs']} labelled pairs",
                  f"prefers the better answer {_figure(c['accuracy'])} · abstained {c['abstained']}")
    table.add_row("in-context QA", f"{f['qa']['questions']} held-out questions", f"contains {_figure(f['qa']['contains'])}")
    out.print(table)
    if modes is not None:
        print_modes(modes.model_dump())


def print_modes(modes: dict) -> None:
    """The modes the card set, one line each, with the reason."""
    out.print(f"judges (card {modes['card'] or 'not measured yet'}):")
    for name in ("cleaning", "code_check", "choice_check"):
        out.print(f"  {name.replace('_', ' ')}: {modes[name]['value']} · {modes[name]['reason']}", markup=False)


def _figure(value) -> str:
    return "-" if value is None else f"{value:.2f}"
