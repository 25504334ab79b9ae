"""Labels that arrive later: a trip's tip, known minutes after its prediction, joined with the request log.

A feedback row names a served trip, `request_id` and `trip` (its place in the request, 0 for a one-trip
request), and gives its `tips` (and `fare`, where the final fare differs from the one predicted on). It
arrives by the stack's HTTP endpoint (`POST /v1/feedback`, serving/monitor's service) or as a CSV
(`taxi-pipeline monitor feedback FILE`); both append it, as received, to `outputs/feedback/`.

Nothing is silently dropped or counted twice: a malformed row is refused with the reason (400, or a
line of the CLI's report); a row for a trip the log does not hold yet waits (the log is flushed every
second) and is rejected as unknown after `FEEDBACK_GRACE_SECONDS`; a second label for the same trip is
counted as a duplicate and the first one kept.
"""

import csv
import dataclasses
import datetime
import io
import math
import os
import threading
import time
from pathlib import Path

from config import monitoring as monitoring_config
from models import features
from serving import request_log

FEEDBACK_COLUMNS = ["request_id", "trip", "tips", "fare", "received"]


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
    if len(request_id) > monitoring_config.FEEDBACK_MAX_REQUEST_ID_CHARACTERS or not request_id.isprintable():
        raise BadFeedback(
            f"request_id must be the x-request-id header of the prediction's answer: printable text of at "
            f"most {monitoring_config.FEEDBACK_MAX_REQUEST_ID_CHARACTERS} characters, got {request_id[:50]!r}"
        )
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
    """Keeps the first label of each trip, as received: one CSV per writer and day, complete lines only.
    A second label for a trip is a duplicate: reported to the sender, counted, not stored."""

    def __init__(self, folder: Path):
        self.folder = folder
        self._lock = threading.Lock()
        folder.mkdir(parents=True, exist_ok=True)
        self._known = {item.key for item in read_feedback(folder)}

    def add(self, received: list[Feedback]) -> tuple[list[Feedback], list[Feedback]]:
        """(stored, duplicates) of `received`."""
        with self._lock:
            stored, duplicates = [], []
            for item in received:
                (duplicates if item.key in self._known else stored).append(item)
                self._known.add(item.key)
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
            writer.writerow(FEEDBACK_COLUMNS)
        writer.writerows(
            [f.request_id, f.trip, f.tips, "" if f.fare is None else f.fare, f.received] for f in received
        )
        with path.open("a", encoding="utf-8") as handle:
            handle.write(text.getvalue())
            handle.flush()
            os.fsync(handle.fileno())


def read_feedback(folder: Path) -> list[Feedback]:
    """Every feedback row stored, in the order received."""
    found = []
    for path in sorted(folder.glob("feedback-*.csv")) if folder.is_dir() else []:
        with path.open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                if len(row) == len(FEEDBACK_COLUMNS) and None not in row.values():  # a torn last line: skip
                    found.append(_one(row, float(row["received"])))
    return sorted(found, key=lambda f: f.received)


def read_requests(folder: Path) -> list[dict]:
    """Every logged trip (all routes), from closed and open request-log files (complete lines only)."""
    rows = []
    for path in sorted(folder.glob("*.csv")) + sorted(folder.glob(f"*.csv{request_log.OPEN_SUFFIX}")):
        content = path.read_text(encoding="utf-8")
        complete = content[: content.rfind("\n") + 1]
        rows.extend(row for row in csv.DictReader(io.StringIO(complete)) if row.get("request_id"))
    return rows


@dataclasses.dataclass
class Joined:
    """The request log and the feedback, joined: labelled trips (one per logged prediction: a shadowed
    trip has two), and what could not be joined."""

    labelled: list[dict]
    unknown: list[Feedback]  # no such trip in the log, past the grace period
    duplicates: list[Feedback]  # a second label for a trip already labelled
    waiting: int  # unknown yet, within the grace period


def join(
    requests: list[dict], feedback: list[Feedback], grace_seconds: float, now: float | None = None
) -> Joined:
    now = now or time.time()
    by_trip: dict[tuple[str, int], list[dict]] = {}
    for row in requests:
        by_trip.setdefault((row["request_id"], int(row["trip"] or 0)), []).append(row)
    labels, duplicates, unknown, waiting = {}, [], [], 0
    for item in feedback:
        if item.key in labels:
            duplicates.append(item)
        elif item.key in by_trip:
            labels[item.key] = item
        elif now - item.received > grace_seconds:
            unknown.append(item)
        else:
            waiting += 1
    labelled = []
    for key, item in labels.items():
        for row in by_trip[key]:
            logged_fare = (row.get(features.FARE) or "").strip()
            fare = item.fare if item.fare is not None else (float(logged_fare) if logged_fare else None)
            label = int(features.is_big_tipper(item.tips, fare)) if fare is not None else None
            labelled.append(
                dict(row, **{
                    features.TIPS: item.tips,
                    features.FARE: item.fare if item.fare is not None else logged_fare,
                    features.LABEL: label,
                })
            )  # fmt: skip
    return Joined(labelled, unknown, duplicates, waiting)
