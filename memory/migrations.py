"""Schema changes of the experience log, as numbered functions applied in order.

A shipped migration is never edited: a mistake is fixed by a new one. Each runs in its own
transaction and is recorded in ``_migrations``; ``migrate`` runs on every open, so a database
made by any earlier version upgrades in place, rows and all.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

from memory.db import immediate, now, store_error

Migration = Callable[[sqlite3.Connection], None]
MIGRATIONS: list[Migration] = []


def migration(fn: Migration) -> Migration:
    MIGRATIONS.append(fn)
    return fn


@migration
def m001_threads_and_turns(db: sqlite3.Connection) -> None:
    db.execute(
        """CREATE TABLE threads (
            id TEXT PRIMARY KEY,
            user TEXT NOT NULL,
            created_at TEXT NOT NULL
        )"""
    )
    db.execute(
        """CREATE TABLE turns (
            id INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: feedback points at it
            thread_id TEXT NOT NULL REFERENCES threads(id),
            user TEXT NOT NULL,
            role TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
            content TEXT NOT NULL,
            model_version TEXT,
            latency_s REAL,
            prompt_tokens INTEGER,
            completion_tokens INTEGER,
            created_at TEXT NOT NULL
        )"""
    )
    db.execute("CREATE INDEX turns_by_thread ON turns(thread_id, id)")
    db.execute("CREATE INDEX turns_by_user ON turns(user, id)")


@migration
def m002_feedback(db: sqlite3.Connection) -> None:
    db.execute(
        """CREATE TABLE feedback (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            turn_id INTEGER NOT NULL REFERENCES turns(id),
            kind TEXT NOT NULL CHECK (kind IN ('up', 'down', 'correction', 'preference')),
            payload TEXT,  -- JSON: the correction's text, a preference's chosen/rejected pair
            user TEXT NOT NULL,
            created_at TEXT NOT NULL
        )"""
    )
    db.execute("CREATE INDEX feedback_by_turn ON feedback(turn_id)")


@migration
def m003_experiences(db: sqlite3.Connection) -> None:
    db.execute(
        """CREATE TABLE experiences (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            text TEXT NOT NULL,
            source TEXT NOT NULL CHECK (source IN ('taught', 'extracted', 'correction')),
            user TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'short_term'
                CHECK (status IN ('short_term', 'consolidated', 'forgotten')),
            turn_id INTEGER REFERENCES turns(id),  -- the turn it came from, if any
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )"""
    )
    db.execute("CREATE INDEX experiences_by_user ON experiences(user, status)")


@migration
def m004_model_versions_and_jobs(db: sqlite3.Connection) -> None:
    db.execute(
        """CREATE TABLE model_versions (
            id TEXT PRIMARY KEY,
            parent TEXT REFERENCES model_versions(id),
            base_model TEXT NOT NULL,
            path TEXT,
            learner TEXT,
            manifest TEXT,  -- JSON: settings, consumed experiences and feedback, figures, gate
            created_at TEXT NOT NULL
        )"""
    )
    db.execute(
        """CREATE TABLE jobs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            kind TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'queued'
                CHECK (status IN ('queued', 'running', 'done', 'failed')),
            payload TEXT,
            result TEXT,
            error TEXT,
            created_at TEXT NOT NULL,
            started_at TEXT,
            finished_at TEXT
        )"""
    )


@migration
def m005_active_versions(db: sqlite3.Connection) -> None:
    # Which version each base model serves, and every switch (for rollback and the audit trail).
    db.execute("ALTER TABLE model_versions ADD COLUMN pruned_at TEXT")
    db.execute(
        """CREATE TABLE active_versions (
            base_model TEXT PRIMARY KEY,
            version TEXT NOT NULL REFERENCES model_versions(id),
            switched_at TEXT NOT NULL
        )"""
    )
    db.execute(
        """CREATE TABLE version_events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            base_model TEXT NOT NULL,
            version TEXT NOT NULL REFERENCES model_versions(id),
            action TEXT NOT NULL CHECK (action IN ('promote', 'rollback')),
            reason TEXT,
            created_at TEXT NOT NULL
        )"""
    )


@migration
def m006_probes_and_learn_runs(db: sqlite3.Connection) -> None:
    # Probe questions are set aside per experience before anything is trained on it, and are
    # never trained on; every learn run scores them on the version it made (retention over time).
    db.execute(
        """CREATE TABLE probes (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            experience_id INTEGER NOT NULL REFERENCES experiences(id),
            question TEXT NOT NULL,
            answers TEXT NOT NULL,  -- JSON list of acceptable short answers
            kind TEXT NOT NULL CHECK (kind IN ('recall', 'near_miss')),
            origin TEXT NOT NULL CHECK (origin IN ('given', 'synthesized')),
            created_at TEXT NOT NULL
        )"""
    )
    db.execute("CREATE INDEX probes_by_experience ON probes(experience_id)")
    db.execute(
        """CREATE TABLE learn_runs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            base_model TEXT NOT NULL,
            parent TEXT NOT NULL REFERENCES model_versions(id),  -- active when the run started
            version TEXT REFERENCES model_versions(id),  -- the candidate it made, if any
            promoted INTEGER NOT NULL DEFAULT 0,
            report TEXT,  -- JSON: what Agent.learn returned
            started_at TEXT NOT NULL,
            finished_at TEXT
        )"""
    )
    db.execute(
        """CREATE TABLE trained_on (
            run_id INTEGER NOT NULL REFERENCES learn_runs(id),
            experience_id INTEGER NOT NULL REFERENCES experiences(id),
            role TEXT NOT NULL CHECK (role IN ('new', 'rehearsed')),
            PRIMARY KEY (run_id, experience_id)
        )"""
    )
    db.execute(
        """CREATE TABLE probe_results (
            run_id INTEGER NOT NULL REFERENCES learn_runs(id),
            probe_id INTEGER NOT NULL REFERENCES probes(id),
            version TEXT NOT NULL REFERENCES model_versions(id),
            answer TEXT NOT NULL,
            contains REAL NOT NULL,
            f1 REAL NOT NULL,
            created_at TEXT NOT NULL,
            PRIMARY KEY (run_id, probe_id, version)
        )"""
    )
    # Recall asks every turn whether the served version was scored again (one lookup on the first
    # index); only then is its latest result per probe read again (the second).
    db.execute("CREATE INDEX probe_results_latest_run ON probe_results(version, run_id)")
    db.execute("CREATE INDEX probe_results_by_probe ON probe_results(version, probe_id, run_id)")
    db.execute(
        """CREATE TABLE training_pairs (  -- an experience's target-set pairs, reused when rehearsed
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            experience_id INTEGER NOT NULL REFERENCES experiences(id),
            question TEXT NOT NULL,
            answer TEXT NOT NULL,
            recited INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL
        )"""
    )
    db.execute("CREATE INDEX training_pairs_by_experience ON training_pairs(experience_id)")
    db.execute(
        """CREATE TABLE general_results (  -- general ability of a version, measured once
            version TEXT PRIMARY KEY REFERENCES model_versions(id),
            figures TEXT NOT NULL,  -- JSON: general-question contains, chat-text perplexity
            created_at TEXT NOT NULL
        )"""
    )


@migration
def m007_turn_verdicts(db: sqlite3.Connection) -> None:
    # What the verifiers (CodeJudge, the consistency check) said about an assistant turn: a JSON
    # list of verdicts, stored with the turn it judges. NULL on turns from before verification.
    db.execute("ALTER TABLE turns ADD COLUMN verdicts TEXT")


@migration
def m008_feedback_sources_and_cleaning(db: sqlite3.Connection) -> None:
    # Feedback may now come without a turn (imported preference datasets), as a free-text
    # comment, and from a named source (a rater, a file); it becomes append-only, enforced here.
    db.execute(
        """CREATE TABLE feedback_v2 (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            turn_id INTEGER REFERENCES turns(id),  -- NULL for imported preference pairs
            kind TEXT NOT NULL CHECK (kind IN ('up', 'down', 'correction', 'preference', 'comment')),
            payload TEXT,  -- JSON: text; a preference's prompt (messages), chosen and rejected
            user TEXT NOT NULL,
            source TEXT NOT NULL DEFAULT 'user',  -- who gave it: 'user', or the rater / file of an import
            created_at TEXT NOT NULL
        )"""
    )
    db.execute("""INSERT INTO feedback_v2 (id, turn_id, kind, payload, user, source, created_at)
                  SELECT id, turn_id, kind, payload, user, 'user', created_at FROM feedback""")
    # Ids are never reused, even those of rows gone before this migration: carry the counter over.
    issued = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'feedback'").fetchone()
    db.execute("DROP TABLE feedback")
    db.execute("ALTER TABLE feedback_v2 RENAME TO feedback")
    if issued is not None:
        db.execute("UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE name = 'feedback'", (issued[0],))
    db.execute("CREATE INDEX feedback_by_turn ON feedback(turn_id)")
    for event in ("UPDATE", "DELETE"):
        db.execute(f"""CREATE TRIGGER feedback_append_only_{event.lower()} BEFORE {event} ON feedback
                       BEGIN SELECT RAISE(ABORT, 'feedback is append-only'); END""")
    # Cleaning: each run is one version of the cleaned view; committee votes are cached.
    db.execute(
        """CREATE TABLE cleaning_runs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            method TEXT NOT NULL,
            committee TEXT NOT NULL,  -- JSON: the members, so a view says who judged it
            upto_feedback_id INTEGER NOT NULL,  -- the view covers feedback ids up to this one
            counts TEXT NOT NULL,  -- JSON: kept / flipped / removed
            created_at TEXT NOT NULL
        )"""
    )
    db.execute(
        """CREATE TABLE cleaning_decisions (
            run_id INTEGER NOT NULL REFERENCES cleaning_runs(id),
            feedback_id INTEGER NOT NULL REFERENCES feedback(id),
            action TEXT NOT NULL CHECK (action IN ('keep', 'flip', 'remove')),
            bin TEXT,  -- the agreement bin, when the item was judged
            category TEXT NOT NULL,  -- the likely source of unreliability (SAC's categories)
            reason TEXT NOT NULL,
            votes TEXT NOT NULL,  -- JSON: each member's vote
            PRIMARY KEY (run_id, feedback_id)
        )"""
    )
    db.execute(
        """CREATE TABLE committee_cache (
            member TEXT NOT NULL,  -- a member's identity: its kind, model and criterion
            item TEXT NOT NULL,  -- sha256 of what it judged
            vote TEXT NOT NULL,  -- JSON
            PRIMARY KEY (member, item)
        )"""
    )


@migration
def m009_learn_run_status(db: sqlite3.Connection) -> None:
    # A run is "running" until it finishes or is found abandoned: a process killed in a night's
    # last steps left finished_at NULL forever, and one killed right after promoting left its run
    # "not promoted". Rows left unfinished before this migration are such runs.
    db.execute("ALTER TABLE learn_runs ADD COLUMN status TEXT NOT NULL DEFAULT 'finished'")
    db.execute("UPDATE learn_runs SET status = 'running' WHERE finished_at IS NULL")


@migration
def m010_jobs_with_leases(db: sqlite3.Connection) -> None:
    # m004's jobs table was never written to; the scheduler's runs need other states, a lease
    # (a run claims its row before it starts, and one found running with an expired lease was
    # abandoned) and a key that makes each scheduled run exactly once across processes.
    db.execute("DROP TABLE jobs")
    db.execute(
        """CREATE TABLE jobs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            kind TEXT NOT NULL,                  -- 'learn'
            trigger TEXT NOT NULL,               -- 'schedule', 'manual' or 'retry'
            run_key TEXT NOT NULL,               -- the scheduled time, or a manual request's id
            attempt INTEGER NOT NULL DEFAULT 1,  -- 2: the one retry of an interrupted run
            status TEXT NOT NULL CHECK (status IN ('scheduled', 'running', 'succeeded', 'failed', 'interrupted')),
            owner TEXT,                          -- the process holding the lease
            lease_until TEXT,
            report TEXT,                         -- JSON: what the run did (per user, the learn report)
            error TEXT,
            created_at TEXT NOT NULL,
            started_at TEXT,
            finished_at TEXT,
            UNIQUE (kind, run_key, attempt)
        )"""
    )



@migration
def m011_refused_training(db: sqlite3.Connection) -> None:
    # A night records what its refused adapters trained on too: how many nights an experience
    # failed decides whether it gets an adapter of its own, and when it is left to recall.
    db.execute("ALTER TABLE trained_on RENAME TO trained_on_m006")
    db.execute(
        """CREATE TABLE trained_on (
            run_id INTEGER NOT NULL REFERENCES learn_runs(id),
            experience_id INTEGER NOT NULL REFERENCES experiences(id),
            role TEXT NOT NULL CHECK (role IN ('new', 'rehearsed', 'refused')),
            PRIMARY KEY (run_id, experience_id)
        )"""
    )
    db.execute("INSERT INTO trained_on SELECT * FROM trained_on_m006")
    db.execute("DROP TABLE trained_on_m006")


@migration
def m012_cleaning_modes(db: sqlite3.Connection) -> None:
    # A committee whose accuracy was not measured high enough only audits: the run records what it
    # would have done (``proposed``) and changes no label. Runs before this one all applied.
    db.execute("ALTER TABLE cleaning_runs ADD COLUMN mode TEXT NOT NULL DEFAULT 'clean' CHECK (mode IN ('clean', 'audit'))")
    db.execute("ALTER TABLE cleaning_runs ADD COLUMN mode_reason TEXT")
    db.execute("ALTER TABLE cleaning_decisions ADD COLUMN proposed TEXT CHECK (proposed IN ('keep', 'flip', 'remove'))")


@migration
def m013_catalogues(db: sqlite3.Connection) -> None:
    # A catalogue is data the user brings (films, books, products) for the recommendation agent.
    # Its Chroma index lives in ``folder`` under the home's catalogues/: a re-import builds a new
    # folder and switches this row to it, so a half-built index is never the one served.
    db.execute(
        """CREATE TABLE catalogues (
            name TEXT PRIMARY KEY,
            folder TEXT NOT NULL,
            source TEXT,  -- the file it was imported from
            items INTEGER NOT NULL,
            fields TEXT NOT NULL,  -- JSON: the metadata fields its items carry, besides id and title
            created_at TEXT NOT NULL
        )"""
    )
    db.execute(
        """CREATE TABLE catalogue_items (
            catalogue TEXT NOT NULL REFERENCES catalogues(name) ON DELETE CASCADE,
            id TEXT NOT NULL,
            position INTEGER NOT NULL,  -- its line in the imported file: the index's key
            title TEXT NOT NULL,
            fields TEXT NOT NULL,  -- JSON: every other field of the line
            PRIMARY KEY (catalogue, id)
        )"""
    )
    db.execute("CREATE UNIQUE INDEX catalogue_items_by_position ON catalogue_items(catalogue, position)")


@migration
def m014_tastes_read(db: sqlite3.Connection) -> None:
    # A user's consolidated tastes, read from their adapters by likelihood (graphs.taste) at the end
    # of the night that made them, so a recommendation does not pay the reading. ``key`` names what
    # was read: the base model, the adapters, what they were compared with, the catalogue and its
    # import; forgetting one of the user's experiences deletes the user's rows.
    db.execute(
        """CREATE TABLE tastes_read (
            user TEXT NOT NULL,
            key TEXT NOT NULL,  -- JSON: [base model, adapters, compared with, catalogue, its created_at]
            catalogue TEXT NOT NULL,
            tastes TEXT NOT NULL,  -- JSON: [{"field", "value", "z"}], best first
            created_at TEXT NOT NULL,
            PRIMARY KEY (user, key)
        )"""
    )


def applied(db: sqlite3.Connection) -> set[str]:
    db.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
    return {row[0] for row in db.execute("SELECT name FROM _migrations")}


def migrate(db: sqlite3.Connection, path: Path | str, upto: int | None = None) -> list[str]:
    """Apply the migrations not yet recorded (the first ``upto`` of them, for tests)."""
    todo = MIGRATIONS if upto is None else MIGRATIONS[:upto]
    try:
        done = applied(db)
    except sqlite3.Error as exc:
        raise store_error(exc, path) from exc
    ran = []
    for step in todo:
        if step.__name__ in done:
            continue
        with immediate(db, path):
            # Another process may have applied it while we waited for the write lock.
            if db.execute("SELECT 1 FROM _migrations WHERE name = ?", (step.__name__,)).fetchone():
                continue
            step(db)
            db.execute("INSERT INTO _migrations VALUES (?, ?)", (step.__name__, now()))
        ran.append(step.__name__)
    return ran
