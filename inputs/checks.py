"""Checks of the pipeline's inputs, made before anything runs: span folders of taxi CSVs, serving logs, the schema.

Files are accepted as real exports write them: a UTF-8 byte-order mark, CRLF line endings, quoted fields
(the header's names too, every field or some), line breaks inside quoted fields, columns in any order, and columns the pipeline does not know (reported,
and dropped from what ExampleGen reads). `layout.py` hands ExampleGen a normalised copy of such a file
(one order of columns, no mark, one line per row); a file that needs none is read as it is.

Refused, each with the file, the line or column, and what was expected (docs/inputs.md lists them all):
a file that is not UTF-8 CSV, a missing required column, a repeated column name, a row with the wrong
number of fields, an empty span, rows repeated more than statistics can tell (a span written twice has the
same distributions as the original, so no statistic moves), rows whose label cannot be computed, rows
whose hour, day or month disagree with their timestamp, and rows whose time falls outside their span.
"""

import csv
import dataclasses
import datetime
from pathlib import Path

from config import pipeline as pipeline_config
from config import serving as serving_config
from inputs import check_memo, columnar_checks
from inputs.columnar_checks import TIME_RANGES
from models import features

BYTE_ORDER_MARK = "\ufeff"


class InputError(Exception):
    """Bad input, explained for the person who supplied it: the file, the field and what was expected."""


@dataclasses.dataclass
class CsvFile:
    """What the checks learnt about one CSV file: enough to decide whether ExampleGen can read it as it is."""

    path: Path
    header: list[str]  # as written, whitespace around names removed
    known_columns: list[str]  # the header's columns the pipeline reads, in the file's order
    unknown_columns: list[str]  # reported, and left out of what ExampleGen reads
    has_byte_order_mark: bool
    # The header line is not the bare names joined by commas (quoted names, spaces around them):
    # CsvExampleGen splits its header line on commas and would take the quotes for part of the names.
    header_needs_rewriting: bool = False
    rows: int = 0
    rows_with_line_breaks: int = 0  # rows with a line break inside a quoted field
    shadow_rows: int = 0  # request-log rows of a shadow's answers: the same trips again, left out
    rows_before_window: int = 0  # request-log rows answered before the window the skew check reads
    window_start: float | None = None  # Unix time; rows answered earlier are left out
    identity: check_memo.FileIdentity | None = None  # as checked, when checked with a memo

    def needs_normalising(self, columns: list[str]) -> bool:
        """True unless ExampleGen can read the file as it is, as part of an input whose columns are `columns`."""
        return (
            self.has_byte_order_mark
            or self.header_needs_rewriting
            or self.unknown_columns != []
            or self.known_columns != columns
            or self.rows_with_line_breaks > 0
            or self.shadow_rows > 0
            or self.rows_before_window > 0
        )

    def keeps(self, row: list[str]) -> bool:
        """False for a row left out of what ExampleGen reads: a shadow's answer in a request log, or one
        answered before the window."""
        route = self.header.index(serving_config.REQUEST_LOG_ROUTE_COLUMN) if self.shadow_rows else -1
        if route >= 0 and row[route] == serving_config.SHADOW_ROUTE:
            return False
        return not (self.rows_before_window and _answered_before(row, self))


