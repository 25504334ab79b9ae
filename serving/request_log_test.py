"""The request log: complete lines only in files readers read, a crash loses at most a flush, rotation."""

import csv
import io
import os
import subprocess
import sys
import textwrap
import time

from serving import request_log


def _row(index: int) -> list:
    return [f"id{index}", 0, "2026-01-01T00:00:00+00:00", "100", "stable", 1.5, 0.25] + [""] * (
        len(request_log.COLUMNS) - len(request_log.LOG_COLUMNS)
    )


def test_rows_are_flushed_rotated_and_readable_as_csv(tmp_path):
    log = request_log.RequestLog(tmp_path, "test", flush_seconds=0.05, max_bytes=400, max_seconds=60)
    for index in range(10):
        log.append([_row(index)])
        time.sleep(0.02)
    log.close()
    files = sorted(tmp_path.glob("*.csv"))
    assert len(files) > 1 and not list(tmp_path.glob("*.open"))  # rotated by size, all closed
    rows = [row for path in files for row in list(csv.reader(path.open()))[1:]]
    assert [row[0] for row in rows] == [f"id{i}" for i in range(10)]
    assert all(list(csv.reader(path.open()))[0] == request_log.COLUMNS for path in files)


def test_close_file_soon_hands_readers_every_row_logged_so_far_and_logging_goes_on(tmp_path):
    log = request_log.RequestLog(tmp_path, "test", flush_seconds=0.05, max_bytes=10**9, max_seconds=600)
    log.append([_row(0), _row(1)])
    deadline = time.monotonic() + 5
    while not list(tmp_path.glob("*.csv.open")) and time.monotonic() < deadline:
        time.sleep(0.01)
    log.close_file_soon()
    while not list(tmp_path.glob("*.csv")) and time.monotonic() < deadline:
        time.sleep(0.01)
    [closed] = tmp_path.glob("*.csv")
    assert [row[0] for row in list(csv.reader(closed.open()))[1:]] == ["id0", "id1"]
    log.append([_row(2)])
    log.close()
    rows = [row[0] for path in sorted(tmp_path.glob("*.csv")) for row in list(csv.reader(path.open()))[1:]]
    assert rows == ["id0", "id1", "id2"] and not list(tmp_path.glob("*.open"))


def test_a_killed_writer_loses_at_most_a_flush_and_no_reader_sees_a_torn_line(tmp_path):
    code = textwrap.dedent(
        f"""
        import time
        from pathlib import Path
        from serving import request_log
        from serving.request_log_test import _row
        log = request_log.RequestLog(Path({str(tmp_path)!r}), "killed", 0.05, 10**9, 600)
        for index in range(100000):
            log.append([_row(index)])
            time.sleep(0.001)
        """
    )
    writer = subprocess.Popen([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": os.getcwd()})
    time.sleep(3)
    writer.kill()
    writer.wait()
    [open_file] = tmp_path.glob("*.csv.open")
    assert not list(tmp_path.glob("*.csv"))  # readers read .csv only: nothing yet
    # A torn last line, as a write cut short would leave.
    with open_file.open("a") as handle:
        handle.write("idTORN,2026")
    [recovered] = request_log.recover(tmp_path)
    rows = list(csv.reader(recovered.open()))
    assert rows[0] == request_log.COLUMNS and len(rows) > 100
    assert all(len(row) == len(request_log.COLUMNS) for row in rows) and rows[-1][0] != "idTORN"
    assert [row[0] for row in rows[1:]] == [f"id{i}" for i in range(len(rows) - 1)]


def test_a_live_writers_open_file_is_left_alone(tmp_path):
    live = request_log.RequestLog(tmp_path, "live", flush_seconds=0.05, max_bytes=10**9, max_seconds=600)
    live.append([_row(0)])
    time.sleep(0.3)
    request_log.RequestLog(tmp_path, "second", flush_seconds=0.05, max_bytes=10**9, max_seconds=600).close()
    assert len(list(tmp_path.glob("*.csv.open"))) == 1  # still the live writer's own
    live.close()


def test_a_requests_rows_are_written_as_csv_writer_writes_them(tmp_path):
    """RequestRows formats a column at a time; the text must be csv.writer's, cell for cell, quoting
    included, and read back as the values logged."""
    awkward = ["plain", 'a "quoted" cab', "Flash, Cab", "two\nlines", "", "ünï", None]
    trips = len(awkward)
    columns = [[None] * trips for _ in features_columns()]
    columns[0] = awkward
    columns[1] = [1, None, 3, -4, 2**40, 0, 7]
    columns[2] = [12.5, 0.1, 1e-07, None, 3.0, 1e20, -0.0]
    columns[3] = [5, 6, 7, 8, 9, 10, 11]
    probabilities = [0.123456789, 1e-05, 0.0, 1.0, 0.5, 0.99999999, 0.3333333]
    rows = request_log.RequestRows('id, "x"', "100", "canary", 0.0123456, probabilities, columns)
    expected = io.StringIO()
    csv.writer(expected, lineterminator="\n").writerows(rows)
    assert rows.csv_text() == expected.getvalue()
    log = request_log.RequestLog(tmp_path, "test", flush_seconds=60, max_bytes=10**9, max_seconds=600)
    log.append(rows)
    log.close()
    [written] = tmp_path.glob("*.csv")
    read = list(csv.reader(written.open(newline="")))
    assert read[0] == request_log.COLUMNS and len(read) == trips + 1
    assert [row[0] for row in read[1:]] == ['id, "x"'] * trips
    first_feature = len(request_log.LOG_COLUMNS)
    assert [row[first_feature] for row in read[1:]] == [value or "" for value in awkward]


def features_columns() -> list[str]:
    return request_log.COLUMNS[len(request_log.LOG_COLUMNS) :]
