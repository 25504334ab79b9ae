"""Labels that arrive later: a trip's tip, known minutes after its prediction, joined with the request log.

A feedback row names a served trip, `request_id` and `trip` (its place in the request, 0 for a one-trip
request), and gives its `tips` (and `fare`, where the final fare differs from the one predicted on). It
arrives by the stack's HTTP endpoint (`POST /v1/feedback`, serving/monitor's service) or as a CSV
(`taxi-pipeline monitor feedback FILE`); both append it, as received, to `outputs/feedback/`.

Nothing is silently dropped or counted twice: a malformed row is refused with the reason (400, or a
line of the CLI's report); a second label for the same trip is refused and counted, the first one kept.
The join with the request log is the monitor's store's (monitoring/store.py): a label for a trip the log
does not hold yet waits (the log is flushed every second) and is counted as unknown after
`FEEDBACK_GRACE_SECONDS`.
"""

import csv
import dataclasses
import datetime
import io
import math
import os
import time
from collections.abc import Iterator
from pathlib import Path

from monitoring import store
from serving import request_log


class BadFeedback(Exception):
    """A feedback row that cannot be a label; the message names the row and the field."""


@dataclasses.dataclass(frozen=True)
class Feedback:
    request_id: str
    trip: int
    tips: float
    fare: float | None
    received: float  # Unix time

    @property
    def key(self) -> tuple[str, int]:
        return self.request_id, self.trip


def parse(rows: list[dict], received: float | None = None) -> tuple[list[Feedback], list[str]]:
    """(valid feedback, one reason per refused row naming it). `rows`: dicts with the columns above."""
    now = received or time.time()
    valid, refused = [], []
    for index, row in enumerate(rows):
        try:
            valid.append(_one(row, now))
        except BadFeedback as error:
            refused.append(f"row {index}: {error}")
    return valid, refused


def _one(row: dict, received: float) -> Feedback:
    if not isinstance(row, dict):
        raise BadFeedback("expected an object with request_id, tips (and trip, fare)")
    request_id = row.get("request_id")
    if not isinstance(request_id, str) or not request_id.strip():
        raise BadFeedback("request_id is missing: it is the x-request-id header of the prediction's answer")
    trip = _number(row, "trip", default=0, integer=True)
    tips = _number(row, "tips")
    fare = _number(row, "fare", default=None)
    if tips < 0 or (fare is not None and fare < 0):
        raise BadFeedback("tips and fare are amounts in dollars, at least 0")
    return Feedback(request_id.strip(), trip, tips, fare, received)


def _number(row: dict, name: str, default=..., integer: bool = False):
    value = row.get(name)
    if value is None or value == "":
        if default is ...:
            raise BadFeedback(f"{name} is missing")
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise BadFeedback(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(number) or (integer and not number.is_integer()):
        raise BadFeedback(f"{name} must be a{'n integer' if integer else ' finite number'}, got {value!r}")
    return int(number) if integer else number


class FeedbackStore:
    """Keeps the first label of each trip, as received: one CSV per writer and day, complete lines only,
    and in the monitor's store (monitoring/store.py), whose unique key on (request_id, trip) decides, for
    every process that stores labels, which label is a trip's first. A second label for a trip is a
    duplicate: reported to the sender, counted, not stored."""

    def __init__(self, folder: Path):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.store = store.TripStore.of(folder)

    def add(self, received: list[Feedback]) -> tuple[list[Feedback], list[Feedback]]:
        """(stored, duplicates) of `received`. The CSV is written before the store's transaction ends: a
        label the store holds is on disk as received."""
        with self.store.transaction():
            stored, duplicates = [], []
            for item in received:
                new = self.store.add_label(item.request_id, item.trip, item.tips, item.fare, item.received)
                (stored if new else duplicates).append(item)
            self._append(stored)
        return stored, duplicates

    def _append(self, received: list[Feedback]) -> None:
        if not received:
            return
        day = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d")
        path = self.folder / f"feedback-{day}-{os.getpid()}.csv"
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        if not path.exists():
            writer.writerow(store.FEEDBACK_COLUMNS)
        writer.writerows(
            [f.request_id, f.trip, f.tips, "" if f.fare is None else f.fare, f.received] for f in received
        )
        with path.open("a", encoding="utf-8") as handle:
            before = handle.tell()
            handle.write(text.getvalue())
            handle.flush()
            os.fsync(handle.fileno())
            self.store.wrote_feedback(path.name, before, handle.tell())


def read_feedback(folder: Path) -> list[Feedback]:
    """Every feedback row stored, as received, in the order received."""
    found = []
    for path in sorted(folder.glob(store.FEEDBACK_FILES)) if folder.is_dir() else []:
        with path.open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                if len(row) == len(store.FEEDBACK_COLUMNS) and None not in row.values():  # a torn line: skip
                    found.append(_one(row, float(row["received"])))
    return sorted(found, key=lambda f: f.received)


def read_requests(folder: Path) -> Iterator[dict]:
    """Every logged trip (all routes), from closed and open request-log files (complete lines only), one
    file at a time: what the loop exports from and the page's drift compares."""
    for path in sorted(folder.glob("*.csv")) + sorted(folder.glob(f"*.csv{request_log.OPEN_SUFFIX}")):
        try:
            content = path.read_text(encoding="utf-8")
        except FileNotFoundError:  # closed (renamed) since it was listed: its closed name was, or is next
            continue
        complete = content[: content.rfind("\n") + 1]
        yield from (row for row in csv.DictReader(io.StringIO(complete)) if row.get("request_id"))
