"""`reverie serve`, `reverie status` and `reverie jobs list | show`: the long-running assistant."""

from __future__ import annotations

import json
import logging
import os
import signal
from datetime import datetime, timezone

import typer
from rich.table import Table

from agent.cli.app import app, err, open_agent, out, print_json
from agent.cli.models import print_modes
from agent.errors import InvalidInput

LOOPBACK = ("127.0.0.1", "localhost", "::1")
SERVER_FILE = "serve.json"  # in the home while a server runs on it: its address and pid

jobs_app = typer.Typer(help="The nights the server ran or will run.", no_args_is_help=True)
app.add_typer(jobs_app, name="jobs")


@app.command()
def serve(
    ctx: typer.Context,
    host: str = typer.Option(None, "--host", help="Address to bind (default 127.0.0.1; others need API keys)."),
    port: int = typer.Option(None, "--port", min=1, max=65535, help="Port (default 8321)."),
    schedule: str = typer.Option(None, "--schedule", help='When nights run: 5-field cron, UTC (default "0 3 * * *").'),
    no_schedule: bool = typer.Option(False, "--no-schedule", help="No scheduled nights (POST /v1/learn still runs one)."),
) -> None:
    """Serve the OpenAI-compatible API and run nights on a schedule, until SIGTERM or Ctrl-C."""
    import uvicorn

    from agent.daemon import Daemon, cron_trigger
    from agent.facade import Agent
    from agent.server import create_app
    from agent.server_auth import load_keys

    obj = ctx.find_root().obj
    flags = {k: v for k, v in (("serve.host", host), ("serve.port", port), ("serve.schedule", schedule)) if v is not None}
    overrides = {**obj["overrides"], **flags}
    with Agent.open(obj["home"], **overrides) as agent:
        s = agent.settings.serve
        if s.host not in LOOPBACK and not load_keys(s.keys_file):
            raise InvalidInput(f"binding {s.host} without API keys is refused: set REVERIE_API_KEYS=KEY:USER[:admin] "
                               "or serve.keys_file, or bind 127.0.0.1")
        cron = None if no_schedule or not s.schedule.strip() else s.schedule
        if cron:
            cron_trigger(cron)  # a bad schedule is one line, before anything starts
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
        err.print(f"loading {agent.settings.model} ...")
        agent.on_model_thread(lambda: agent.backend)  # the first request should not wait for it
        daemon = Daemon(agent, {k: v for k, v in overrides.items() if v is not None}, cron, s.misfire_grace_s,
                        nice=s.night_nice, threads=s.night_threads,
                        idle=(s.idle_min_new, s.idle_quiet_min * 60) if s.idle_min_new else None)
        server = uvicorn.Server(uvicorn.Config(create_app(agent, daemon), host=s.host, port=s.port, log_level="info"))
        marker = agent.settings.home / SERVER_FILE
        daemon.start()
        try:
            marker.write_text(json.dumps({"pid": os.getpid(), "url": f"http://{s.host}:{s.port}/v1",
                                          "started_at": datetime.now(timezone.utc).isoformat()}))
            err.print(f"serving {agent.active_model().id} on http://{s.host}:{s.port}/v1; "
                      + (f"nights at {cron} (UTC), next {daemon.next_run()}" if cron else "no nights scheduled"))
            # uvicorn answers the requests in flight after SIGINT/SIGTERM, then raises the signal
            # again for the handler it found: ours, so that the clean-up below runs and we exit 0.
            signal.signal(signal.SIGINT, _stop)
            signal.signal(signal.SIGTERM, _stop)
            server.run()
        except _Stopped:
            err.print("stopped")
        finally:
            daemon.stop()
            marker.unlink(missing_ok=True)


class _Stopped(Exception):
    pass


def _stop(*_) -> None:
    raise _Stopped


def running_server(home) -> dict | None:
    """The server running on ``home``, if its marker names a live process."""
    try:
        marker = json.loads((home / SERVER_FILE).read_text())
        os.kill(marker["pid"], 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return marker


@app.command()
def status(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print the status object."),
) -> None:
    """The version served, its adapters, the next night, the last night, and the running server."""
    from agent.server import status_of

    with open_agent(ctx) as bot:
        report = {**status_of(bot, None), "server": running_server(bot.settings.home)}
    if as_json:
        print_json(report)
        return
    out.print(f"serving {report['active_version']} of {report['base_model']}, adapters: "
              f"{', '.join(report['adapters']) or 'none'}")
    out.print(f"next night: {report['next_night'] or 'none scheduled'}")
    last = report["last_night"]
    out.print("last night: " + ("none yet" if last is None else f"job {last['job']}, finished {last['finished_at']}"))
    server = report["server"]
    out.print(f"server: {server['url']} (pid {server['pid']})" if server else "server: none running on this home")
    print_modes(report["judges"])


@jobs_app.command("list")
def list_(
    ctx: typer.Context,
    limit: int = typer.Option(20, "-n", min=1, help="The most recent N."),
    as_json: bool = typer.Option(False, "--json", help='Print {"jobs": [...]}.'),
) -> None:
    """The most recent runs, newest first."""
    from memory.jobs import Jobs

    with open_agent(ctx) as bot:
        found = Jobs(bot.store).list(limit)
    if as_json:
        print_json({"jobs": found})
        return
    table = Table("job", "kind", "trigger", "for", "attempt", "status", "started", "finished", box=None,
                  header_style="bold")
    for j in found:
        table.add_row(str(j.id), j.kind, j.trigger, j.run_key, str(j.attempt), j.status, (j.started_at or "-")[:19],
                      (j.finished_at or "-")[:19])
    out.print(table if found else "no jobs yet: `reverie serve` runs nights on a schedule")


@jobs_app.command()
def show(
    ctx: typer.Context,
    job_id: int = typer.Argument(..., min=1),
    as_json: bool = typer.Option(False, "--json", help="Print the Job."),
) -> None:
    """One run: its status, times, error, and what each user's night did."""
    from memory.jobs import Jobs

    with open_agent(ctx) as bot:
        job = Jobs(bot.store).get(job_id)
    if as_json:
        print_json(job)
        return
    out.print(f"job {job.id}: {job.kind} ({job.trigger} {job.run_key}, attempt {job.attempt}): {job.status}")
    if job.error:
        out.print(f"error: {job.error}")
    for user, report in ((job.report or {}).get("users") or {}).items():
        out.print(f"{user}: version {report.get('version') or '-'}, promoted {report.get('promoted')}, "
                  f"new {report.get('new')}, {report.get('stop') or '; '.join(report.get('reasons') or []) or 'ok'}")
