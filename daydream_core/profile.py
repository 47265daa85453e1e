"""The profile store: what daydream learned, across runs and processes (SQLite).

Per-kind execution time per tier, per-tier init (cold start) time, per-phase concurrency, and
per-run summaries. The schema is versioned; writers take an immediate transaction and the
database runs in WAL mode, so concurrent runs neither corrupt it nor lose updates.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import platformdirs

from daydream_core.errors import ConfigurationError, ProfileError
from daydream_core.model import INTERRUPTED, RunRecord, WidthHint
from daydream_core.policies.learned import Pair, RatioKey, fold_pairs, learned_timings
from daydream_core.policies.predictor import Shape

ENV_VAR = "DAYDREAM_PROFILE"
SCHEMA_VERSION = 5

_MIGRATIONS: dict[int, str] = {
    1: """
    CREATE TABLE kind_timing (
        app TEXT NOT NULL, provider TEXT NOT NULL, kind TEXT NOT NULL, tier TEXT NOT NULL,
        n INTEGER NOT NULL, mean_ms REAL NOT NULL, m2 REAL NOT NULL,
        PRIMARY KEY (app, provider, kind, tier));
    CREATE TABLE init_timing (
        app TEXT NOT NULL, provider TEXT NOT NULL, tier TEXT NOT NULL,
        n INTEGER NOT NULL, mean_ms REAL NOT NULL,
        PRIMARY KEY (app, provider, tier));
    CREATE TABLE phase_width (
        workload TEXT NOT NULL, run_id TEXT NOT NULL, phase INTEGER NOT NULL,
        tier TEXT NOT NULL, width INTEGER NOT NULL, predicted INTEGER NOT NULL,
        PRIMARY KEY (run_id, phase, tier));
    CREATE INDEX phase_width_workload ON phase_width (workload);
    CREATE TABLE runs (
        run_id TEXT PRIMARY KEY, app TEXT NOT NULL, provider TEXT NOT NULL,
        policy TEXT NOT NULL, preset TEXT NOT NULL, seed INTEGER NOT NULL,
        finished_at REAL NOT NULL, execution_s REAL NOT NULL, cost REAL NOT NULL,
        hot INTEGER NOT NULL, warm INTEGER NOT NULL, cold INTEGER NOT NULL, error TEXT);
    """,
    # What the predictor conditions on besides widths: each phase's kinds and next-width hint.
    2: """
    CREATE TABLE phase_shape (
        workload TEXT NOT NULL, run_id TEXT NOT NULL, phase INTEGER NOT NULL,
        kinds TEXT NOT NULL, hint_expected INTEGER, hint_at_most INTEGER,
        PRIMARY KEY (run_id, phase));
    """,
    # Kinds that ran out of memory: the largest memory (MB) each one is known not to fit in.
    3: """
    CREATE TABLE memory_floor (
        app TEXT NOT NULL, provider TEXT NOT NULL, kind TEXT NOT NULL,
        memory_mb INTEGER NOT NULL, PRIMARY KEY (app, provider, kind));
    """,
    # Probes against their originals: moments of log(execution on tier / on base), per kind.
    4: """
    CREATE TABLE kind_ratio (
        app TEXT NOT NULL, provider TEXT NOT NULL, kind TEXT NOT NULL, tier TEXT NOT NULL,
        base TEXT NOT NULL, n INTEGER NOT NULL, mean_log REAL NOT NULL, m2 REAL NOT NULL,
        PRIMARY KEY (app, provider, kind, tier, base));
    """,
    # When each run started (wall clock): the idle time between runs, which a keep-alive
    # window is learned from. Rows from before have none (their start is estimated).
    5: """
    ALTER TABLE runs ADD COLUMN started_at REAL;
    """,
}


def default_path() -> Path:
    """``$DAYDREAM_PROFILE`` if set, else ``profile.sqlite`` in the user's data directory."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env)
    return Path(platformdirs.user_data_dir("daydream")) / "profile.sqlite"


