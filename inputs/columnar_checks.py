"""The row checks of `checks.py` counted in column passes (Arrow, NumPy) instead of one Python row at a time.

`count_rows` gives the counts `checks._read_rows` gives, or None where a file holds something only Python's
csv reader reads as the checks define it (a NUL byte, an empty line, a row Arrow cannot split, a field
longer than csv allows, a value whose parsing raises what the row-by-row check would raise). The caller
then runs the row-by-row check, which also writes every refusal's message (its line numbers are Python's).
Values are parsed with the same Python expressions as the row-by-row check, once per distinct value.
"""

import csv
import dataclasses
import datetime
from collections.abc import Callable, Sequence

import numpy as np

from config import serving as serving_config
from models import features

TIME_COLUMNS = ("trip_start_hour", "trip_start_day", "trip_start_month")
TIME_RANGES = {"trip_start_hour": range(24), "trip_start_day": range(1, 8), "trip_start_month": range(1, 13)}
# Unix seconds Python's datetime can hold (years 1 to 9999): beyond them fromtimestamp raises.
_FIRST_SECOND, _LAST_SECOND = -62135596800, 253402300799
_STOP, _NO_NUMBER = -2, -1  # a written time column: not a number (stops the row's check); empty or no clock's


@dataclasses.dataclass
class RowCounts:
    """How many rows a file has, and how many break or are left out by each rule of `checks.check_rows`."""

    rows: int = 0
    rows_with_line_breaks: int = 0
    duplicates: int = 0  # rows repeating an earlier row exactly
    label_missing: int = 0
    inconsistent: int = 0  # hour, day or month disagree with the timestamp
    outside_span: int = 0
    shadow_rows: int = 0
    rows_before_window: int = 0


def count_rows(
    data: bytes,
    header: Sequence[str],
    span: int | None,
    window: tuple[datetime.datetime, datetime.datetime] | None,
    window_start: float | None,
    count_duplicates: bool,
) -> RowCounts | None:
    """`checks._read_rows`'s counts for a CSV file's bytes `data` whose header is `header`; None where only
    the row-by-row reader can tell (see the module's docstring)."""
    import pyarrow as pa

    if not _columnar_reads_as_python_does(data):
        return None
    table = _read_table(data, len(header))
    if table is None or not _fields_fit_csv(table):
        return None
    columns = dict(zip(header, table.columns, strict=True))
    counts = RowCounts(rows=table.num_rows)
    if counts.rows == 0:
        return counts
    quoted = b'"' in data
    if quoted:
        counts.rows_with_line_breaks = _rows_with_line_breaks(table)
    if count_duplicates:
        counts.duplicates = counts.rows - _distinct_rows(data, table, quoted)
    try:
        if span is None:
            _count_left_out(columns, window_start, counts)
        elif not _count_rule_breaks(columns, window, counts):
            return None
    except _RowByRowRaises:
        return None
    except pa.ArrowException:
        return None
    return counts


class _RowByRowRaises(Exception):
    """A value whose parsing raises an error the row-by-row check does not catch: it must raise it."""


def _columnar_reads_as_python_does(data: bytes) -> bool:
    """False where Arrow would read rows differently from Python's csv reader: NUL bytes (csv refuses
    them), an empty line (no fields for csv, one empty field per column for Arrow), a header quoted over
    several lines."""
    if b"\x00" in data or b"\n\n" in data or b"\r\r" in data or b"\n\r" in data:
        return False
    header_end = data.find(b"\n")
    return data.count(b'"', 0, header_end if header_end >= 0 else len(data)) % 2 == 0


def _fields_fit_csv(table) -> bool:
    """False if a field is longer than Python's csv reader takes (it refuses the file)."""
    import pyarrow.compute as pc

    limit = csv.field_size_limit()
    return all((pc.max(pc.utf8_length(column)).as_py() or 0) < limit for column in table.columns)


