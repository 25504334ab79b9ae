"""Checks of the pipeline's inputs, made before anything runs: span folders of taxi CSVs, serving logs, the schema.

Serving request logs are a folder of CSVs with the same columns minus `tips`, read by their own ExampleGen.

Checks here are the ones statistics cannot make: that every file parses as CSV with the header's number
of fields, that a span is not empty, and that its rows are not repeated (a span written twice has the
same distributions as the original, so no statistic moves).
"""

import csv
from pathlib import Path

from models import features
from pipeline import configs


class InputError(Exception):
    """Bad input, explained for the person who supplied it: the file, the field and what was expected."""


def discover_spans(spans_dir: Path) -> dict[int, list[Path]]:
    """Span number -> its CSV files, for every `span-N/` folder under `spans_dir` holding CSVs."""
    if not spans_dir.is_dir():
        raise InputError(
            f"Input folder {spans_dir} does not exist. Expected a folder with one sub-folder per time span "
            f"named {configs.SPAN_FOLDER_PREFIX}N (N an integer, e.g. {configs.SPAN_FOLDER_PREFIX}20151) holding "
            "CSV files with the taxi columns; run `make data` to write the Chicago Taxi sample that way."
        )
    spans = {}
    for folder in sorted(spans_dir.glob(f"{configs.SPAN_FOLDER_PREFIX}*")):
        number = folder.name[len(configs.SPAN_FOLDER_PREFIX) :]
        if not folder.is_dir() or not number.isdigit():
            continue
        csv_files = sorted(folder.glob("*.csv"))
        if csv_files:
            spans[int(number)] = csv_files
    if not spans:
        raise InputError(
            f"Input folder {spans_dir} holds no span of data: expected sub-folders named "
            f"{configs.SPAN_FOLDER_PREFIX}N (N an integer) containing at least one .csv file each, found "
            f"{sorted(p.name for p in spans_dir.iterdir())[:10] or 'nothing'}."
        )
    return spans


def check_csv_headers(spans: dict[int, list[Path]], required_columns: list[str]) -> list[str]:
    """Returns the common header of all CSV files; raises InputError on a missing column or a mismatch.

    ExampleGen takes each split's column names from its first file, so every file must share one header.
    """
    expected_header = None
    for csv_file in (f for files in spans.values() for f in files):
        with csv_file.open(newline="") as handle:
            header = next(csv.reader(handle), [])
        if not header:
            raise InputError(f"{csv_file} is empty: expected a header line with the taxi columns, then rows.")
        missing = [column for column in required_columns if column not in header]
        if missing:
            raise InputError(
                f"{csv_file} lacks the required column(s) {', '.join(missing)}. Every CSV needs the columns "
                f"{', '.join(required_columns)}."
            )
        if expected_header is None:
            expected_header, first_file = header, csv_file
        elif header != expected_header:
            raise InputError(
                f"{csv_file} has the columns {header}, but {first_file} has {expected_header}: all CSV files "
                "must have the same columns in the same order."
            )
    return expected_header


def check_csv_rows(csv_file: Path, header: list[str], max_duplicate_fraction: float) -> int:
    """Raises InputError unless every row of `csv_file` decodes and has the header's number of fields,
    there is at least one row, and at most `max_duplicate_fraction` of the rows repeat an earlier one.

    Returns the number of rows. CsvExampleGen would stop on the first malformed row with a Beam
    traceback; here the message names the file and the line.
    """
    first_seen: dict[int, int] = {}
    duplicates: list[tuple[int, int]] = []
    rows = 0
    line_number = 1
    try:
        with csv_file.open(newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle)
            next(reader, None)  # the header, checked by check_csv_headers
            for row in reader:
                line_number = reader.line_num
                if len(row) != len(header):
                    raise InputError(
                        f"{csv_file}, line {line_number}: {len(row)} field(s), expected {len(header)} "
                        f"(one per header column: {', '.join(header)}). The file is truncated or garbled."
                    )
                rows += 1
                key = hash(tuple(row))
                if key in first_seen:
                    duplicates.append((first_seen[key], line_number))
                else:
                    first_seen[key] = line_number
    except (UnicodeDecodeError, csv.Error) as error:
        raise InputError(
            f"{csv_file}, after line {line_number}: not readable as UTF-8 CSV ({error}). The file is garbled."
        ) from error
    if rows == 0:
        raise InputError(
            f"{csv_file} has a header but no rows: the span is empty. Expected at least one trip per span "
            "file; remove the file (or its span folder) if the span really has no data."
        )
    if len(duplicates) > max_duplicate_fraction * rows:
        original, repeat = duplicates[0]
        raise InputError(
            f"{csv_file}: {len(duplicates)} of its {rows} rows repeat an earlier row exactly "
            f"({len(duplicates) / rows:.1%}, at most {max_duplicate_fraction:.0%} expected), e.g. line {repeat} "
            f"repeats line {original}. The span was probably written twice; write it once."
        )
    return rows


def check_serving_logs(serving_logs_dir: Path) -> list[Path]:
    """Raises InputError unless `serving_logs_dir` holds CSV request logs with the model's columns.

    Requests carry every column of the training data except `tips`, which is not known when a trip
    is scored. Returns the log files.
    """
    logs = sorted(serving_logs_dir.glob("*.csv")) if serving_logs_dir.is_dir() else []
    if not logs:
        raise InputError(
            f"Serving logs folder {serving_logs_dir} holds no .csv file. Expected CSV request logs with the "
            f"taxi columns except {features.TIPS}; pass --serving-logs only when there are some."
        )
    required = [column for column in features.REQUIRED_COLUMNS if column != features.TIPS]
    header = check_csv_headers({0: logs}, required)
    for log in logs:
        check_csv_rows(log, header, max_duplicate_fraction=1.0)  # repeated requests are normal
    return logs


def check_schema_file(schema_path: Path) -> None:
    """Raises InputError unless `schema_path` is a readable text-format tensorflow_metadata Schema."""
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import schema_pb2

    try:
        text = schema_path.read_text()
        schema = text_format.Parse(text, schema_pb2.Schema())
    except (OSError, UnicodeDecodeError, text_format.ParseError) as error:
        raise InputError(
            f"Schema file {schema_path} could not be read as a text-format tensorflow_metadata Schema "
            f"(schema.pbtxt): {error}."
        ) from error
    if not schema.feature:
        raise InputError(
            f"Schema file {schema_path} declares no feature: expected one `feature {{ ... }}` per column."
        )
