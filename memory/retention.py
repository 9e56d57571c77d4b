"""Probes, learn runs and their scores: what the weights hold, per experience and version, over time.

Each learn run (a "night") is recorded with the version it started from and the candidate it
made. Probe results are scored on the candidate, so a refused candidate's figures stay on record
too. An experience's age at a run is the number of runs of its base model since the run that
first trained on it (0 = the night it was learned: efficacy; later nights: retention).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from memory.db import now
from memory.records import LearnRun, Probe, ProbeKind, ProbeResult
from memory.store import Store


class Retention:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._held: dict[str, tuple[int | None, set[int]]] = {}  # version -> (its latest run, held set)

    # -- probes ----------------------------------------------------------------------------

    def add_probes(
        self, experience_id: int, probes: Iterable[tuple[str, Sequence[str], ProbeKind]], origin: str
    ) -> list[Probe]:
        stamp = now()
        with self.store.transaction() as db:
            ids = [
                db.execute(
                    "INSERT INTO probes (experience_id, question, answers, kind, origin, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (experience_id, question, json.dumps(list(answers)), kind, origin, stamp),
                ).lastrowid
                for question, answers, kind in probes
            ]
        return [p for p in self.probes([experience_id]) if p.id in ids]

    def probes(self, experience_ids: Iterable[int] | None = None) -> list[Probe]:
        if experience_ids is None:
            rows = self.store.query("SELECT * FROM probes ORDER BY id")
        else:
            ids = list(experience_ids)
            rows = self.store.query(
                f"SELECT * FROM probes WHERE experience_id IN ({', '.join('?' * len(ids))}) ORDER BY id", ids
            )
        return [Probe(**{**r, "answers": json.loads(r["answers"])}) for r in rows]

    # -- training pairs --------------------------------------------------------------------

    def add_pairs(self, experience_id: int, pairs: Iterable[tuple[str, str, bool]]) -> None:
        """Store (question, answer, recited) training pairs; a probe question is refused here too."""
        pairs = list(pairs)
        probe_questions = {p.question for p in self.probes([experience_id])}
        leaked = [q for q, _, _ in pairs if q in probe_questions]
        if leaked:
            raise ValueError(f"probe question would be trained on: {leaked[0]!r}")
        stamp = now()
        with self.store.transaction() as db:
            db.executemany(
                "INSERT INTO training_pairs (experience_id, question, answer, recited, created_at) VALUES (?, ?, ?, ?, ?)",
                [(experience_id, q, a, int(r), stamp) for q, a, r in pairs],
            )

    def pairs(self, experience_ids: Iterable[int]) -> dict[int, list[tuple[str, str, bool]]]:
        ids = list(experience_ids)
        rows = self.store.query(
            f"SELECT * FROM training_pairs WHERE experience_id IN ({', '.join('?' * len(ids))}) ORDER BY id", ids
        )
        out: dict[int, list[tuple[str, str, bool]]] = {i: [] for i in ids}
        for r in rows:
            out[r["experience_id"]].append((r["question"], r["answer"], bool(r["recited"])))
        return out

    # -- runs ------------------------------------------------------------------------------

    def start_run(self, base_model: str, parent: str) -> int:
        with self.store.transaction() as db:
            return db.execute(
                "INSERT INTO learn_runs (base_model, parent, started_at, status) VALUES (?, ?, ?, 'running')",
                (base_model, parent, now()),
            ).lastrowid

    def record_trained(self, run_id: int, roles: Mapping[int, str]) -> None:
        """What a run trained on: "new" (into a kept adapter) or "refused" (its adapter was refused)."""
        with self.store.transaction() as db:
            db.executemany("INSERT INTO trained_on VALUES (?, ?, ?)", [(run_id, e, r) for e, r in roles.items()])

    def refusals(self, base_model: str) -> dict[int, int]:
        """experience id -> how many nights of ``base_model`` trained it into an adapter the gate refused."""
        rows = self.store.query(
            "SELECT experience_id, COUNT(*) AS n FROM trained_on JOIN learn_runs ON learn_runs.id = run_id "
            "WHERE base_model = ? AND role = 'refused' GROUP BY experience_id", (base_model,))
        return {r["experience_id"]: r["n"] for r in rows}

    def record_results(self, run_id: int, version: str, rows: Iterable[tuple[int, str, float, float]]) -> None:
        """Scores of (probe_id, answer, contains, f1) on ``version`` in this run."""
        stamp = now()
        with self.store.transaction() as db:
            db.executemany(
                "INSERT OR REPLACE INTO probe_results VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(run_id, probe_id, version, answer, c, f1, stamp) for probe_id, answer, c, f1 in rows],
            )

    def finish_run(self, run_id: int, version: str | None, promoted: bool, report: dict[str, Any] | None,
                   status: str = "finished") -> None:
        with self.store.transaction() as db:
            db.execute(
                "UPDATE learn_runs SET version = ?, promoted = ?, report = ?, finished_at = ?, status = ? WHERE id = ?",
                (version, int(promoted), json.dumps(report) if report is not None else None, now(), status, run_id),
            )

    def unfinished(self) -> list[int]:
        """Runs still marked running: in progress in some process, or left by one that died."""
        return [r["id"] for r in self.store.query("SELECT id FROM learn_runs WHERE status = 'running' ORDER BY id")]

    def reconcile(self, runs: Iterable[int] | None = None) -> list[int]:
        """Finish ``runs`` (default: every run left running), stopped or left by a dead process, from
        what each left behind: the version it recorded (its manifest names the run), and whether
        that version was promoted (the promote event is written with the switch itself). Call it
        only from the night that owns the run, or while no night runs (the learn lock)."""
        done = []
        for run_id in [r for r in self.unfinished() if runs is None or r in set(runs)]:
            made = self.store.query(
                "SELECT id FROM model_versions WHERE json_extract(manifest, '$.run_id') = ?", (run_id,))
            version = made[0]["id"] if made else None
            promoted = bool(version) and bool(self.store.query(
                "SELECT 1 FROM version_events WHERE version = ? AND action = 'promote'", (version,)))
            self.finish_run(run_id, version, promoted, None, status="interrupted")
            if promoted:
                self.settle_statuses(version)
            done.append(run_id)
        return done

    def settle_statuses(self, version: str) -> tuple[list[int], list[int]]:
        """After ``version`` is promoted: experiences whose probes all pass on it are consolidated;
        consolidated ones that fail now go back to short term (recall answers them again)."""
        held, consolidated, relapsed = self.held_by(version), [], []
        for experience in self.store.list_experiences(statuses=["short_term", "consolidated"]):
            if experience.id in held and experience.status == "short_term":
                self.store.set_experience_status(experience.id, "consolidated")
                consolidated.append(experience.id)
            elif experience.id not in held and experience.status == "consolidated":
                self.store.set_experience_status(experience.id, "short_term")
                relapsed.append(experience.id)
        return consolidated, relapsed

    def runs(self, base_model: str | None = None) -> list[LearnRun]:
        where, params = ("WHERE base_model = ?", (base_model,)) if base_model else ("", ())
        rows = self.store.query(f"SELECT * FROM learn_runs {where} ORDER BY id", params)
        return [LearnRun(**{**r, "promoted": bool(r["promoted"]),
                            "report": json.loads(r["report"]) if r["report"] else None}) for r in rows]

    def results(self, run_id: int | None = None) -> list[ProbeResult]:
        where, params = ("WHERE run_id = ?", (run_id,)) if run_id is not None else ("", ())
        return [ProbeResult(**r) for r in self.store.query(f"SELECT * FROM probe_results {where}", params)]

    def trained_experiences(self, base_model: str, promoted_only: bool = False) -> dict[int, int]:
        """experience id -> the first run of ``base_model`` that trained it into a kept adapter (of a
        promoted version)."""
        rows = self.store.query(
            "SELECT experience_id, MIN(run_id) AS first FROM trained_on JOIN learn_runs ON learn_runs.id = run_id "
            f"WHERE base_model = ? AND role != 'refused' {'AND promoted = 1' if promoted_only else ''} "
            "GROUP BY experience_id",
            (base_model,),
        )
        return {r["experience_id"]: r["first"] for r in rows}

    # -- what a version holds ----------------------------------------------------------------

    def latest_scores(self, version: str) -> dict[int, float]:
        """experience id -> mean recall-probe "contains" on ``version``, each probe's latest score."""
        rows = self.store.query(
            """SELECT p.experience_id AS experience, AVG(r.contains) AS score
               FROM probe_results r JOIN probes p ON p.id = r.probe_id
               WHERE r.version = ? AND p.kind = 'recall'
                 AND r.run_id = (SELECT MAX(run_id) FROM probe_results
                                 WHERE version = r.version AND probe_id = r.probe_id)
               GROUP BY p.experience_id""",
            (version,),
        )
        return {r["experience"]: r["score"] for r in rows}

    def held_by(self, version: str) -> set[int]:
        """Experiences whose latest recall probes on ``version`` all pass: recall may skip them.

        Asked on every chat turn, but it changes only when a night scores ``version``: the set
        is recomputed only then (the check is one index lookup)."""
        latest = self.store.query("SELECT MAX(run_id) AS run FROM probe_results WHERE version = ?", (version,))[0]["run"]
        cached = self._held.get(version)
        if cached is None or cached[0] != latest:
            cached = (latest, {e for e, score in self.latest_scores(version).items() if score >= 1.0})
            self._held[version] = cached
        return set(cached[1])

    def general(self, version: str) -> dict[str, float] | None:
        rows = self.store.query("SELECT figures FROM general_results WHERE version = ?", (version,))
        return json.loads(rows[0]["figures"]) if rows else None

    def set_general(self, version: str, figures: Mapping[str, float]) -> None:
        with self.store.transaction() as db:
            db.execute("INSERT OR REPLACE INTO general_results VALUES (?, ?, ?)", (version, json.dumps(dict(figures)), now()))

    # -- the report ------------------------------------------------------------------------

    def report(self, base_model: str) -> dict[str, Any]:
        """Per experience and run: the version scored, whether it was promoted, probe scores and age
        in nights; and the summary curves of mean contains / F1 by age over promoted versions."""
        runs = {r.id: r for r in self.runs(base_model) if r.version is not None}  # runs that made a version
        order = {run_id: i for i, run_id in enumerate(sorted(runs))}
        first = self.trained_experiences(base_model)
        rows = self.store.query(
            """SELECT r.run_id, r.version, p.experience_id, AVG(r.contains) AS contains, AVG(r.f1) AS f1,
                      COUNT(*) AS probes
               FROM probe_results r JOIN probes p ON p.id = r.probe_id
               WHERE p.kind = 'recall'
               GROUP BY r.run_id, r.version, p.experience_id ORDER BY r.run_id, p.experience_id"""
        )
        points = []
        for r in rows:
            if r["run_id"] not in runs or r["experience_id"] not in first:
                continue
            run = runs[r["run_id"]]
            points.append({
                "experience_id": r["experience_id"], "run_id": r["run_id"], "version": r["version"],
                "promoted": run.promoted, "at": run.started_at,
                "age": order[r["run_id"]] - order[first[r["experience_id"]]],
                "contains": round(r["contains"], 4), "f1": round(r["f1"], 4), "probes": r["probes"],
            })
        by_age: dict[int, list[dict]] = defaultdict(list)
        for point in points:
            if point["promoted"] and point["age"] >= 0:
                by_age[point["age"]].append(point)
        curve = [
            {"age": age, "experiences": len(ps),
             "contains": round(sum(p["contains"] for p in ps) / len(ps), 4),
             "f1": round(sum(p["f1"] for p in ps) / len(ps), 4)}
            for age, ps in sorted(by_age.items())
        ]
        return {
            "base_model": base_model,
            "runs": [{"id": r.id, "parent": r.parent, "version": r.version, "promoted": r.promoted,
                      "started_at": r.started_at} for r in runs.values()],
            "points": points,
            "by_age": curve,
        }