def discover_spans(spans_dir: Path) -> dict[int, list[Path]]:
    """Span number -> its CSV files, for every `span-N/` folder under `spans_dir` holding CSVs."""
    if not spans_dir.is_dir():
        raise InputError(
            f"Input folder {spans_dir} does not exist. Expected a folder with one sub-folder per time span "
            f"named {pipeline_config.SPAN_FOLDER_PREFIX}N (N an integer, e.g. {pipeline_config.SPAN_FOLDER_PREFIX}20151) holding "
            "CSV files with the taxi columns; run `make data` to write the Chicago Taxi sample that way."
        )
    spans = {}
    for folder in sorted(spans_dir.glob(f"{pipeline_config.SPAN_FOLDER_PREFIX}*")):
        number = folder.name[len(pipeline_config.SPAN_FOLDER_PREFIX) :]
        if not folder.is_dir() or not number.isdigit():
            continue
        csv_files = sorted(folder.glob("*.csv"))
        if csv_files:
            spans[int(number)] = csv_files
    if not spans:
        raise InputError(
            f"Input folder {spans_dir} holds no span of data: expected sub-folders named "
            f"{pipeline_config.SPAN_FOLDER_PREFIX}N (N an integer) containing at least one .csv file each, found "
            f"{sorted(p.name for p in spans_dir.iterdir())[:10] or 'nothing'}."
        )
    return spans


def read_header(csv_file: Path, required_columns: list[str]) -> CsvFile:
    """The file's header, checked: every required column present, no name twice."""
    try:
        with csv_file.open(newline="", encoding="utf-8") as handle:
            first = handle.read(1)
            has_mark = first == BYTE_ORDER_MARK
            if not has_mark:
                handle.seek(0)
            header = [name.strip() for name in next(csv.reader(handle), [])]
        with csv_file.open(newline="", encoding="utf-8-sig") as handle:
            header_line = handle.readline().rstrip("\r\n")
    except (UnicodeDecodeError, csv.Error) as error:
        raise InputError(
            f"{csv_file}, line 1: not readable as UTF-8 CSV ({error}). The file is garbled."
        ) from error
    if not header:
        raise InputError(f"{csv_file} is empty: expected a header line with the taxi columns, then rows.")
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise InputError(
            f"{csv_file}: the header names the column(s) {', '.join(repeated)} more than once; each column "
            "must appear once."
        )
    missing = [column for column in required_columns if column not in header]
    if missing:
        raise InputError(
            f"{csv_file} lacks the required column(s) {', '.join(missing)}. Every CSV needs the columns "
            f"{', '.join(required_columns)} (in any order)."
        )
    return CsvFile(
        path=csv_file,
        header=header,
        known_columns=[name for name in header if name in required_columns],
        unknown_columns=[
            name or f"(unnamed, position {index + 1})"
            for index, name in enumerate(header)
            if name not in required_columns
        ],
        has_byte_order_mark=has_mark,
        header_needs_rewriting=header_line != ",".join(header),
    )


def read_headers(files: list[Path], required_columns: list[str]) -> tuple[list[CsvFile], list[str]]:
    """Every file's checked header, and the column order of the input they make together: the first
    file's (so data written in one order is read as it is)."""
    found = [read_header(csv_file, required_columns) for csv_file in files]
    return found, found[0].known_columns


def rows_of(csv_file: CsvFile):
    """(line number, row) of every data row, a row's fields in the file's header order; a row quoted over
    several lines is numbered by its first."""
    with csv_file.path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        next(reader, None)
        last_line = reader.line_num
        for row in reader:
            yield last_line + 1, row
            last_line = reader.line_num


@dataclasses.dataclass
class _Tally:
    """Rows of a file that break one rule: how many, and the first one, to name in the message."""

    count: int = 0
    first: str = ""

    def add(self, description: str) -> None:
        self.count += 1
        if not self.first:
            self.first = description


