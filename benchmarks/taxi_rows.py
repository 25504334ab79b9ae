"""N rows with the taxi schema, resampled from the real sample with seeded noise, for scaling benchmarks.

    .venv/bin/python -m benchmarks.taxi_rows --rows 1000000 --output-dir build/bench/rows-1000000

Each generated row is a real row drawn at random (seeded), with its amounts and durations scaled by a
common factor of 0.9-1.1 (so tip/fare, the label, is kept), its coordinates jittered by ~100 m and its
start time moved by up to a week within the same half-year. Spans keep the sample's relative sizes, so
drift and the evaluation window behave as on the real data. Written as `span-N/data.csv` under the
output folder (the layout `--data-root` takes), plus the serving logs the sample would have.
"""

import argparse
import csv
import datetime
import random
from pathlib import Path

from inputs import checks, taxi_sample

SEED = 15002
AMOUNT_COLUMNS = ("fare", "tips", "trip_miles")
COORDINATE_COLUMNS = ("pickup_latitude", "pickup_longitude", "dropoff_latitude", "dropoff_longitude")
WEEK_SECONDS = 7 * 24 * 3600


def _jittered(row: list[str], index: dict[str, int], rng: random.Random) -> list[str]:
    row = list(row)
    scale = rng.uniform(0.9, 1.1)
    for column in AMOUNT_COLUMNS:
        if row[index[column]]:
            row[index[column]] = f"{float(row[index[column]]) * scale:.2f}"
    if row[index["trip_seconds"]]:
        row[index["trip_seconds"]] = str(round(int(row[index["trip_seconds"]]) * scale))
    for column in COORDINATE_COLUMNS:
        if row[index[column]]:
            row[index[column]] = f"{float(row[index[column]]) + rng.gauss(0, 0.001):.6f}"
    start = int(row[index["trip_start_timestamp"]])
    moved = start + rng.randint(-WEEK_SECONDS, WEEK_SECONDS)
    if taxi_sample.span_of(moved) == taxi_sample.span_of(start):
        row[index["trip_start_timestamp"]] = str(moved)
        # Hour, day and month follow the moved start, as the input checks require.
        when = datetime.datetime.fromtimestamp(moved, tz=datetime.timezone.utc)
        for column, value in checks.time_columns(when).items():
            row[index[column]] = str(value)
    return row


def write_rows(rows: int, output_dir: Path, seed: int = SEED) -> Path:
    """Writes `rows` generated rows as span folders under `output_dir`; returns the combined CSV's path."""
    with taxi_sample.sample_csv_path().open(newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        real = list(reader)
    index = {column: position for position, column in enumerate(header)}
    rng = random.Random(seed)
    output_dir.mkdir(parents=True, exist_ok=True)
    combined = output_dir / "generated.csv"
    with combined.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        for _ in range(rows):
            writer.writerow(_jittered(rng.choice(real), index, rng))
    spans = taxi_sample.write_spans(combined, output_dir / "spans")
    newest = output_dir / "spans" / f"span-{max(spans)}" / "data.csv"
    taxi_sample.write_serving_logs(newest, output_dir / "serving_logs")
    return combined


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, required=True)
    parser.add_argument("--output-dir", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args()
    write_rows(args.rows, args.output_dir, args.seed)
    print(f"Wrote {args.rows} rows as spans under {args.output_dir / 'spans'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