def workload(app: str, preset: str, shape: Mapping[str, str] | None = None) -> str:
    """Runs of the same app, preset and DAG-shaping parameters (`Parameters.shape`: e.g. the
    trace's content hash) share a concurrency history; any other difference starts a new one.

    ``ccl:small`` when nothing shapes the DAG, else e.g. ``trace:small max_phases=0
    trace=sha256:0e4c1f…``: readable in `profile show`, and still ``app:`` first, so keys
    made before parameters shaped them (plain ``app:preset``) keep their rows and reset."""
    if not shape:
        return f"{app}:{preset}"
    return f"{app}:{preset} " + " ".join(f"{k}={v}" for k, v in sorted(shape.items()))


# The columns every table must have, checked at open: a file that is SQLite but not a
# profile (or a profile damaged by hand) is refused before the first phase, not during it.
_COLUMNS = {
    "kind_timing": ("app", "provider", "kind", "tier", "n", "mean_ms", "m2"),
    "init_timing": ("app", "provider", "tier", "n", "mean_ms"),
    "phase_width": ("workload", "run_id", "phase", "tier", "width", "predicted"),
    "runs": (
        "run_id", "app", "provider", "policy", "preset", "seed", "finished_at",
        "execution_s", "cost", "hot", "warm", "cold", "error", "started_at",
    ),
    "phase_shape": (
        "workload", "run_id", "phase", "kinds", "hint_expected", "hint_at_most",
    ),
    "memory_floor": ("app", "provider", "kind", "memory_mb"),
    "kind_ratio": ("app", "provider", "kind", "tier", "base", "n", "mean_log", "m2"),
}  # fmt: skip


def _use_wal(db: sqlite3.Connection) -> None:
    """Switch a store to WAL so readers never block the run that writes. SQLite refuses the
    switch at once, without waiting out busy_timeout, while another process opens the same new
    store; so two runs started together on a new profile retry it rather than one failing."""
    from daydream_core.backoff import Backoff

    def locked(exc: Exception) -> bool:
        return isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc)

    Backoff(max_attempts=12, base_s=0.05, cap_s=2.0).call(
        lambda: db.execute("PRAGMA journal_mode=WAL"), retryable=locked
    )


