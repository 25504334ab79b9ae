"""Batch scoring: every trip of a span through the production model, offline, predictions beside trip ids.

For decisions that need no request path: a daily list of likely big tippers, a backfill, or a span scored
before a release to compare with production. The model is the one serving loads (registry/versions.py:
production, whole), called as the server calls it (serving/model.py's prepared `raw_features` call), on
columns Arrow reads from the span's CSV files in blocks, so no row goes through Python one at a time.

A trip's id is `<span>/<file>/<row>`: the span, the CSV file's name in its span folder, and the row's
number in that file (1 = the first row after the header). It is stable as long as the file is: the data
has no trip id of its own.
"""

import csv
import dataclasses
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from config import pipeline as pipeline_config
from registry import versions
from serving.model import LoadedModel

TRIP_ID, PROBABILITY = "trip_id", "big_tipper_probability"
FORMATS = ("csv", "parquet")
# Rows Arrow hands over at a time, and so rows per model call: large enough that the model call, not
# Python, sets the pace; small enough that a block of the 1M-row file stays in tens of MB.
BLOCK_BYTES = 8 << 20


class ScoringError(Exception):
    """Input the scorer cannot use; the message names the file or folder and what was expected."""


@dataclasses.dataclass(frozen=True)
class Scored:
    output: Path
    version: str
    trips: int
    seconds: float


def span_files(spans_dir: Path, span: int) -> list[Path]:
    folder = spans_dir / f"{pipeline_config.SPAN_FOLDER_PREFIX}{span}"
    files = sorted(folder.glob("*.csv"))
    if not files:
        available = sorted(p.name for p in spans_dir.glob(f"{pipeline_config.SPAN_FOLDER_PREFIX}*"))
        raise ScoringError(
            f"{folder} holds no CSV file to score; span folders in {spans_dir}: {', '.join(available) or 'none'}"
        )
    return files


def _header(path: Path) -> list[str]:
    """The CSV file's column names, quoted or not, from its first line alone."""
    with path.open(newline="", encoding="utf-8", errors="replace") as handle:
        return next(csv.reader(handle), [])


def _blocks(path: Path, model: LoadedModel) -> Iterator[pa.RecordBatch]:
    """The file's rows in blocks, each model input typed as the model takes it (other columns dropped)."""
    arrow_types = {
        name: pa.string() if numpy_type is object else pa.from_numpy_dtype(numpy_type)
        for name, numpy_type, _ in model.raw_inputs
    }
    try:
        header = _header(path)
        wanted = [name for name in arrow_types if name in header]
        # Arrow opens the file by its path: handed a Python file object, its background reader thread
        # needs the GIL for every read, and closing the reader mid-file then waits on it forever.
        reader = pa_csv.open_csv(
            str(path),
            read_options=pa_csv.ReadOptions(block_size=BLOCK_BYTES),
            convert_options=pa_csv.ConvertOptions(
                include_columns=wanted,
                column_types={name: arrow_types[name] for name in wanted},
                strings_can_be_null=False,
            ),
        )
        yield from reader
    except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
        raise ScoringError(f"{path}: not a CSV of taxi trips the model can read ({error})") from error


def _columns(block: pa.RecordBatch, model: LoadedModel) -> list[np.ndarray]:
    """The block as the model's input arrays, in its order; absent columns and empty cells read as missing."""
    arrays = []
    for name, numpy_type, marker in model.raw_inputs:
        if name in block.schema.names:
            column = block.column(name).fill_null(marker)
            arrays.append(np.asarray(column.to_numpy(zero_copy_only=False), dtype=numpy_type))
        else:
            arrays.append(np.full(block.num_rows, marker, dtype=numpy_type))
    return arrays


def score_span(spans_dir: Path, span: int, serving_dir: Path, output: Path, progress=None) -> Scored:
    """Scores every trip of span `span` with production; writes `trip_id,big_tipper_probability` to
    `output` (.csv or .parquet), whole or not at all (a temporary file, renamed)."""
    files = span_files(spans_dir, span)
    production = versions.production_path(serving_dir)
    if production is None:
        raise ScoringError(
            f"{serving_dir} holds no model in production to score with (run the pipeline first)"
        )
    if output.suffix.lstrip(".") not in FORMATS:
        raise ScoringError(f"{output}: the output's suffix names its format, one of .{', .'.join(FORMATS)}")
    model = LoadedModel(production)
    progress = progress or sys.stderr
    started, trips, parts = time.monotonic(), 0, []
    for path in files:
        rows_in_file = 0
        for block in _blocks(path, model):
            probabilities = model.predict_arrays(_columns(block, model))
            ids = [
                f"{span}/{path.name}/{row}"
                for row in range(rows_in_file + 1, rows_in_file + block.num_rows + 1)
            ]
            parts.append(pa.table({TRIP_ID: ids, PROBABILITY: pa.array(probabilities, pa.float32())}))
            rows_in_file += block.num_rows
            trips += block.num_rows
            rate = trips / max(time.monotonic() - started, 1e-9)
            print(
                f"\rscored {trips:,} trips of span {span} ({rate:,.0f} a second)",
                end="",
                file=progress,
                flush=True,
            )
    print(file=progress)
    empty = {TRIP_ID: pa.array([], pa.string()), PROBABILITY: pa.array([], pa.float32())}
    table = pa.concat_tables(parts) if parts else pa.table(empty)
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(f".{output.name}.partial")
    if output.suffix == ".parquet":
        pq.write_table(table, partial)
    else:
        pa_csv.write_csv(table, partial)
    partial.rename(output)
    return Scored(output, production.name, trips, time.monotonic() - started)
