"""The column passes count what the row-by-row reader counts, on real rows, corrupted rows and random text
shaped like CSV; where they cannot tell, they say so (None) rather than count otherwise."""

import datetime
import random

import pytest

from config import serving as serving_config
from inputs import checks, columnar_checks
from models import features
from tests.support.spans import real_rows, write_csv


def row_by_row(path, span, window_start=None) -> columnar_checks.RowCounts:
    [found], _ = checks.read_headers([path], features.REQUIRED_COLUMNS if span else [])
    found.window_start = window_start
    problems = checks._read_rows(found, span, checks._half_year(span) if span is not None else None)
    return checks.counts_of(found, problems)


def columnar(path, span, window_start=None) -> columnar_checks.RowCounts | None:
    [found], _ = checks.read_headers([path], [])
    window = checks._half_year(span) if span is not None else None
    return columnar_checks.count_rows(path.read_bytes(), found.header, span, window, window_start, True)


def corrupted_rows(count: int, seed: int) -> tuple[list[str], list[list[str]]]:
    """Real rows with every kind of value the checks read differently: duplicates, missing labels,
    shifted and odd time columns, timestamps out of range or malformed, quoted line breaks."""
    header, rows = real_rows(count)
    generator = random.Random(seed)
    position = {name: index for index, name in enumerate(header)}
    odd_times = ["7.0", " 3 ", "x", "", "25", "-1", "13", "nan", "1e3", "+4", "٣"]
    odd_stamps = ["", "x", "-86400", "0012", " 1361742265", "99999999999999", "1.5e9", "-62135596801"]
    for row in rows:
        pick = generator.random()
        if pick < 0.05:
            row[position[generator.choice(list(checks.TIME_RANGES))]] = generator.choice(odd_times)
        elif pick < 0.08:
            row[position[features.TIMESTAMP]] = generator.choice(odd_stamps)
        elif pick < 0.1:
            row[position[generator.choice([features.TIPS, features.FARE])]] = generator.choice(
                ["", " ", "\t"]
            )
        elif pick < 0.12:
            row[position["company"]] = generator.choice(["a\nb", 'x, "y"', "c\r\nd", '"'])
    rows += [list(generator.choice(rows)) for _ in range(count // 20)]
    generator.shuffle(rows)
    return header, rows


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("span", [20131, 20141, 7, None])
def test_counts_equal_the_row_by_row_counts_on_corrupted_real_rows(tmp_path, seed, span):
    header, rows = corrupted_rows(300, seed)
    line_end, mark = ("\r\n", "\ufeff") if seed % 2 else ("\n", "")
    path = write_csv(tmp_path / "rows.csv", header, rows, line_end=line_end, mark=mark)
    assert columnar(path, span) == row_by_row(path, span)


def test_a_request_logs_shadow_rows_and_rows_before_its_window_are_counted_as_row_by_row(tmp_path):
    header, rows = real_rows(60)
    header = [*header, serving_config.REQUEST_LOG_ROUTE_COLUMN, serving_config.REQUEST_LOG_TIME_COLUMN]
    start = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
    for index, row in enumerate(rows):
        answered = (start + datetime.timedelta(minutes=index)).isoformat()
        row += [serving_config.SHADOW_ROUTE if index % 7 == 0 else "stable", answered if index % 11 else "x"]
    path = write_csv(tmp_path / "log.csv", header, rows)
    since = (start + datetime.timedelta(minutes=30)).timestamp()
    counts = columnar(path, None, since)
    assert counts == row_by_row(path, None, since)
    assert counts.shadow_rows == 9 and counts.rows_before_window > 20


def random_csv_text(generator: random.Random) -> str:
    """Rows of three fields, mostly well formed, with quoting that readers differ on, and stray text."""
    fields = ["a", "1", "", " ", "é", '"x"', '"a,b"', '"l\nb"', 'x"y', '"q""r"', '"o"p', '"', "a\rb", "1"]
    lines = []
    for _ in range(generator.randrange(1, 12)):
        line = ",".join(generator.choice(fields) for _ in range(3))
        if generator.random() < 0.1:
            line += generator.choice([",", '"', "\n", "\r", "b"])
        lines.append(line + generator.choice(["\n", "\n", "\r\n", "\r"]))
    return "".join(lines if generator.random() < 0.8 else [*lines, *lines[:2]])


@pytest.mark.parametrize("seed", range(60))
def test_random_csv_text_is_counted_as_row_by_row_or_left_to_it(tmp_path, seed):
    body = random_csv_text(random.Random(seed))
    path = tmp_path / "random.csv"
    path.write_bytes(("h1,h2,h3\n" + body).encode())
    try:
        expected = row_by_row(path, None)
    except checks.InputError:
        expected = None  # the row-by-row reader refuses it: the column passes must not count it
    found = columnar(path, None)
    assert found is None or found == expected, body


def test_what_only_the_row_by_row_reader_reads_as_the_checks_define_is_left_to_it(tmp_path):
    header, rows = real_rows(5)
    text = write_csv(tmp_path / "plain.csv", header, rows).read_text()
    for name, content in {
        "empty_line.csv": text + "\n",
        "nul.csv": text.replace("Cash", "Ca\0sh", 1),
        "short_row.csv": text + "1,2\n",
    }.items():
        path = tmp_path / name
        path.write_text(content)
        assert columnar(path, 20131) is None, name