class ProfileStore:
    def __init__(self, path: Path | str | None = None) -> None:
        self.path = Path(path) if path is not None else default_path()
        try:
            self._check_path()
            if not self.path.parent.is_dir():
                self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            if not self.path.exists():
                # Created private: what was learned about a user's runs is theirs.
                os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
            with closing(self._connect()) as db:
                _use_wal(db)
                self._migrate(db)
                self._check_schema(db)
                self._check_writable(db)
        except sqlite3.DatabaseError as exc:
            raise ConfigurationError(f"profile store {self.path} is unusable: {exc}") from None
        except OSError as exc:
            raise ConfigurationError(
                f"cannot create profile store {self.path}: {exc.strerror or exc}"
            ) from None

    def _check_path(self) -> None:
        from daydream_core.params import writable_file

        try:
            writable_file(self.path)
        except ValueError as exc:
            raise ConfigurationError(f"profile store: {exc}") from None

    def _check_schema(self, db: sqlite3.Connection) -> None:
        for table, columns in _COLUMNS.items():
            found = tuple(row[1] for row in db.execute(f"PRAGMA table_info({table})"))
            if found != columns:
                raise ConfigurationError(
                    f"profile store {self.path} is not a daydream profile (table {table!r} "
                    f"{'is missing' if not found else 'has other columns'}); use --profile"
                )

    def _check_writable(self, db: sqlite3.Connection) -> None:
        """A real write, not a permission check: a read-only file, directory or file system
        (or a lock held elsewhere) fails here, before the first phase."""
        db.execute("BEGIN IMMEDIATE")
        try:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            db.execute(f"PRAGMA user_version = {int(version)}")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        db.execute("PRAGMA busy_timeout = 30000")
        return db

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        try:
            with closing(self._connect()) as db:
                db.execute("BEGIN IMMEDIATE")
                try:
                    yield db
                except BaseException:
                    if db.in_transaction:
                        db.execute("ROLLBACK")
                    raise
                db.execute("COMMIT")
        except (sqlite3.Error, OSError) as exc:
            # One line for the user; the engine writes the run's own files regardless.
            raise ProfileError(f"profile store {self.path} failed: {exc}") from None

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with closing(self._connect()) as db:
            yield db

    def _migrate(self, db: sqlite3.Connection) -> None:
        db.execute("BEGIN IMMEDIATE")
        try:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise ConfigurationError(
                    f"profile store {self.path} has schema {version}, newer than this "
                    f"daydream's {SCHEMA_VERSION}; upgrade daydream or use --profile"
                )
            for target in range(version + 1, SCHEMA_VERSION + 1):
                for statement in _MIGRATIONS[target].split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute(f"PRAGMA user_version = {target}")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    @property
    def schema_version(self) -> int:
        with self._read() as db:
            return int(db.execute("PRAGMA user_version").fetchone()[0])

    # -- learning ----------------------------------------------------------------------------

    def record_executions(
        self, app: str, provider: str, samples: Sequence[tuple[str, str, float]]
    ) -> None:
        """Fold (kind, tier, execution ms) samples into running means (Welford)."""
        with self._write() as db:
            for kind, tier, ms in samples:
                row = db.execute(
                    "SELECT n, mean_ms, m2 FROM kind_timing "
                    "WHERE app=? AND provider=? AND kind=? AND tier=?",
                    (app, provider, kind, tier),
                ).fetchone()
                n, mean, m2 = row if row else (0, 0.0, 0.0)
                n += 1
                delta = ms - mean
                mean += delta / n
                m2 += delta * (ms - mean)
                db.execute(
                    "INSERT OR REPLACE INTO kind_timing VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (app, provider, kind, tier, n, mean, m2),
                )

    def record_inits(self, app: str, provider: str, samples: Sequence[tuple[str, float]]) -> None:
        """Fold (tier, init ms) samples of cold and hot starts into running means."""
        with self._write() as db:
            for tier, ms in samples:
                row = db.execute(
                    "SELECT n, mean_ms FROM init_timing WHERE app=? AND provider=? AND tier=?",
                    (app, provider, tier),
                ).fetchone()
                n, mean = row if row else (0, 0.0)
                n += 1
                mean += (ms - mean) / n
                db.execute(
                    "INSERT OR REPLACE INTO init_timing VALUES (?, ?, ?, ?, ?)",
                    (app, provider, tier, n, mean),
                )

    def timings(self, app: str, provider: str) -> dict[str, dict[str, float]]:
        """Execution seconds: kind -> tier -> seconds (`daydream_core.policies.learned`)."""
        return timings_of(self.moments(app, provider), self.ratios(app, provider))

    def ratios(self, app: str, provider: str) -> dict[RatioKey, Moments]:
        """Per (kind, tier, base): probes' log execution ratios' samples, mean and M2."""
        with self._read() as db:
            rows = db.execute(
                "SELECT kind, tier, base, n, mean_log, m2 FROM kind_ratio "
                "WHERE app=? AND provider=?",
                (app, provider),
            ).fetchall()
        return {(k, t, b): (n, mean, m2) for k, t, b, n, mean, m2 in rows}

    def record_pairs(self, app: str, provider: str, pairs: Sequence[Pair]) -> None:
        """Fold probes' (kind, tier, base, execution ratio) into the kinds' ratios."""
        with self._write() as db:
            _merge_pairs(db, app, provider, pairs)

    def record_out_of_memory(
        self, app: str, provider: str, samples: Sequence[tuple[str, int]]
    ) -> None:
        """(kind, memory MB) a component of that kind ran out of: it needs more than that."""
        with self._write() as db:
            for kind, memory_mb in samples:
                db.execute(
                    "INSERT INTO memory_floor VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (app, provider, kind) "
                    "DO UPDATE SET memory_mb = MAX(memory_mb, excluded.memory_mb)",
                    (app, provider, kind, int(memory_mb)),
                )

    def memory_floors(self, app: str, provider: str) -> dict[str, int]:
        """kind -> the largest memory (MB) it is known to run out of."""
        with self._read() as db:
            rows = db.execute(
                "SELECT kind, memory_mb FROM memory_floor WHERE app=? AND provider=?",
                (app, provider),
            ).fetchall()
        return {kind: int(memory_mb) for kind, memory_mb in rows}

    def init_ms(self, app: str, provider: str) -> dict[str, float]:
        with self._read() as db:
            rows = db.execute(
                "SELECT tier, mean_ms FROM init_timing WHERE app=? AND provider=?",
                (app, provider),
            ).fetchall()
        return {tier: mean for tier, mean in rows}

    def learn_phase(
        self,
        app: str,
        provider: str,
        executions: Sequence[tuple[str, str, float]],
        inits: Sequence[tuple[str, float]],
        phase: PhaseWidths | None = None,
        pairs: Sequence[Pair] = (),
    ) -> dict[str, dict[str, float]]:
        """Everything one phase teaches, in one transaction: (kind, tier, execution ms)
        samples, (tier, init ms) samples, probes' pairs and the phase's widths; returns the
        timings now (kind -> tier -> seconds). The samples are folded per (kind, tier) first and
        merged into the running moments (Chan et al.), so the work in SQLite is one read and
        one write per kind and tier, whatever the phase's width."""
        folded = fold_moments(executions)
        folded_inits = fold_moments([("", tier, ms) for tier, ms in inits])
        with self._write() as db:
            rows = db.execute(
                "SELECT kind, tier, n, mean_ms, m2 FROM kind_timing WHERE app=? AND provider=?",
                (app, provider),
            ).fetchall()
            moments = {(k, t): (n, mean, m2) for k, t, n, mean, m2 in rows}
            for key, batch in folded.items():
                moments[key] = merge_moments(moments.get(key, (0, 0.0, 0.0)), batch)
            db.executemany(
                "INSERT OR REPLACE INTO kind_timing VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(app, provider, k, t, *moments[(k, t)]) for k, t in folded],
            )
            if folded_inits:
                rows = db.execute(
                    "SELECT tier, n, mean_ms FROM init_timing WHERE app=? AND provider=?",
                    (app, provider),
                ).fetchall()
                known = {t: (n, mean) for t, n, mean in rows}
                merged = []
                for (_, tier), batch in folded_inits.items():
                    n, mean = known.get(tier, (0, 0.0))
                    total, new_mean, _ = merge_moments((n, mean, 0.0), batch)
                    merged.append((app, provider, tier, total, new_mean))
                db.executemany("INSERT OR REPLACE INTO init_timing VALUES (?, ?, ?, ?, ?)", merged)
            if phase is not None:
                db.executemany(
                    "INSERT OR REPLACE INTO phase_width VALUES (?, ?, ?, ?, ?, ?)",
                    phase.rows(),
                )
                db.execute(
                    "INSERT OR REPLACE INTO phase_shape VALUES (?, ?, ?, ?, ?, ?)",
                    phase.shape_row(),
                )
            ratios = _merge_pairs(db, app, provider, pairs)
        return timings_of(moments, ratios)

    def moments(self, app: str, provider: str) -> dict[tuple[str, str], Moments]:
        """Per (kind, tier): samples, mean ms and Welford's M2, as stored."""
        with self._read() as db:
            rows = db.execute(
                "SELECT kind, tier, n, mean_ms, m2 FROM kind_timing WHERE app=? AND provider=?",
                (app, provider),
            ).fetchall()
        return {(k, t): (n, mean, m2) for k, t, n, mean, m2 in rows}

    # -- concurrency history -------------------------------------------------------------------

    def record_phase(
        self,
        workload_key: str,
        run_id: str,
        phase: int,
        widths: Mapping[str, int],
        predicted: Mapping[str, int],
    ) -> None:
        with self._write() as db:
            for tier in sorted(set(widths) | set(predicted)):
                db.execute(
                    "INSERT OR REPLACE INTO phase_width VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        workload_key,
                        run_id,
                        phase,
                        tier,
                        widths.get(tier, 0),
                        predicted.get(tier, 0),
                    ),
                )

    def width_history(
        self, workload_key: str, exclude_run: str | None = None, limit_runs: int = 200
    ) -> list[list[dict[str, int]]]:
        """Earlier runs' widths: one list per run (oldest first), one {tier: width} per phase."""
        with self._read() as db:
            rows = db.execute(
                "SELECT run_id, phase, tier, width FROM phase_width WHERE workload=? "
                "ORDER BY rowid",
                (workload_key,),
            ).fetchall()
        runs: dict[str, dict[int, dict[str, int]]] = {}
        for run_id, phase, tier, width in rows:
            if run_id != exclude_run:
                runs.setdefault(run_id, {}).setdefault(phase, {})[tier] = width
        history = [[phases[k] for k in sorted(phases)] for phases in runs.values()]
        return history[-limit_runs:]

    def record_shape(
        self,
        workload_key: str,
        run_id: str,
        phase: int,
        kinds: Iterable[str],
        hint: WidthHint | None = None,
    ) -> None:
        """A phase's distinct kinds and the workflow's hint of the next phase's width."""
        with self._write() as db:
            db.execute(
                "INSERT OR REPLACE INTO phase_shape VALUES (?, ?, ?, ?, ?, ?)",
                _shape_row(workload_key, run_id, phase, kinds, hint),
            )

    def shape_history(
        self, workload_key: str, exclude_run: str | None = None, limit_runs: int = 200
    ) -> list[list[Shape]]:
        """Earlier runs' phase shapes, run for run as `width_history` (a phase recorded before
        shapes were is one of no kinds and no hint)."""
        with self._read() as db:
            order = db.execute(
                "SELECT run_id, phase FROM phase_width WHERE workload=? ORDER BY rowid",
                (workload_key,),
            ).fetchall()
            rows = db.execute(
                "SELECT run_id, phase, kinds, hint_expected, hint_at_most FROM phase_shape "
                "WHERE workload=?",
                (workload_key,),
            ).fetchall()
        known = {
            (run_id, phase): Shape(
                frozenset(json.loads(kinds)),
                None if expected is None and at_most is None else WidthHint(expected, at_most),
            )
            for run_id, phase, kinds, expected, at_most in rows
        }
        runs: dict[str, set[int]] = {}
        for run_id, phase in order:
            if run_id != exclude_run:
                runs.setdefault(run_id, set()).add(phase)
        history = [
            [known.get((run_id, k), Shape()) for k in sorted(phases)]
            for run_id, phases in runs.items()
        ]
        return history[-limit_runs:]

    def record_run(self, run: RunRecord) -> None:
        starts = run.start_counts()
        with self._write() as db:
            db.execute(
                "INSERT OR REPLACE INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run.run_id,
                    run.app,
                    run.provider,
                    run.policy,
                    run.preset,
                    run.seed,
                    time.time(),
                    run.execution_time_s,
                    run.cost,
                    starts["hot"],
                    starts["warm"],
                    starts["cold"],
                    run.error,
                    run.started_at,
                ),
            )

    def run_spans(
        self, workload_key: str, exclude_run: str | None = None, limit_runs: int = 200
    ) -> list[tuple[float, float]]:
        """Earlier runs of the workload as (started, finished) wall-clock seconds, oldest
        first. A run recorded before starts were has its start estimated from its
        execution time (its setup, not counted, makes the gap after it look longer)."""
        with self._read() as db:
            rows = db.execute(
                "SELECT run_id, started_at, finished_at, execution_s FROM runs WHERE run_id IN "
                "(SELECT run_id FROM phase_width WHERE workload=?) ORDER BY finished_at",
                (workload_key,),
            ).fetchall()
        spans = [
            (finished - execution if started is None else started, finished)
            for run_id, started, finished, execution in rows
            if run_id != exclude_run
        ]
        return spans[-limit_runs:]

    def run_count(self, app: str | None = None) -> int:
        with self._read() as db:
            if app is None:
                return int(db.execute("SELECT COUNT(*) FROM runs").fetchone()[0])
            return int(db.execute("SELECT COUNT(*) FROM runs WHERE app=?", (app,)).fetchone()[0])

    # -- what was learned, for people -------------------------------------------------------

    def describe(self, app: str | None = None) -> dict[str, Any]:
        """Everything learned, per app and provider (timings, inits), per workload (width
        history) and per run, as plain data for `daydream profile show`."""
        where, args = ("WHERE app=?", (app,)) if app is not None else ("", ())
        with self._read() as db:
            kinds = db.execute(
                f"SELECT app, provider, kind, tier, n, mean_ms, m2 FROM kind_timing {where} "
                "ORDER BY app, provider, kind, tier",
                args,
            ).fetchall()
            inits = db.execute(
                f"SELECT app, provider, tier, n, mean_ms FROM init_timing {where} "
                "ORDER BY app, provider, tier",
                args,
            ).fetchall()
            widths = db.execute(
                "SELECT workload, COUNT(DISTINCT run_id), COUNT(DISTINCT run_id || '/' || phase),"
                " SUM(width), SUM(predicted) FROM phase_width "
                + ("WHERE workload LIKE ? " if app is not None else "")
                + "GROUP BY workload ORDER BY workload",
                (f"{app}:%",) if app is not None else (),
            ).fetchall()
            runs = db.execute(
                f"SELECT app, provider, policy, COUNT(*), SUM(execution_s), SUM(cost), "
                f"SUM(hot), SUM(warm), SUM(cold), SUM(error IS NOT NULL), "
                f"SUM(error = '{INTERRUPTED}') FROM runs {where} "
                "GROUP BY app, provider, policy ORDER BY app, provider, policy",
                args,
            ).fetchall()
        return {
            "path": str(self.path),
            "schema": self.schema_version,
            "timings": [
                {
                    "app": a,
                    "provider": p,
                    "kind": k,
                    "tier": t,
                    "samples": n,
                    "mean_s": mean / 1000.0,
                    "stdev_s": (m2 / (n - 1)) ** 0.5 / 1000.0 if n > 1 else 0.0,
                }
                for a, p, k, t, n, mean, m2 in kinds
            ],
            "inits": [
                {"app": a, "provider": p, "tier": t, "samples": n, "mean_s": mean / 1000.0}
                for a, p, t, n, mean in inits
            ],
            "workloads": [
                {
                    "workload": w,
                    "runs": r,
                    "phases": ph,
                    "components": int(total or 0),
                    "hot_starts_predicted": int(predicted or 0),
                }
                for w, r, ph, total, predicted in widths
            ],
            "runs": [
                {
                    "app": a,
                    "provider": p,
                    "policy": pol,
                    "runs": n,
                    "execution_s": float(t or 0.0),
                    "cost": float(c or 0.0),
                    "starts": {"hot": int(h or 0), "warm": int(w or 0), "cold": int(cold or 0)},
                    "failed": int(failed or 0),
                    "interrupted": int(interrupted or 0),  # of the failed: stopped, resumable
                }
                for a, p, pol, n, t, c, h, w, cold, failed, interrupted in runs
            ],
        }

    def reset(self, app: str | None = None) -> int:
        """Forget what was learned (of one app, or everything); return the rows removed."""
        removed = 0
        with self._write() as db:
            if app is None:
                for table in (*_PER_APP, "phase_width"):
                    removed += db.execute(f"DELETE FROM {table}").rowcount
            else:
                for table in _PER_APP:
                    removed += db.execute(f"DELETE FROM {table} WHERE app=?", (app,)).rowcount
                removed += db.execute(
                    "DELETE FROM phase_width WHERE workload LIKE ?", (f"{app}:%",)
                ).rowcount
            # Shapes describe phase_width's phases: they go with them, uncounted.
            if app is None:
                db.execute("DELETE FROM phase_shape")
            else:
                db.execute("DELETE FROM phase_shape WHERE workload LIKE ?", (f"{app}:%",))
        return removed


