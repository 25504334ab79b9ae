"""Labelled served trips become training data: a new file in the span of each trip's half-year, in the
pipeline's data layout (`<data root>/span-YYYYH/`), with the training columns including `tips`.

Each file also holds each trip's `request_id` and `trip`, which the pipeline reports and leaves out;
they are how an export knows which trips earlier exports wrote, so no trip is written twice, even after
a crash (a file appears whole, by rename, or not at all). A trip without a fare, in the request or in
its feedback, has no label to compute and is not written (counted and reported).
"""

import csv
import dataclasses
import datetime
from pathlib import Path

from config import pipeline as pipeline_config
from config import serving as serving_config
from models import features

KEY_COLUMNS = ["request_id", "trip"]
COLUMNS = KEY_COLUMNS + features.REQUIRED_COLUMNS
FILE_PREFIX = "served-"


@dataclasses.dataclass
class Export:
    written: dict[int, Path]  # span -> file
    rows: int
    without_fare: int
    exported_before: int  # labelled trips earlier exports wrote already


def exported_keys(data_root: Path) -> set[tuple[str, str]]:
    """(request_id, trip) of every trip earlier exports wrote into `data_root`."""
    keys = set()
    for path in sorted(data_root.glob(f"{pipeline_config.SPAN_FOLDER_PREFIX}*/{FILE_PREFIX}*.csv")):
        with path.open(newline="", encoding="utf-8") as handle:
            keys.update((row["request_id"], row["trip"]) for row in csv.DictReader(handle))
    return keys


def new_labelled(labelled: list[dict], data_root: Path) -> tuple[list[dict], int]:
    """(trips labelled and answered by stable or a canary that no export wrote yet, how many were)."""
    done = exported_keys(data_root)
    answered = {}
    for row in labelled:
        if row["route"] != serving_config.SHADOW_ROUTE:
            answered.setdefault((row["request_id"], str(row["trip"])), row)
    new = [row for key, row in answered.items() if key not in done]
    return new, len(answered) - len(new)


def span_of(row: dict) -> int:
    """The half-year (YYYYH) of the trip's start, else of when it was answered."""
    timestamp = row.get(features.TIMESTAMP) or ""
    when = (
        datetime.datetime.fromtimestamp(int(float(timestamp)), tz=datetime.timezone.utc)
        if timestamp.strip()
        else datetime.datetime.fromisoformat(row["time"])
    )
    return when.year * 10 + (1 if when.month <= 6 else 2)


def export(labelled: list[dict], data_root: Path, now: datetime.datetime | None = None) -> Export:
    """Writes the new labelled trips into their spans' folders; returns what was written."""
    new, before = new_labelled(labelled, data_root)
    with_fare = [row for row in new if str(row.get(features.FARE, "")).strip() != ""]
    by_span: dict[int, list[dict]] = {}
    for row in with_fare:
        by_span.setdefault(span_of(row), []).append(row)
    stamp = (now or datetime.datetime.now(datetime.timezone.utc)).strftime("%Y%m%dT%H%M%S%fZ")
    written = {}
    for span, rows in sorted(by_span.items()):
        folder = data_root / f"{pipeline_config.SPAN_FOLDER_PREFIX}{span}"
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{FILE_PREFIX}{stamp}.csv"
        temporary = folder / f".{target.name}.tmp"
        with temporary.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(COLUMNS)
            for row in sorted(rows, key=lambda r: (r["time"], r["request_id"], int(r["trip"]))):
                writer.writerow([_text(row.get(column)) for column in COLUMNS])
        temporary.replace(target)
        written[span] = target
    return Export(written, len(with_fare), len(new) - len(with_fare), before)


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)
