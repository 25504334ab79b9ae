"""The pipeline's inputs, checked before anything runs: span folders of taxi CSVs and the schema.

Raw data is laid out as `<data root>/span-N/*.csv`, one folder per time span. ExampleGen reads
`<example_gen_input>/span-{SPAN}/{train,eval,current_span,previous_span}/*.csv`, where span N holds
links to the raw files of its evaluation spans (the newest, ending at N), of the training window just
before them, and of span N and the span before it alone (which data validation compares for drift).
ExampleGen picks the newest span by itself, which is what lets a compiled pipeline pick up new data.

Serving request logs are a folder of CSVs with the same columns minus `tips`, read by their own ExampleGen.

Checks here are the ones statistics cannot make: that every file parses as CSV with the header's number
of fields, that a span is not empty, and that its rows are not repeated (a span written twice has the
same distributions as the original, so no statistic moves).
"""

import csv
import hashlib
import os
import shutil
from pathlib import Path

from models import features
from pipeline import configs


class InputError(Exception):
    """Bad input, explained for the person who supplied it: the file, the field and what was expected."""


def prepare(settings: configs.Settings) -> list[int]:
    """Checks the schema and the data, writes ExampleGen's span folders; returns their span numbers.

    Raises InputError, before anything is run or written to the pipeline root, on bad input.
    """
    from pipeline import taxi_sample  # it imports InputError from here

    check_schema_file(settings.schema_path)
    if settings.data_root is None:
        taxi_sample.write_spans(taxi_sample.sample_csv_path(), settings.prepared_sample_dir)
    spans = discover_spans(settings.spans_dir)
    header = check_csv_headers(spans, features.REQUIRED_COLUMNS)
    for csv_file in (f for files in spans.values() for f in files):
        check_csv_rows(csv_file, header, configs.MAX_DUPLICATE_ROW_FRACTION)
    if settings.data_root is None and settings.serving_logs is None:
        taxi_sample.write_serving_logs(spans[max(spans)][0], settings.prepared_serving_logs_dir)
    if settings.serving_logs_dir is not None:
        check_serving_logs(settings.serving_logs_dir)
    return write_example_gen_input(
        spans, settings.example_gen_input, configs.TRAINING_WINDOW_SPANS, configs.EVALUATION_SPANS
    )


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


def windows(ordered: list[int], end: int, training_window_spans: int, evaluation_spans: int):
    """(training spans, evaluation spans) for the span at index `end` of the sorted span numbers:
    the `evaluation_spans` newest up to it, and up to `training_window_spans` before those."""
    first_evaluated = end - evaluation_spans + 1
    training = ordered[max(0, first_evaluated - training_window_spans) : first_evaluated]
    return training, ordered[first_evaluated : end + 1]


def write_example_gen_input(
    spans: dict[int, list[Path]], example_gen_input: Path, training_window_spans: int, evaluation_spans: int
) -> list[int]:
    """Links each span's training and evaluation files under `example_gen_input`; returns the span numbers.

    Span N gets `eval/` = the `evaluation_spans` newest spans up to N, `train/` = the
    `training_window_spans` spans before those, and `current_span/` and `previous_span/` = spans N and
    N-1 alone. Existing links are kept, so file times (which ExampleGen
    fingerprints) do not change and unchanged spans stay cached; span folders of data no longer present
    are removed.
    """
    ordered = sorted(spans)
    if len(ordered) < evaluation_spans + 1:
        raise InputError(
            f"Found {len(ordered)} span(s) ({ordered}), but a run needs at least {evaluation_spans + 1}: "
            f"{evaluation_spans} to evaluate on and at least one older span to train on."
        )
    written = []
    for end in range(evaluation_spans, len(ordered)):
        training, evaluation = windows(ordered, end, training_window_spans, evaluation_spans)
        span_folder = example_gen_input / f"{configs.SPAN_FOLDER_PREFIX}{ordered[end]}"
        _link_files(span_folder / configs.TRAIN_SPLIT, {s: spans[s] for s in training})
        _link_files(span_folder / configs.EVAL_SPLIT, {s: spans[s] for s in evaluation})
        _link_files(span_folder / configs.CURRENT_SPAN_SPLIT, {ordered[end]: spans[ordered[end]]})
        _link_files(span_folder / configs.PREVIOUS_SPAN_SPLIT, {ordered[end - 1]: spans[ordered[end - 1]]})
        written.append(ordered[end])
    # Span folders left from other data (an earlier --data-root) must go, or ExampleGen would pick them.
    keep = {f"{configs.SPAN_FOLDER_PREFIX}{span}" for span in written}
    for stale in example_gen_input.iterdir():
        if stale.name not in keep:
            shutil.rmtree(stale)
    return written


def split_rows(example_gen_input: Path, split: str, span: int | None = None) -> int:
    """About how many rows ExampleGen's `split` of `span` (the newest if None) holds: its files' lines
    minus their headers (exact for CSVs without quoted line breaks, such as the taxi data's). Cheap
    (a newline count), for choosing how to run components before the pipeline is built."""
    folders = sorted(example_gen_input.glob(f"{configs.SPAN_FOLDER_PREFIX}*"), key=_span_number)
    if span is not None:
        folders = [f for f in folders if _span_number(f) == span]
    if not folders:
        return 0
    rows = 0
    for csv_file in (folders[-1] / split).glob("*.csv"):
        with csv_file.open("rb") as handle:
            rows += sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b"")) - 1
    return rows


def _span_number(span_folder: Path) -> int:
    return int(span_folder.name[len(configs.SPAN_FOLDER_PREFIX) :])


def _link_files(folder: Path, files_by_span: dict[int, list[Path]]) -> None:
    """Makes `folder` hold exactly one relative symlink per file, named after its span and file name."""
    folder.mkdir(parents=True, exist_ok=True)
    wanted = {
        f"{configs.SPAN_FOLDER_PREFIX}{span}-{csv_file.name}": csv_file
        for span, files in files_by_span.items()
        for csv_file in files
    }
    for existing in folder.iterdir():
        if existing.name not in wanted or existing.resolve() != wanted[existing.name].resolve():
            existing.unlink()
    for name, target in wanted.items():
        link = folder / name
        if not link.is_symlink():
            link.symlink_to(os.path.relpath(target.resolve(), folder.resolve()))


def snapshot_schema(schema_path: Path, snapshots_dir: Path) -> Path:
    """Copies the schema to `snapshots_dir/<content hash>/schema.pbtxt` and returns that path.

    ImportSchemaGen's cache key is the file's path, not its content, so an edited schema at the same
    path would be served from cache; a path per content makes every edit reach the pipeline.
    """
    content = schema_path.read_bytes()
    snapshot = snapshots_dir / hashlib.sha256(content).hexdigest()[:16] / schema_path.name
    if not snapshot.exists():
        snapshot.parent.mkdir(parents=True, exist_ok=True)
        snapshot.write_bytes(content)
    return snapshot
