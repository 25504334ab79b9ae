"""Request logs as the model servers write them: closed files, which the monitor and the pipeline read."""

import csv
from pathlib import Path

from serving import request_log


def write_request_log(folder: Path, trips: list[dict], name: str = "requests-1.csv") -> Path:
    """A closed request-log file `name` in `folder`, one row a trip: each a dict of `request_log.COLUMNS`'
    values (request_id, trip, time, model_version, route, prediction, then raw features); the columns a
    trip leaves out are empty."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(request_log.COLUMNS)
        writer.writerows(map(as_row, trips))
    return path


def as_row(trip: dict) -> list:
    """A trip (a dict of `request_log.COLUMNS`' values) as a request-log row; missing columns empty."""
    return [trip.get(column, "") for column in request_log.COLUMNS]
