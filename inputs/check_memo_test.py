"""An unchanged file that passed the row checks is not read again; any change to it, or to what its check
depends on, makes it checked again, and a memo that cannot be read costs only time."""

import json
import os
import shutil

import pytest

from config import folders
from config import pipeline as pipeline_config
from inputs import check_memo, checks, layout
from models import features
from tests.support.spans import real_rows, write_csv, write_sampled_spans

SPAN = 7  # numbered so that only the rows' agreement with their timestamps is checked


def check(path, memo, span=SPAN) -> checks.CsvFile:
    [found], _ = checks.read_headers([path], features.REQUIRED_COLUMNS)
    return checks.check_rows(found, span, pipeline_config.MAX_DUPLICATE_ROW_FRACTION, memo)


def recalled(path, memo, span=SPAN):
    """What `memo` recalls about `path` as it is now, checked for `span` (None: nothing)."""
    [found], _ = checks.read_headers([path], features.REQUIRED_COLUMNS)
    data = path.read_bytes()
    context = check_memo.context(
        span=span,
        max_duplicate_fraction=pipeline_config.MAX_DUPLICATE_ROW_FRACTION,
        window_start=None,
        header=found.header,
    )
    return memo.recall(check_memo.identify(path, data, path.stat()), context)


def test_an_unchanged_file_is_recalled_and_a_changed_one_checked_again(tmp_path):
    header, rows = real_rows(40)
    path = write_csv(tmp_path / "span.csv", header, rows)
    memo_path = tmp_path / "outputs" / "checks_memo.json"
    memo = check_memo.CheckMemo(memo_path)
    assert check(path, memo).rows == 40
    memo.save()
    assert recalled(path, check_memo.CheckMemo(memo_path)).rows == 40
    assert recalled(path, check_memo.CheckMemo(memo_path), span=8) is None  # another context

    # Same size and modification time, another content: only the digest tells, and the check runs again.
    hour = header.index("trip_start_hour")
    changed = next(index for index, row in enumerate(rows) if 10 <= int(row[hour]) <= 22)
    rows[changed][hour] = str(int(rows[changed][hour]) + 1)
    stat = path.stat()
    write_csv(path, header, rows)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert path.stat().st_size == stat.st_size and path.stat().st_ino == stat.st_ino
    assert recalled(path, check_memo.CheckMemo(memo_path)) is None
    with pytest.raises(checks.InputError, match=f"line {changed + 2} has trip_start_hour"):
        check(path, check_memo.CheckMemo(memo_path))


def test_an_unreadable_memo_is_read_as_empty_and_rewritten_whole(tmp_path):
    header, rows = real_rows(10)
    path = write_csv(tmp_path / "span.csv", header, rows)
    memo_path = tmp_path / "checks_memo.json"
    memo_path.write_text('{"version": 1, "files": {"x": ')
    memo = check_memo.CheckMemo(memo_path)
    assert check(path, memo).rows == 10
    memo.save()
    saved = json.loads(memo_path.read_text())["files"]
    assert list(saved) == [str(path.resolve())] and saved[str(path.resolve())]["counts"]["rows"] == 10
    assert not list(tmp_path.glob(".*.tmp"))


def test_a_second_run_recalls_every_unchanged_span_and_forgets_removed_ones(tmp_path):
    data_root = tmp_path / "data"
    write_sampled_spans(data_root, keep_every=40)
    settings = folders.Settings(output_dir=tmp_path / "outputs", data_root=data_root)
    layout.prepare(settings)
    files = sorted(str(p.resolve()) for p in data_root.glob("span-*/*.csv"))
    assert sorted(json.loads(settings.checks_memo_path.read_text())["files"]) == files
    memo = check_memo.CheckMemo(settings.checks_memo_path)
    for span_file in data_root.glob("span-*/*.csv"):
        assert recalled(span_file, memo, span=int(span_file.parent.name.split("-")[1])) is not None

    shutil.rmtree(data_root / "span-20131")
    layout.prepare(settings)
    remembered = json.loads(settings.checks_memo_path.read_text())["files"]
    assert sorted(remembered) == [f for f in files if "span-20131" not in f]


def test_a_normalised_copy_is_recorded_and_written_again_only_when_it_or_its_source_changed(tmp_path):
    data_root = tmp_path / "data"
    write_sampled_spans(data_root, keep_every=40)
    newest = data_root / "span-20162" / "data.csv"
    newest.write_bytes(b"\xef\xbb\xbf" + newest.read_bytes())  # a byte-order mark: ExampleGen needs a copy
    settings = folders.Settings(output_dir=tmp_path / "outputs", data_root=data_root)
    layout.prepare(settings)
    copy = settings.checked_spans_dir / "span-20162" / "data.csv"
    written = copy.read_bytes()
    record = json.loads(settings.checks_memo_path.read_text())["files"][str(newest.resolve())]["copy"]
    assert not copy.is_symlink() and not written.startswith(b"\xef\xbb\xbf")
    assert record["identity"]["sha256"] == check_memo.identify(copy, written, copy.stat()).sha256

    layout.prepare(settings)  # nothing changed: the copy stays as it was
    assert copy.read_bytes() == written

    stat = copy.stat()
    copy.write_bytes(written.replace(b"Cash", b"Cask"))  # someone edits the copy, keeping its size and time
    os.utime(copy, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    layout.prepare(settings)
    assert copy.read_bytes() == written