def check_rows(
    csv_file: CsvFile,
    span: int | None,
    max_duplicate_fraction: float,
    memo: check_memo.CheckMemo | None = None,
) -> CsvFile:
    """Reads every row of `csv_file` once; raises InputError on the first rule the file breaks.

    Every row must have the header's number of fields; at least one row; at most `max_duplicate_fraction`
    of rows repeating an earlier one. Training data (`span` not None) must also let every row's label be
    computed, have hour, day and month agree with the timestamp, and, where span numbers are half-years
    (YYYYH, as `make data` writes them), have every row's start time inside its span.
    Rows are counted in column passes (columnar_checks.py); the row-by-row reader runs where those cannot
    tell, and to name the first row that breaks a rule. With `memo`, a file that passed in the same
    context and is unchanged (check_memo.py) is not read again. Returns `csv_file` with its row counts
    filled in.
    """
    window = _half_year(span) if span is not None else None
    stat_before = csv_file.path.stat()
    data = csv_file.path.read_bytes()
    identity, check_context, counts = None, "", None
    if memo:
        identity = csv_file.identity = check_memo.identify(csv_file.path, data, stat_before)
        check_context = check_memo.context(
            span=span,
            max_duplicate_fraction=max_duplicate_fraction,
            window_start=csv_file.window_start,
            header=csv_file.header,
        )
        counts = memo.recall(identity, check_context)
    if counts is None:
        counts = columnar_checks.count_rows(
            data, csv_file.header, span, window, csv_file.window_start, max_duplicate_fraction < 1
        )
    if counts is None or _broken_rule(counts, max_duplicate_fraction) is not None:
        counts = check_rows_one_by_one(csv_file, span, max_duplicate_fraction)
    else:
        csv_file.rows, csv_file.rows_with_line_breaks = counts.rows, counts.rows_with_line_breaks
        csv_file.shadow_rows, csv_file.rows_before_window = counts.shadow_rows, counts.rows_before_window
    if memo:
        memo.remember(identity, check_context, counts)
    return csv_file


def check_rows_one_by_one(
    csv_file: CsvFile, span: int | None, max_duplicate_fraction: float
) -> columnar_checks.RowCounts:
    """`check_rows` reading one row at a time in Python: what names the first row that breaks a rule, and
    reads what the column passes leave to it. Fills in `csv_file`'s counts and returns them all."""
    window = _half_year(span) if span is not None else None
    problems = _read_rows(csv_file, span, window)
    _refuse_what_breaks_a_rule(csv_file, problems, span, window, max_duplicate_fraction)
    return counts_of(csv_file, problems)


def counts_of(csv_file: CsvFile, problems: "_RowProblems") -> columnar_checks.RowCounts:
    """The counts of a file read row by row: `csv_file`'s own, and its rows' `problems`."""
    return columnar_checks.RowCounts(
        rows=csv_file.rows,
        rows_with_line_breaks=csv_file.rows_with_line_breaks,
        duplicates=problems.duplicates.count,
        label_missing=problems.label_missing.count,
        inconsistent=problems.inconsistent.count,
        outside_span=problems.outside_span.count,
        shadow_rows=csv_file.shadow_rows,
        rows_before_window=csv_file.rows_before_window,
    )


def _broken_rule(counts: columnar_checks.RowCounts, max_duplicate_fraction: float) -> str | None:
    """The first rule of check_rows the counted rows break ("empty", "duplicates", "label_missing",
    "inconsistent", "outside_span"), or None: the one place the rules' limits are applied."""
    limit = pipeline_config.MAX_INCONSISTENT_ROW_FRACTION * counts.rows
    if counts.rows == 0:
        return "empty"
    if counts.duplicates > max_duplicate_fraction * counts.rows:
        return "duplicates"
    if counts.label_missing > 0:
        return "label_missing"
    if counts.inconsistent > limit:
        return "inconsistent"
    if counts.outside_span > limit:
        return "outside_span"
    return None


@dataclasses.dataclass
class _RowProblems:
    """What the rows of one file break, rule by rule."""

    duplicates: _Tally = dataclasses.field(default_factory=_Tally)
    label_missing: _Tally = dataclasses.field(default_factory=_Tally)
    inconsistent: _Tally = dataclasses.field(default_factory=_Tally)  # hour, day or month vs the timestamp
    outside_span: _Tally = dataclasses.field(default_factory=_Tally)


