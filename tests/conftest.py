"""Shared fixtures: small real taxi data laid out as spans."""

import csv
from pathlib import Path

import pytest

from pipeline import taxi_sample


def write_sampled_spans(data_root: Path, keep_every: int) -> dict[int, int]:
    """Writes every `keep_every`-th row of the real Chicago Taxi sample as span folders under `data_root`."""
    source = taxi_sample.sample_csv_path()
    sampled = data_root.parent / f"{data_root.name}_sample.csv"
    with source.open(newline="") as reader_handle, sampled.open("w", newline="") as writer_handle:
        reader, writer = csv.reader(reader_handle), csv.writer(writer_handle, lineterminator="\n")
        writer.writerow(next(reader))
        writer.writerows(row for index, row in enumerate(reader) if index % keep_every == 0)
    return taxi_sample.write_spans(sampled, data_root)


@pytest.fixture
def small_taxi_spans(tmp_path) -> Path:
    """About 2,100 real taxi rows (every 7th), as eight half-year span folders."""
    data_root = tmp_path / "data"
    write_sampled_spans(data_root, keep_every=7)
    return data_root