_PER_APP = ("kind_timing", "kind_ratio", "init_timing", "runs", "memory_floor")


def timings_of(
    moments: Mapping[tuple[str, str], Moments], ratios: Mapping[RatioKey, Moments]
) -> dict[str, dict[str, float]]:
    """Execution seconds per kind and tier from stored moments (ms) and ratios."""
    return learned_timings(
        {key: (n, mean_ms / 1000.0) for key, (n, mean_ms, _) in moments.items()},
        {key: (n, mean) for key, (n, mean, _) in ratios.items()},
    )


def _merge_pairs(
    db: sqlite3.Connection, app: str, provider: str, pairs: Sequence[Pair]
) -> dict[RatioKey, Moments]:
    """Merge probes' pairs into the stored ratios, in the open transaction; all of them."""
    rows = db.execute(
        "SELECT kind, tier, base, n, mean_log, m2 FROM kind_ratio WHERE app=? AND provider=?",
        (app, provider),
    ).fetchall()
    ratios = {(k, t, b): (n, mean, m2) for k, t, b, n, mean, m2 in rows}
    folded = fold_pairs(pairs)
    for key, batch in folded.items():
        ratios[key] = merge_moments(ratios.get(key, (0, 0.0, 0.0)), batch)
    db.executemany(
        "INSERT OR REPLACE INTO kind_ratio VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [(app, provider, *key, *ratios[key]) for key in folded],
    )
    return ratios