def _read_rows(csv_file: CsvFile, span: int | None, window) -> _RowProblems:
    """Counts `csv_file`'s rows (into it) and what they break; raises InputError on a row of the wrong
    width or a file that is not UTF-8 CSV."""
    header, path = csv_file.header, csv_file.path
    index = {name: position for position, name in enumerate(header)}
    route = index.get(serving_config.REQUEST_LOG_ROUTE_COLUMN) if span is None else None
    first_seen: dict[int, int] = {}
    problems = _RowProblems()
    line = 1
    try:
        for line, row in rows_of(csv_file):
            if len(row) != len(header):
                raise InputError(
                    f"{path}, line {line}: {len(row)} field(s), expected {len(header)} "
                    f"(one per header column: {', '.join(header)}). The file is truncated or garbled."
                )
            csv_file.rows += 1
            if any("\n" in field or "\r" in field for field in row):
                csv_file.rows_with_line_breaks += 1
            key = hash(tuple(row))
            if key in first_seen:
                problems.duplicates.add(f"line {line} repeats line {first_seen[key]}")
            else:
                first_seen[key] = line
            if span is None:
                if route is not None and row[route] == serving_config.SHADOW_ROUTE:
                    csv_file.shadow_rows += 1
                elif csv_file.window_start is not None and _answered_before(row, csv_file):
                    csv_file.rows_before_window += 1
                continue
            empty = [name for name in (features.TIPS, features.FARE) if row[index[name]].strip() == ""]
            if empty:
                problems.label_missing.add(f"line {line} has no {' and no '.join(empty)}")
            problem = _time_disagreement(row, index, window)
            if problem:
                tally = problems.outside_span if problem.startswith("starts") else problems.inconsistent
                tally.add(f"line {line} {problem}")
    except (UnicodeDecodeError, csv.Error) as error:
        raise InputError(
            f"{path}, after line {line}: not readable as UTF-8 CSV ({error}). The file is garbled."
        ) from error
    return problems


def _refuse_what_breaks_a_rule(
    csv_file: CsvFile, problems: _RowProblems, span: int | None, window, max_duplicate_fraction: float
) -> None:
    """Raises InputError naming the first rule of check_rows that the file's rows break."""
    path, rows = csv_file.path, csv_file.rows
    duplicates, label_missing = problems.duplicates, problems.label_missing
    inconsistent, outside_span = problems.inconsistent, problems.outside_span
    broken = _broken_rule(counts_of(csv_file, problems), max_duplicate_fraction)
    if broken == "empty":
        raise InputError(
            f"{path} has a header but no rows: the span is empty. Expected at least one trip per span "
            "file; remove the file (or its span folder) if the span really has no data."
        )
    if broken == "duplicates":
        raise InputError(
            f"{path}: {duplicates.count} of its {rows} rows repeat an earlier row exactly "
            f"({duplicates.count / rows:.1%}, at most {max_duplicate_fraction:.0%} expected), e.g. "
            f"{duplicates.first}. The span was probably written twice; write it once."
        )
    if broken == "label_missing":
        raise InputError(
            f"{path}: the label (big tipper: {features.TIPS} > {features.BIG_TIPPER_PERCENT_OF_FARE} % of "
            f"{features.FARE}) cannot be computed for {label_missing.count} of its {rows} rows, which lack "
            f"{features.TIPS} or {features.FARE} (first: {label_missing.first}). Training data needs both "
            "in every row: fill them in, or remove those rows."
        )
    if broken == "inconsistent":
        raise InputError(
            f"{path}: in {inconsistent.count} of its {rows} rows the hour, day of week or month disagrees with "
            f"{features.TIMESTAMP} (first: {inconsistent.first}); at most {pipeline_config.MAX_INCONSISTENT_ROW_FRACTION:.1%} "
            "expected. They are derived from the trip's start time in UTC (day 1 = Sunday): a column was "
            "shifted, or derived in another time zone."
        )
    if broken == "outside_span":
        raise InputError(
            f"{path}: {outside_span.count} of its {rows} rows start outside span {span} "
            f"({window[0]:%Y-%m-%d} to {window[1]:%Y-%m-%d}, UTC; first: {outside_span.first}). Put each "
            f"trip in the {pipeline_config.SPAN_FOLDER_PREFIX}YYYYH folder of its half-year."
        )


