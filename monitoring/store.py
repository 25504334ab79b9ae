"""The monitor's store: the request log and the feedback, joined incrementally in one SQLite file
(`outputs/feedback/monitor.sqlite`), so that a refresh costs time in proportion to what is new, not to all
history (docs/monitoring.md, "The monitor's store").

- **The request log** is read from where the last read stopped: per file, the bytes read (complete CSV
  records only) and its header. A file is known by its name without `.open`, so it is followed through what a
  server does to it: appended to while open, closed or rotated (renamed to `.csv`), recovered after a crash
  by the next writer (rewritten without its torn last line, which was never read). A file shorter than
  what was read of it is not that file any more: its trips are read again from the start. A file that left
  the folder (archived by monitoring/archive.py, or removed) takes its trips out of the store, as it took
  them out of what the monitor and the pipeline read.
- **Labels** are keyed on (request_id, trip), unique: the first label received of each trip. The monitor's
  feedback store (monitoring/feedback.py) adds them at once, as it appends them to its CSV; every feedback
  CSV (the command line's too) is read incrementally like the log, and a row the store holds already (the
  same label) is not counted again. A different second label for a trip is a duplicate: counted, and the
  one received first kept.
- **The join** is kept as either side arrives: a trip is `labelled` once its label is known and computable
  (a fare, from the label or from the request), a label `logged` once its trip is. Unlabelled trips and
  labels still waiting for their trip are found through partial indexes, never by a scan.

One store per output folder; processes share it (the monitor, the loop, the page, the feedback command):
each change is one transaction, and each waits for the others' (SQLite's lock, `BUSY_TIMEOUT_SECONDS`).
"""

import contextlib
import csv
import datetime
import io
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

from config import monitoring as monitoring_config
from config import pipeline as pipeline_config
from config import serving as serving_config
from models import features
from serving import request_log

FEEDBACK_COLUMNS = ["request_id", "trip", "tips", "fare", "received"]
TRIP_COLUMNS = ["request_id", "trip", serving_config.REQUEST_LOG_TIME_COLUMN, "model_version",
                serving_config.REQUEST_LOG_ROUTE_COLUMN, "prediction"]  # fmt: skip
FEEDBACK_FILES = "feedback-*.csv"
REQUESTS, FEEDBACK = "requests", "feedback"  # the kinds of file the store reads
BUSY_TIMEOUT_SECONDS = 60.0
CACHE_KB = 65_536  # SQLite's page cache: the indexes' upper levels at millions of trips (its default: 2 MB)
READ_BYTES = 4_000_000  # a file is read in pieces of about this size (~15,000 trips): memory stays small

SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    id INTEGER PRIMARY KEY, kind TEXT NOT NULL, name TEXT NOT NULL, read_to INTEGER NOT NULL,
    header TEXT NOT NULL, UNIQUE (kind, name));