def _shape_row(
    workload_key: str, run_id: str, phase: int, kinds: Iterable[str], hint: WidthHint | None
) -> tuple[str, str, int, str, int | None, int | None]:
    return (
        workload_key,
        run_id,
        phase,
        json.dumps(sorted(set(kinds))),
        hint.expected if hint is not None else None,
        hint.at_most if hint is not None else None,
    )


@dataclass(frozen=True)
class PhaseWidths:
    """One phase's actual and predicted widths per tier, as the concurrency history keeps them."""

    workload: str
    run_id: str
    phase: int
    widths: Mapping[str, int]
    predicted: Mapping[str, int]
    kinds: Sequence[str] = ()  # the phase's components' kinds (its shape)
    hint: WidthHint | None = None  # what the workflow said, with it, of the next phase

    def shape_row(self) -> tuple[str, str, int, str, int | None, int | None]:
        return _shape_row(self.workload, self.run_id, self.phase, self.kinds, self.hint)

    def rows(self) -> list[tuple[str, str, int, str, int, int]]:
        return [
            (
                self.workload,
                self.run_id,
                self.phase,
                tier,
                self.widths.get(tier, 0),
                self.predicted.get(tier, 0),
            )
            for tier in sorted(set(self.widths) | set(self.predicted))
        ]


Moments = tuple[int, float, float]  # samples, mean, sum of squared deviations (Welford's M2)


def fold_moments(samples: Sequence[tuple[str, str, float]]) -> dict[tuple[str, str], Moments]:
    """Running moments of each (kind, tier)'s samples (Welford, in order)."""
    folded: dict[tuple[str, str], Moments] = {}
    for kind, tier, value in samples:
        n, mean, m2 = folded.get((kind, tier), (0, 0.0, 0.0))
        n += 1
        delta = value - mean
        mean += delta / n
        folded[(kind, tier)] = (n, mean, m2 + delta * (value - mean))
    return folded


def merge_moments(a: Moments, b: Moments) -> Moments:
    """The moments of two sample sets together (Chan, Golub and LeVeque's pairwise update)."""
    n = a[0] + b[0]
    if n == 0:
        return a
    delta = b[1] - a[1]
    return n, a[1] + delta * b[0] / n, a[2] + b[2] + delta * delta * a[0] * b[0] / n
