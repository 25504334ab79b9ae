"""Turns real taxi span folders into the faults production data has, one function per fault.

Each corruption rewrites the newest span (the one a run ingests) of a `span-N/data.csv` layout, as
written by `inputs.taxi_sample.write_spans`, and is seeded where it picks rows. The table in schema/README.md
("Corrupted data") lists which mechanism catches each.
"""

import csv
import random
from pathlib import Path

SEED = 20162


def newest_span_file(data_root: Path) -> Path:
    return max(data_root.glob("span-*/data.csv"), key=lambda p: int(p.parent.name.split("-")[1]))


def _read(path: Path) -> tuple[list[str], list[list[str]]]:
    with path.open(newline="") as handle:
        reader = csv.reader(handle)
        return next(reader), list(reader)


def _write(path: Path, header: list[str], rows: list[list[str]]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def _edit_rows(data_root: Path, edit, fraction: float = 1.0) -> None:
    """Applies `edit(header, row)` (in place) to a seeded `fraction` of the newest span's rows."""
    path = newest_span_file(data_root)
    header, rows = _read(path)
    chosen = random.Random(SEED).sample(range(len(rows)), max(1, round(fraction * len(rows))))
    for index in chosen:
        edit(header, rows[index])
    _write(path, header, rows)


def missing_column(data_root: Path, column: str = "trip_miles") -> None:
    """An export that stopped writing a required column."""
    path = newest_span_file(data_root)
    header, rows = _read(path)
    drop = header.index(column)
    _write(path, header[:drop] + header[drop + 1 :], [row[:drop] + row[drop + 1 :] for row in rows])


def wrong_type(data_root: Path) -> None:
    """Trip durations written as text ('15 min') in a tenth of the rows: the column is no longer an integer."""

    def edit(header, row):
        seconds = row[header.index("trip_seconds")] or "0"
        row[header.index("trip_seconds")] = f"{int(seconds) // 60} min"

    _edit_rows(data_root, edit, fraction=0.1)


def out_of_domain(data_root: Path) -> None:
    """A new payment type, negative fares and hour 25, each in a different 5 % of the rows."""
    edits = [
        ("payment_type", lambda value: "Bitcoin"),
        ("fare", lambda value: f"-{value}"),
        ("trip_start_hour", lambda value: "25"),
    ]
    path = newest_span_file(data_root)
    header, rows = _read(path)
    order = random.Random(SEED).sample(range(len(rows)), len(rows))
    share = max(1, len(rows) // 20)
    for position, (column, change) in enumerate(edits):
        for index in order[position * share : (position + 1) * share]:
            rows[index][header.index(column)] = change(rows[index][header.index(column)])
    _write(path, header, rows)


def dead_feature(
    data_root: Path, columns: tuple[str, ...] = ("dropoff_latitude", "dropoff_longitude")
) -> None:
    """A sensor that stopped reporting: the dropoff GPS columns empty in every row."""

    def edit(header, row):
        for column in columns:
            row[header.index(column)] = ""

    _edit_rows(data_root, edit)


def fares_times_three(data_root: Path) -> None:
    """Every fare three times too large (a currency or units change upstream)."""

    def edit(header, row):
        row[header.index("fare")] = f"{float(row[header.index('fare')]) * 3:.2f}"

    _edit_rows(data_root, edit)


def label_flip(data_root: Path) -> None:
    """The label's relation to the features inverted: big tippers now tip nothing, everyone else 30 %."""

    def edit(header, row):
        fare, tips = float(row[header.index("fare")]), float(row[header.index("tips")])
        row[header.index("tips")] = "0.0" if tips > 0.2 * fare else f"{0.3 * fare:.2f}"

    _edit_rows(data_root, edit)


def truncated(data_root: Path) -> None:
    """A file cut off in the middle of a row (a copy that ran out of space)."""
    path = newest_span_file(data_root)
    content = path.read_bytes()
    cut = content.rfind(b"\n", 0, len(content) // 2)
    path.write_bytes(content[: cut + 20])


def garbled(data_root: Path) -> None:
    """Bytes that are not text in the middle of the file (a bad disk block, a binary written as CSV)."""
    path = newest_span_file(data_root)
    content = path.read_bytes()
    middle = content.find(b"\n", len(content) // 2) + 1
    path.write_bytes(content[:middle] + bytes(range(128, 256)) + content[middle:])


def empty_span(data_root: Path) -> None:
    """A span whose export wrote the header and nothing else."""
    path = newest_span_file(data_root)
    header, _ = _read(path)
    _write(path, header, [])


def duplicated_rows(data_root: Path) -> None:
    """The span's rows written twice (an export retried after a partial failure)."""
    path = newest_span_file(data_root)
    header, rows = _read(path)
    _write(path, header, rows + rows)


def serving_fares_in_cents(serving_logs: Path) -> None:
    """Serving requests whose fare arrives in cents: training/serving skew from a serving-side bug."""
    for path in serving_logs.glob("*.csv"):
        header, rows = _read(path)
        for row in rows:
            row[header.index("fare")] = f"{float(row[header.index('fare')]) * 100:.0f}"
        _write(path, header, rows)