CREATE TABLE IF NOT EXISTS trips (
    file INTEGER NOT NULL, request_id TEXT NOT NULL, trip INTEGER NOT NULL, answered REAL NOT NULL,
    version TEXT NOT NULL, route TEXT NOT NULL, prediction REAL NOT NULL, fare REAL,
    key_slice INTEGER NOT NULL, labelled INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS trips_by_key ON trips (request_id, trip);
CREATE INDEX IF NOT EXISTS trips_by_series ON trips (version, route, answered);
CREATE INDEX IF NOT EXISTS trips_unlabelled ON trips (version, answered) WHERE labelled = 0;
CREATE TABLE IF NOT EXISTS labels (
    request_id TEXT NOT NULL, trip INTEGER NOT NULL, tips REAL NOT NULL, fare REAL, received REAL NOT NULL,
    logged INTEGER NOT NULL, PRIMARY KEY (request_id, trip)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS labels_not_logged ON labels (received) WHERE logged = 0;
CREATE TABLE IF NOT EXISTS series (
    version TEXT NOT NULL, route TEXT NOT NULL, last_answered REAL NOT NULL, PRIMARY KEY (version, route));
-- Kept as rows arrive and leave, so that no refresh counts a table: trips, labels, duplicates.
CREATE TABLE IF NOT EXISTS counts (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""

INSERT_TRIP = """
INSERT INTO trips (file, request_id, trip, answered, version, route, prediction, fare, key_slice, labelled)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, EXISTS (
    SELECT 1 FROM labels WHERE request_id = ?2 AND trip = ?3 AND COALESCE(labels.fare, ?8) IS NOT NULL))
"""
INSERT_LABEL = """
INSERT INTO labels (request_id, trip, tips, fare, received, logged)
VALUES (?1, ?2, ?3, ?4, ?5, EXISTS (SELECT 1 FROM trips WHERE request_id = ?1 AND trip = ?2))
ON CONFLICT DO NOTHING
"""
# Labels read from a feedback file, staged in `arriving`: the trips' first labels are stored, and their
# trips learn that they are labelled; a label that differs from a trip's stored one is a duplicate,
# counted, and the earlier received of the two is kept (`ARRIVING_EARLIER`, only when there are any).
ARRIVING_NEW = """
INSERT INTO labels (request_id, trip, tips, fare, received, logged)
SELECT a.request_id, a.trip, a.tips, a.fare, a.received,
       EXISTS (SELECT 1 FROM trips t WHERE t.request_id = a.request_id AND t.trip = a.trip)
FROM arriving a
WHERE NOT EXISTS (SELECT 1 FROM labels l WHERE l.request_id = a.request_id AND l.trip = a.trip)
ORDER BY a.received
ON CONFLICT DO NOTHING
"""
ARRIVING_DIFFERING = """
SELECT COUNT(*) FROM arriving a JOIN labels l ON l.request_id = a.request_id AND l.trip = a.trip
WHERE NOT (a.tips = l.tips AND a.fare IS l.fare AND a.received = l.received)
"""
ARRIVING_EARLIER = """
UPDATE labels SET tips = a.tips, fare = a.fare, received = a.received
FROM (SELECT request_id, trip, tips, fare, MIN(received) AS received FROM arriving GROUP BY request_id, trip) a
WHERE labels.request_id = a.request_id AND labels.trip = a.trip AND a.received < labels.received
"""
ARRIVING_LABELLED = """
UPDATE trips SET labelled = (COALESCE(l.fare, trips.fare) IS NOT NULL)
FROM arriving a JOIN labels l ON l.request_id = a.request_id AND l.trip = a.trip
WHERE trips.request_id = a.request_id AND trips.trip = a.trip
  AND trips.labelled != (COALESCE(l.fare, trips.fare) IS NOT NULL)
"""
MARK_LABELLED = """
UPDATE trips SET labelled = (COALESCE(?3, fare) IS NOT NULL) WHERE request_id = ?1 AND trip = ?2
"""


def path_of(feedback_dir: Path) -> Path:
    return feedback_dir / monitoring_config.MONITOR_STORE_FILE


class TripStore:
    """One connection to the store; safe to share between threads (one operation at a time)."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(
            path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None, check_same_thread=False
        )
        self._lock = threading.RLock()
        self._db.execute("PRAGMA journal_mode = WAL")  # readers never wait for the writer
        # Consistent after any crash; a power cut may lose the last commits, whose lines the files still
        # hold and the next sync reads again (their positions are lost with them).
        self._db.execute("PRAGMA synchronous = NORMAL")
        self._db.execute(f"PRAGMA cache_size = -{CACHE_KB}")
        self._db.executescript(SCHEMA)

    @classmethod
    def of(cls, feedback_dir: Path) -> "TripStore":
        return cls(path_of(feedback_dir))

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One change, whole or not at all; other processes' changes wait for it (and it for theirs)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _query(self, sql: str, parameters: Iterable = ()) -> list[tuple]:
        with self._lock:
            return self._db.execute(sql, tuple(parameters)).fetchall()

    # --- what arrives ----------------------------------------------------------------------------

    def add_label(self, request_id: str, trip: int, tips: float, fare: float | None, received: float) -> bool:
        """Stores a trip's label unless it has one already (call inside `transaction()`); True if stored."""
        stored = self._db.execute(INSERT_LABEL, (request_id, trip, tips, fare, received)).rowcount == 1
        if stored:
            self._db.execute(MARK_LABELLED, (request_id, trip, fare))
            self._count("labels", 1)
        return stored

    def wrote_feedback(self, name: str, before: int, after: int) -> None:
        """Lines the store holds already were appended to feedback file `name`, from byte `before` to
        `after` (call inside the `transaction()` that added them): a sync need not read them, unless it
        had not read the file up to `before` (then it reads them all, finding the same labels)."""
        if before == 0:
            self._db.execute(
                "INSERT INTO files (kind, name, read_to, header) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (FEEDBACK, name, after, ",".join(FEEDBACK_COLUMNS)),
            )
        else:
            self._db.execute(
                "UPDATE files SET read_to = ? WHERE kind = ? AND name = ? AND read_to = ?",
                (after, FEEDBACK, name, before),
            )

    def sync(self, request_log_dir: Path, feedback_dir: Path, archived: Iterable[Path] = ()) -> dict:
        """Reads what is new in the request log's files and the feedback files; forgets the trips of
        files that left the folder (`archived`: where monitoring/archive.py moved them). Returns how many
        rows it read of each: what is new, never what was read before."""
        gone = {_base_name(path) for path in archived}
        trips = self._sync_files(REQUESTS, request_log_dir, _log_files(request_log_dir), gone)
        labels = self._sync_files(FEEDBACK, feedback_dir, _feedback_files(feedback_dir), set())
        return {"trips": trips, "labels": labels}

    def _sync_files(self, kind: str, folder: Path, present: dict[str, Path], gone: set[str]) -> int:
        known = {name: (file_id, read_to) for file_id, name, read_to in self._query(
            "SELECT id, name, read_to FROM files WHERE kind = ?", (kind,))}  # fmt: skip
        # A file closed (`.open` renamed `.csv`) while the folder was listed may be missing from the
        # listing: only a file found under neither name now has left.
        self._forget([known[name][0] for name in sorted(set(known) - set(present))
                      if name in gone or not _exists(folder, name)])  # fmt: skip
        read = 0
        for name, path in sorted(present.items()):
            file_id, read_to = known.get(name, (None, 0))
            try:
                size = path.stat().st_size
            except FileNotFoundError:  # renamed since it was listed (closed): read next time
                continue
            if size < read_to:  # not the file that was read: read it again, whole
                self._forget([file_id])
            if size != read_to:
                try:
                    read += self._read_new(kind, name, path)
                except FileNotFoundError:  # renamed between the stat and the open: read next time
                    continue
        return read

    def _read_new(self, kind: str, name: str, path: Path) -> int:
        """Reads a file's complete records past what the store read of it, a piece at a time. Each piece is
        one transaction that starts from the position the store holds then: a crash loses nothing, and a
        piece another process read meanwhile is not read twice."""
        read = 0
        with path.open("rb") as handle:
            while True:
                with self.transaction() as db:
                    found = db.execute(
                        "SELECT id, read_to, header FROM files WHERE kind = ? AND name = ?", (kind, name)
                    ).fetchone()
                    file_id, read_to, header = found or (None, 0, None)
                    handle.seek(read_to)
                    lines = handle.readlines(READ_BYTES)
                    complete = lines[: _complete_records(lines)]
                    if not complete:  # nothing new, or a record still being written: the rest next time
                        return read
                    text = b"".join(complete).decode("utf-8")
                    if header is None:
                        header, text = text.split("\n", 1)
                        file_id = db.execute(
                            "INSERT INTO files (kind, name, read_to, header) VALUES (?, ?, 0, ?)",
                            (kind, name, header),
                        ).lastrowid
                    insert = self._insert_trips if kind == REQUESTS else self._insert_labels
                    read += insert(file_id, next(csv.reader([header])), csv.reader(io.StringIO(text)))
                    db.execute(
                        "UPDATE files SET read_to = ? WHERE id = ?",
                        (read_to + sum(map(len, complete)), file_id),
                    )

    def _insert_trips(self, file_id: int, columns: list[str], rows: Iterable[list[str]]) -> int:
        values = _trip_values(columns, rows)
        self._db.executemany(INSERT_TRIP, [(file_id, *value) for value in values])
        self._count("trips", len(values))
        newest: dict[tuple[str, str], float] = {}
        for _, _, answered, version, route, *_ in values:
            newest[(version, route)] = max(answered, newest.get((version, route), answered))
        self._db.executemany(
            "INSERT INTO series VALUES (?, ?, ?) ON CONFLICT DO UPDATE "
            "SET last_answered = MAX(last_answered, excluded.last_answered)",
            [(version, route, answered) for (version, route), answered in newest.items()],
        )
        keys = [(request_id, trip) for request_id, trip, *_ in values]
        self._db.executemany(
            "UPDATE labels SET logged = 1 WHERE request_id = ? AND trip = ? AND logged = 0", keys
        )
        return len(values)

    def _insert_labels(self, file_id: int, columns: list[str], rows: Iterable[list[str]]) -> int:
        """Stores the first label received of each trip, and counts the others that differ from it."""
        labels = _label_values(columns, rows)
        self._db.execute(
            "CREATE TEMP TABLE IF NOT EXISTS arriving (request_id TEXT, trip INTEGER, tips REAL, fare REAL, received REAL)"
        )
        self._db.execute("DELETE FROM arriving")
        self._db.executemany("INSERT INTO arriving VALUES (?, ?, ?, ?, ?)", labels)
        self._count("labels", self._db.execute(ARRIVING_NEW).rowcount)
        duplicates = self._db.execute(ARRIVING_DIFFERING).fetchone()[0]
        if duplicates:
            self._count("duplicates", duplicates)
            self._db.execute(ARRIVING_EARLIER)
        self._db.execute(ARRIVING_LABELLED)
        return len(labels)

    def _count(self, name: str, change: int) -> None:
        self._db.execute(
            "INSERT INTO counts VALUES (?, ?) ON CONFLICT DO UPDATE SET value = value + excluded.value",
            (name, change),
        )

    def _forget(self, file_ids: list[int]) -> None:
        """Takes files' trips out of the store, all in one pass over the trips; their labels wait for them
        again."""
        if not file_ids:
            return
        with self.transaction() as db:
            db.execute("CREATE TEMP TABLE IF NOT EXISTS forgotten_files (id INTEGER PRIMARY KEY)")
            db.execute("CREATE TEMP TABLE IF NOT EXISTS forgotten (request_id TEXT, trip INTEGER)")
            db.execute("DELETE FROM forgotten_files")
            db.execute("DELETE FROM forgotten")
            db.executemany("INSERT INTO forgotten_files VALUES (?)", [(i,) for i in file_ids])
            db.execute(
                "INSERT INTO forgotten SELECT request_id, trip FROM trips WHERE file IN forgotten_files"
            )
            self._count("trips", -db.execute("DELETE FROM trips WHERE file IN forgotten_files").rowcount)
            db.execute(
                "UPDATE labels SET logged = 0 WHERE (request_id, trip) IN (SELECT request_id, trip FROM forgotten) "
                "AND NOT EXISTS (SELECT 1 FROM trips t WHERE t.request_id = labels.request_id AND t.trip = labels.trip)"
            )
            db.execute("DELETE FROM files WHERE id IN forgotten_files")

    # --- what the monitor reads -------------------------------------------------------------------

    def totals(self) -> tuple[int, int]:
        """(trips logged, trips labelled: distinct (request_id, trip) with a label and in the log)."""
        counted = dict(self._query("SELECT name, value FROM counts"))
        waiting = self._query("SELECT COUNT(*) FROM labels WHERE logged = 0")[0][0]
        return counted.get("trips", 0), counted.get("labels", 0) - waiting

    def unjoined_labels(self, now: float, grace_seconds: float) -> tuple[int, int]:
        """(labels whose trip the log has not shown past `grace_seconds`: unknown, those still within it)."""
        unknown, waiting = self._query(
            "SELECT COALESCE(SUM(received < ?1), 0), COALESCE(SUM(received >= ?1), 0) FROM labels "
            "WHERE logged = 0",
            (now - grace_seconds,),
        )[0]
        return unknown, waiting

    def duplicates(self) -> int:
        found = self._query("SELECT value FROM counts WHERE name = 'duplicates'")
        return found[0][0] if found else 0

    def newest_answer(self) -> float | None:
        """When the newest trip in the store was answered (Unix time)."""
        return self._query("SELECT MAX(last_answered) FROM series")[0][0]

    def series(self, since: float) -> list[tuple[str, str]]:
        """(version, route) of every series with a trip answered at or after `since`."""
        return self._query(
            "SELECT version, route FROM series WHERE last_answered >= ? ORDER BY version, route", (since,)
        )

    def labelled(self, version: str, route: str, start: float, end: float, limit: int) -> list[tuple]:
        """The newest `limit` labelled trips of a series answered in [start, end], newest first:
        (answered, prediction, key_slice, tips, fare), the fare the label's or else the request's."""
        return self._query(
            "SELECT t.answered, t.prediction, t.key_slice, l.tips, COALESCE(l.fare, t.fare) "
            "FROM trips t JOIN labels l ON l.request_id = t.request_id AND l.trip = t.trip "
            "WHERE t.version = ? AND t.route = ? AND t.answered BETWEEN ? AND ? AND t.labelled = 1 "
            "ORDER BY t.answered DESC LIMIT ?",
            (version, route, start, end, limit),
        )

    def unlabelled_predictions(self, version: str, start: float, end: float, limit: int) -> list[float]:
        """Predictions of the newest `limit` trips a version answered in [start, end] (a shadow's copies
        left out) without a computable label yet."""
        return [p for (p,) in self._query(
            "SELECT prediction FROM trips WHERE version = ? AND labelled = 0 AND route != ? "
            "AND answered BETWEEN ? AND ? ORDER BY answered DESC LIMIT ?",
            (version, serving_config.SHADOW_ROUTE, start, end, limit),
        )]  # fmt: skip

    def shadow_pairs(self, shadow_version: str, start: float, end: float, limit: int) -> list[tuple]:
        """The newest `limit` trips a shadow answered in [start, end] that stable answered too:
        (stable's version, stable's prediction, the shadow's prediction)."""
        return self._query(
            "SELECT s.version, s.prediction, h.prediction FROM trips h JOIN trips s "
            "ON s.request_id = h.request_id AND s.trip = h.trip AND s.route = 'stable' "
            "WHERE h.version = ? AND h.route = ? AND h.answered BETWEEN ? AND ? "
            "ORDER BY h.answered DESC LIMIT ?",
            (shadow_version, serving_config.SHADOW_ROUTE, start, end, limit),
        )

    # --- what the loop reads ----------------------------------------------------------------------

    def labelled_keys(self) -> set[tuple[str, int]]:
        """(request_id, trip) of every labelled trip stable or a canary answered (a shadow's copies are the
        same trips)."""
        return set(self._query(
            "SELECT request_id, trip FROM trips WHERE labelled = 1 AND route != ?", (serving_config.SHADOW_ROUTE,)
        ))  # fmt: skip

    def label_of(self, request_id: str, trip: int) -> tuple[float, float | None] | None:
        """(tips, fare or None) of a trip's label."""
        found = self._query(
            "SELECT tips, fare FROM labels WHERE request_id = ? AND trip = ?", (request_id, trip)
        )
        return found[0] if found else None


def _base_name(path: Path) -> str:
    """A request-log file's name whether open or closed (`...csv.open` and `...csv` are one file)."""
    return path.name.removesuffix(request_log.OPEN_SUFFIX)


def _log_files(folder: Path) -> dict[str, Path]:
    """The request-log files in `folder` (not its archive), by base name; a closed file before an open
    one of the same name (a recovery writes the closed one first)."""
    found: dict[str, Path] = {}
    if folder.is_dir():
        for entry in sorted(folder.iterdir(), key=lambda p: p.name.endswith(request_log.OPEN_SUFFIX)):
            if entry.name.endswith((".csv", f".csv{request_log.OPEN_SUFFIX}")) and entry.is_file():
                found.setdefault(_base_name(entry), entry)
    return found


def _feedback_files(folder: Path) -> dict[str, Path]:
    return {path.name: path for path in sorted(folder.glob(FEEDBACK_FILES))} if folder.is_dir() else {}


def _complete_records(lines: list[bytes]) -> int:
    """How many of `lines` make whole CSV records: each ended by a newline, outside quotes (a quoted value
    may hold a newline; quotes inside one are doubled, so an even count closes it)."""
    complete = quotes = 0
    for index, line in enumerate(lines):
        quotes += line.count(b'"')
        if line.endswith(b"\n") and quotes % 2 == 0:
            complete = index + 1
    return complete


def _exists(folder: Path, name: str) -> bool:
    return (folder / name).exists() or (folder / f"{name}{request_log.OPEN_SUFFIX}").exists()


def _trip_values(columns: list[str], rows: Iterable[list[str]]) -> list[tuple]:
    """Request-log rows as the store keeps them: (request_id, trip, answered, version, route, prediction,
    fare, key_slice); rows that name no trip, or that no server wrote, left out."""
    try:
        at = [columns.index(name) for name in TRIP_COLUMNS]
    except ValueError:  # not a request-log file
        return []
    fare_at = columns.index(features.FARE) if features.FARE in columns else None
    key_slice = [
        (columns.index(f) if f in columns else None, value) for f, value in pipeline_config.KEY_SLICE
    ]
    found = []
    for row in rows:
        try:
            request_id, trip, answered, version, route, prediction = (row[i] for i in at)
            fare = row[fare_at].strip() if fare_at is not None else ""
            in_slice = all(i is not None and row[i] == value for i, value in key_slice)
            if request_id:
                found.append((request_id, int(trip or 0), datetime.datetime.fromisoformat(answered).timestamp(),
                              version, route, float(prediction), float(fare) if fare else None, int(in_slice)))  # fmt: skip
        except (IndexError, ValueError):
            continue
    return found


def _label_values(columns: list[str], rows: Iterable[list[str]]) -> list[tuple]:
    """Feedback rows as the store keeps them: (request_id, trip, tips, fare or None, received); a torn or
    hand-edited row that is not a label left out."""
    try:
        at = [columns.index(name) for name in FEEDBACK_COLUMNS]
    except ValueError:
        return []
    found = []
    for row in rows:
        try:
            request_id, trip, tips, fare, received = (row[i] for i in at)
            found.append(
                (request_id, int(trip or 0), float(tips), float(fare) if fare else None, float(received))
            )
        except (IndexError, ValueError):
            continue
    return found