def _read_table(data: bytes, width: int):
    """The data rows as string columns (empty strings, never nulls); None if Arrow cannot split them into
    `width` fields each or they are not UTF-8."""
    import pyarrow as pa
    import pyarrow.csv as pa_csv

    names = [f"column_{index}" for index in range(width)]
    try:
        return pa_csv.read_csv(
            pa.py_buffer(data),
            # Threads only where there is more than one block to parse, the only place they help: on a span
            # of a header only, Arrow 10's threaded reader left a task that aborted the process at exit
            # ("terminate called without an active exception", after the span's error had been printed:
            # 8 of 300 runs under load, none of 400 without threads; apache/arrow#38676).
            read_options=pa_csv.ReadOptions(
                column_names=names, skip_rows=1, use_threads=len(data) > pa_csv.ReadOptions().block_size
            ),
            parse_options=pa_csv.ParseOptions(newlines_in_values=b'"' in data, ignore_empty_lines=False),
            convert_options=pa_csv.ConvertOptions(
                column_types={name: pa.string() for name in names},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except pa.ArrowException:
        return None


def _rows_with_line_breaks(table) -> int:
    import pyarrow.compute as pc

    broken = np.zeros(table.num_rows, dtype=bool)
    for column in table.columns:
        broken |= _numpy(pc.match_substring_regex(column, "[\r\n]"))
    return int(broken.sum())


def _distinct_rows(data: bytes, table, quoted: bool) -> int:
    """Distinct rows, comparing fields as the row-by-row check does. Without quotes a row's fields are its
    line split on commas, so distinct lines are distinct rows; otherwise Arrow groups on every column."""
    if not quoted and (b"\r" not in data or data.count(b"\r") == data.count(b"\r\n")):
        lines = (data.replace(b"\r\n", b"\n") if b"\r" in data else data).split(b"\n")[1:]
        if lines and lines[-1] == b"":
            lines.pop()
        return len(set(lines))
    return table.group_by(table.column_names).aggregate([]).num_rows


def _numpy(values) -> np.ndarray:
    """An Arrow array or chunked array (no nulls) as NumPy."""
    import pyarrow as pa

    return values.to_numpy() if isinstance(values, pa.ChunkedArray) else values.to_numpy(zero_copy_only=False)


def _per_value(column, parse: Callable[[str], int]) -> np.ndarray:
    """`parse` of every row's value, computed once per distinct value (int64, one per row)."""
    import pyarrow.compute as pc

    distinct = pc.unique(column)
    parsed = np.array([parse(value) for value in distinct.to_pylist()], dtype=np.int64)
    return parsed[_numpy(pc.index_in(column, value_set=distinct))]


def _count_left_out(columns: dict, window_start: float | None, counts: RowCounts) -> None:
    """A request log's rows left out: a shadow's answers, and rows answered before `window_start`."""
    import pyarrow.compute as pc

    shadow = np.zeros(counts.rows, dtype=bool)
    if serving_config.REQUEST_LOG_ROUTE_COLUMN in columns:
        route = columns[serving_config.REQUEST_LOG_ROUTE_COLUMN]
        shadow = _numpy(pc.equal(route, serving_config.SHADOW_ROUTE))
    counts.shadow_rows = int(shadow.sum())
    if window_start is None:
        return

    def answered_before(written: str) -> int:
        try:
            return int(datetime.datetime.fromisoformat(written).timestamp() < window_start)
        except ValueError:
            return 0

    before = _per_value(columns[serving_config.REQUEST_LOG_TIME_COLUMN], answered_before)
    counts.rows_before_window = int((before.astype(bool) & ~shadow).sum())


def _count_rule_breaks(columns: dict, window, counts: RowCounts) -> bool:
    """Training data's rule breaks into `counts`; False if a column the rules read is missing (the
    row-by-row check fails on it as it always has)."""
    needed = (features.TIPS, features.FARE, features.TIMESTAMP, *TIME_COLUMNS)
    if any(name not in columns for name in needed):
        return False
    missing = np.zeros(counts.rows, dtype=bool)
    for name in (features.TIPS, features.FARE):
        missing |= _per_value(columns[name], lambda value: int(value.strip() == "")).astype(bool)
    counts.label_missing = int(missing.sum())
    start = _timestamps(columns[features.TIMESTAMP])
    undecided = start != np.iinfo(np.int64).min  # rows whose time check has not stopped or failed
    inconsistent = np.zeros(counts.rows, dtype=bool)
    for name, derived in _time_columns(np.where(undecided, start, 0)).items():
        written = _per_value(columns[name], lambda value, name=name: _written_time(value, name))
        disagrees = undecided & (written >= 0) & (written != derived)
        inconsistent |= disagrees
        undecided &= ~disagrees & (written != _STOP)
    counts.inconsistent = int(inconsistent.sum())
    if window is not None:
        first, end = (int(bound.timestamp()) for bound in window)
        counts.outside_span = int((undecided & ((start < first) | (start >= end))).sum())
    return True


def _timestamps(column) -> np.ndarray:
    """Unix seconds of every row's timestamp as `int(value)` reads it; int64 min where datetime cannot
    hold it or it is not an integer (the row-by-row check then skips the row's time check)."""
    import pyarrow.compute as pc

    digits = pc.match_substring_regex(column, "^[0-9]{1,18}$")
    plain = _numpy(pc.if_else(digits, column, "0").cast("int64"))
    plain = np.where(plain <= _LAST_SECOND, plain, np.iinfo(np.int64).min)
    odd = ~_numpy(digits)
    if odd.any():
        plain[odd] = _per_value(column.filter(pc.invert(digits)), _python_timestamp)
    return plain


def _python_timestamp(written: str) -> int:
    try:
        value = int(written)
    except ValueError:
        return np.iinfo(np.int64).min
    return value if _FIRST_SECOND <= value <= _LAST_SECOND else np.iinfo(np.int64).min


def _time_columns(seconds: np.ndarray) -> dict[str, np.ndarray]:
    """`checks.time_columns` of every start time (Unix seconds, UTC), as arrays."""
    days = np.floor_divide(seconds, 86400)
    months = seconds.astype("datetime64[s]").astype("datetime64[M]").astype(np.int64)
    return {
        "trip_start_hour": np.floor_divide(seconds, 3600) % 24,
        "trip_start_day": (days + 4) % 7 + 1,  # 1970-01-01 was a Thursday, day 5 with 1 = Sunday
        "trip_start_month": months % 12 + 1,
    }


def _written_time(value: str, name: str) -> int:
    """A written hour, day or month as the row-by-row check reads it: the number, _NO_NUMBER (empty, or
    one no clock gives) or _STOP (not a number)."""
    written = value.strip()
    if not written:
        return _NO_NUMBER
    try:
        number = int(float(written))
    except ValueError:
        return _STOP
    except OverflowError as error:
        raise _RowByRowRaises from error
    return number if number in TIME_RANGES[name] else _NO_NUMBER