def _half_year(span: int) -> tuple[datetime.datetime, datetime.datetime] | None:
    """[start, end) in UTC of a span numbered YYYYH (H = 1 or 2); None for spans numbered otherwise."""
    year, half = divmod(span, 10)
    if not (1970 <= year <= 2200 and half in (1, 2)):
        return None
    start = datetime.datetime(
        year, 1 + (half - 1) * pipeline_config.MONTHS_PER_SPAN, 1, tzinfo=datetime.timezone.utc
    )
    end = (
        datetime.datetime(year + 1, 1, 1, tzinfo=datetime.timezone.utc)
        if half == 2
        else datetime.datetime(year, 7, 1, tzinfo=datetime.timezone.utc)
    )
    return start, end


def time_columns(start: datetime.datetime) -> dict[str, int]:
    """The hour, day of week (1 = Sunday) and month columns of a trip starting at `start` (UTC)."""
    return {
        "trip_start_hour": start.hour,
        "trip_start_day": start.isoweekday() % 7 + 1,
        "trip_start_month": start.month,
    }


def _time_disagreement(row: list[str], index: dict[str, int], window) -> str:
    """What in this row contradicts its start time (an empty string when nothing does)."""
    try:
        start = datetime.datetime.fromtimestamp(int(row[index[features.TIMESTAMP]]), tz=datetime.timezone.utc)
    except (ValueError, OverflowError, OSError):
        return ""  # a malformed timestamp is the schema's to report (its type and range)
    for column, value in time_columns(start).items():
        written = row[index[column]].strip()
        try:
            number = int(float(written)) if written else None
        except ValueError:
            return ""  # not a number: the schema reports the type
        # A value no clock gives (hour 25) is the schema's to report, as out of its domain.
        if number is not None and number in TIME_RANGES[column] and number != value:
            return (
                f"has {column} {written} where {features.TIMESTAMP} {start:%Y-%m-%d %H:%M} UTC gives {value}"
            )
    if window is not None and not window[0] <= start < window[1]:
        return f"starts at {start:%Y-%m-%d %H:%M} UTC"
    return ""


def check_serving_logs(
    serving_logs_dir: Path, since: float | None = None, memo: check_memo.CheckMemo | None = None
) -> list[CsvFile]:
    """Checks the CSV request logs in `serving_logs_dir`; returns them with their header order.

    Requests carry every column of the training data except `tips`, which is not known when a trip
    is scored; repeated requests are normal. With `since` (Unix time), the folder is a request log read
    as a window: files last written before it are not read, and rows with a `time` column earlier than it
    are left out. Files in sub-folders (the log's archive) are never read.
    """
    logs = sorted(serving_logs_dir.glob("*.csv")) if serving_logs_dir.is_dir() else []
    if not logs:
        raise InputError(
            f"Serving logs folder {serving_logs_dir} holds no .csv file. Expected CSV request logs with the "
            f"taxi columns except {features.TIPS}; pass --serving-logs only when there are some."
        )
    if since is not None:
        logs = [log for log in logs if log.stat().st_mtime >= since]
        if not logs:
            return []
    files, _ = read_headers(logs, features.SERVING_COLUMNS)
    for log in files:
        if since is not None and serving_config.REQUEST_LOG_TIME_COLUMN in log.header:
            log.window_start = since
    return [check_rows(log, span=None, max_duplicate_fraction=1.0, memo=memo) for log in files]


def _answered_before(row: list[str], csv_file: CsvFile) -> bool:
    written = row[csv_file.header.index(serving_config.REQUEST_LOG_TIME_COLUMN)]
    try:
        return datetime.datetime.fromisoformat(written).timestamp() < csv_file.window_start
    except ValueError:
        return False  # not a request log's time: the row is read


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
