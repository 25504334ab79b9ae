"""The request log: one CSV row per answered trip, in the folder the pipeline reads as serving logs.

Columns: the request's id, the trip's place in it, time, model version, route (stable, canary or
shadow), latency and prediction, then the trip's raw features: the training data's columns without `tips`. The pipeline's
`--serving-logs` reads the folder as it is (it reports the first seven columns and leaves them out), so its
skew check compares real served traffic with the training data.

Rows are buffered and appended every `flush_seconds` to the writer's open file, `requests-....csv.open`,
which no reader reads; when it reaches `max_bytes` or `max_seconds` it is renamed to `.csv`, complete. A
crash therefore loses at most one flush interval, and a torn last line can only be in a `.open` file: the
next writer in the folder recovers such files (cutting the torn line) before it starts. A server closes
its open file early on SIGUSR1 (as nginx reopens its logs), so that a reader, such as the retraining
loop's pipeline run, sees every trip logged until then (`serving.stack.close_request_logs`).

A request's rows are built here too (`request_rows`), lazily: the server hands over its columns, and the
log's thread formats them, column by column, when it writes them, off the request's path.
"""

import csv
import datetime
import io
import itertools
import os
import threading
import time
from collections.abc import Iterable
from pathlib import Path

from config import serving as serving_config
from models import features

OPEN_SUFFIX = ".open"
WRITE_CHUNK_ROWS = 256
# A trip is (request_id, trip): a request may carry several, numbered from 0 in the order sent.
LOG_COLUMNS = [
    "request_id",
    "trip",
    "time",
    "model_version",
    serving_config.REQUEST_LOG_ROUTE_COLUMN,
    "latency_ms",
    "prediction",
]
COLUMNS = LOG_COLUMNS + features.SERVING_COLUMNS


class RequestRows:
    """A request's rows (COLUMNS), answered now: the request's fields repeated per trip, then each trip's
    probability and raw features (`columns`: features.SERVING_COLUMNS, one list per column).

    Formatted as CSV only when the log's thread writes them, column by column (`csv_text`): each column's
    cells in one C-level pass, then one join per line. That costs about half of `csv.writer` row by row,
    and gives the same text (request_log_test.py compares them)."""

    def __init__(self, request_id: str, version: str, route: str, seconds: float, probabilities, columns):
        trips = len(probabilities)
        if any(len(column) != trips for column in columns):  # checked now: the log's thread must not fail
            raise ValueError(f"{trips} predictions for columns of {sorted({len(c) for c in columns})} trips")
        timestamp = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")
        self.request = [request_id, timestamp, version, route, round(seconds * 1000, 3)]
        self.probabilities, self.columns = probabilities, columns

    def __iter__(self):
        """The rows, as lists of values (what `csv.writer` takes)."""
        request_id, timestamp, version, route, latency = self.request
        for trip, probability in enumerate(self.probabilities):
            yield [request_id, trip, timestamp, version, route, latency, round(probability, 6),
                   *(column[trip] for column in self.columns)]  # fmt: skip

    def csv_text(self) -> str:
        """The rows as CSV lines, each ending in a newline: exactly what `csv.writer` (QUOTE_MINIMAL,
        lineterminator "\\n") writes for them."""
        trips = len(self.probabilities)
        request_id, after_trip = _cells([self.request[0]])[0], ",".join(_cells(self.request[1:]))
        probabilities = map(round, self.probabilities, itertools.repeat(6, trips))
        cells = [[request_id] * trips, list(map(str, range(trips))), [after_trip] * trips,
                 list(map(str, probabilities)), *map(_cells, self.columns)]  # fmt: skip
        return "\n".join(map(",".join, zip(*cells, strict=True))) + "\n"


def request_rows(request_id: str, version: str, route: str, seconds: float, probabilities, columns):
    """A request's rows, built when the log's thread writes them (RequestRows)."""
    return RequestRows(request_id, version, route, seconds, probabilities, columns)


# What makes `csv.writer` quote a cell (QUOTE_MINIMAL, lineterminator "\n"): the delimiter, the quote
# character, the line terminator. (A lone CR is not quoted: the request contract refuses one.)
QUOTED = (",", '"', "\n")


def _quoted(text: str) -> str:
    return '"' + text.replace('"', '""') + '"' if any(c in text for c in QUOTED) else text


def _cells(values: list) -> list[str]:
    """A column's values as CSV cells, as `csv.writer` writes them (None as an empty cell)."""
    if values.count(None) == len(values):
        return [""] * len(values)
    kinds = set(map(type, values))
    if kinds == {str}:
        return list(map(_quoted, values)) if any(c in "".join(values) for c in QUOTED) else values
    if str not in kinds and type(None) not in kinds:
        return list(map(str, values))
    return ["" if v is None else _quoted(v) if type(v) is str else str(v) for v in values]


def _writer_alive(path: Path) -> bool:
    """Whether the process whose pid ends the file's name (`...-<pid>.csv.open`) is running."""
    try:
        os.kill(int(path.name[: -len(f".csv{OPEN_SUFFIX}")].rsplit("-", 1)[1]), 0)
    except (ValueError, IndexError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


def recover(folder: Path) -> list[Path]:
    """Closes the `.open` files writers left when they died (a live writer's are its own): cuts a torn
    last line and renames to `.csv`."""
    recovered = []
    for path in sorted(folder.glob(f"*.csv{OPEN_SUFFIX}")):
        if _writer_alive(path):
            continue
        content = path.read_bytes()
        complete = content[: content.rfind(b"\n") + 1]
        if complete.count(b"\n") > 1:  # a header and at least one row
            target = path.with_name(path.name[: -len(OPEN_SUFFIX)])
            target.write_bytes(complete)
            recovered.append(target)
        path.unlink()
    return recovered


class RequestLog:
    """Appends rows from any thread; a background thread flushes and rotates.

    A request's rows may be handed over as any iterable (`zip` of its columns, say): they are only built
    when the background thread writes them, off the request's path. None is written as an empty cell.
    """

    def __init__(
        self, folder: Path, writer_name: str, flush_seconds: float, max_bytes: int, max_seconds: float
    ):
        self.folder = folder
        self.writer_name = writer_name
        self.flush_seconds, self.max_bytes, self.max_seconds = flush_seconds, max_bytes, max_seconds
        folder.mkdir(parents=True, exist_ok=True)
        recover(folder)
        self._batches: list[Iterable[Iterable]] = []
        self._lock = threading.Lock()
        self._file: Path | None = None
        self._opened = 0.0
        self._stop = threading.Event()
        self._close_file = threading.Event()
        self._thread = threading.Thread(target=self._run, name="request-log", daemon=True)
        self._thread.start()

    def append(self, rows: Iterable[Iterable]) -> None:
        """Queues `rows` (consumed once, at the next flush; nothing they read may change meanwhile)."""
        with self._lock:
            self._batches.append(rows)

    def close_file_soon(self) -> None:
        """Closes the open file at the next flush, so readers get what was logged until now (safe to call
        from a signal handler)."""
        self._close_file.set()

    def close(self) -> None:
        """Flushes what is buffered and closes the open file (a clean stop loses nothing)."""
        self._stop.set()
        self._thread.join(timeout=10)
        self.flush()
        self._rotate()

    def flush(self) -> None:
        with self._lock:
            batches, self._batches = self._batches, []
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        if self._file is None:
            writer.writerow(COLUMNS)
        header_end = text.tell()
        for rows in batches:
            if isinstance(rows, RequestRows):
                text.write(rows.csv_text())
                continue
            rows = iter(rows)
            # A few hundred rows at a time: `writerows` holds the GIL until it returns, and the server's
            # event loop must not wait behind a second's worth of batched trips.
            while chunk := list(itertools.islice(rows, WRITE_CHUNK_ROWS)):
                writer.writerows(chunk)
        if text.tell() == header_end:  # nothing logged since the last flush
            return
        if self._file is None:
            stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
            self._file = self.folder / f"requests-{stamp}-{self.writer_name}-{os.getpid()}.csv{OPEN_SUFFIX}"
            self._opened = time.monotonic()
        with self._file.open("a", encoding="utf-8") as handle:
            handle.write(text.getvalue())
            handle.flush()
            os.fsync(handle.fileno())
        if self._file.stat().st_size >= self.max_bytes or time.monotonic() - self._opened >= self.max_seconds:
            self._rotate()

    def _rotate(self) -> None:
        if self._file is not None:
            self._file.rename(self._file.with_name(self._file.name[: -len(OPEN_SUFFIX)]))
            self._file = None

    def _run(self) -> None:
        while not self._stop.wait(self.flush_seconds):
            self.flush()
            if self._close_file.is_set() or (
                self._file is not None and time.monotonic() - self._opened >= self.max_seconds
            ):
                self._close_file.clear()
                self._rotate()
