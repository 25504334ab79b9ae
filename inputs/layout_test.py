"""What ExampleGen reads, laid out from span folders: checked files (normalised where needed) and windows."""

import csv
import dataclasses
import datetime
import json
import os
import shutil
import time

import pytest

from config import folders
from config import pipeline as pipeline_config
from config import serving as serving_config
from inputs import checks, layout
from models import features
from tests.support.outputs import pushed_version
from tests.support.spans import HEADER, write_csv, write_sampled_spans, write_span


@pytest.fixture(scope="module")
def real_spans(tmp_path_factory):
    """About 750 real taxi rows (every 20th) as eight half-year spans."""
    data_root = tmp_path_factory.mktemp("real") / "data"
    write_sampled_spans(data_root, keep_every=20)
    return data_root


def _rows(path):
    with path.open(newline="", encoding="utf-8-sig") as handle:
        return list(csv.DictReader(handle))


def _file_times(folder):
    """Every file's and link's time (what ExampleGen's cache key holds, with sizes and paths)."""
    return {str(p.relative_to(folder)): p.lstat().st_mtime_ns for p in folder.rglob("*") if not p.is_dir()}


def test_an_export_variant_reaches_example_gen_as_the_same_rows(tmp_path, real_spans):
    data_root = tmp_path / "data"
    shutil.copytree(real_spans, data_root)
    newest = data_root / "span-20162" / "data.csv"
    original = _rows(newest)
    header = list(original[0])
    exported = list(reversed(header)) + ["taxi_id"]
    rows = [[row[c] for c in reversed(header)] + [f"taxi-{i}"] for i, row in enumerate(original)]
    rows[0][exported.index("company")] = "Flash\nCab, Inc."
    write_csv(newest, exported, rows, line_end="\r\n", mark="\ufeff")
    settings = folders.Settings(output_dir=tmp_path / "outputs", data_root=data_root)

    layout.prepare(settings)

    read = (
        settings.example_gen_input / "span-20162" / pipeline_config.CURRENT_SPAN_SPLIT / "span-20162-data.csv"
    )
    assert read.read_text().splitlines()[0] == ",".join(header)  # the older spans' order, no mark
    original[0]["company"] = "Flash Cab, Inc."
    assert _rows(read) == original
    assert not (settings.checked_spans_dir / "span-20162" / "data.csv").is_symlink()  # a normalised copy
    assert (settings.checked_spans_dir / "span-20161" / "data.csv").is_symlink()  # read as it is
    # Beside every file ExampleGen reads, the rows the checks counted in it: ExampleGen must read as many.
    for split in ("train", "eval", pipeline_config.CURRENT_SPAN_SPLIT):
        folder = settings.example_gen_input / "span-20162" / split
        counts = json.loads((folder / pipeline_config.CHECKED_ROWS_FILE).read_text())
        assert counts == {path.name: len(_rows(path)) for path in folder.glob("*.csv")} and counts


def _quoted(path, quoting, header_quoted: bool, every_other: bool = False) -> None:
    """Rewrites `path` with csv's `quoting` for the rows, its header quoted or bare, and with
    `every_other` every second field of each row quoted whatever `quoting` says (mixed quoting)."""
    header, *rows = list(csv.reader(path.open(newline="")))
    with path.open("w", newline="") as handle:
        line = ",".join(f'"{name}"' if header_quoted else name for name in header)
        handle.write(line + "\r\n")
        writer = csv.writer(handle, quoting=quoting, lineterminator="\r\n")
        for row in rows:
            if every_other:
                handle.write(",".join(f'"{v}"' if i % 2 else v for i, v in enumerate(row)) + "\r\n")
            else:
                writer.writerow(row)


def _examples_as_example_gen_reads(files: dict[str, "os.PathLike"], scratch) -> dict[str, list[bytes]]:
    """Name -> the tf.Examples CsvExampleGen's own CSV reading makes of each file (sorted, serialized
    deterministically), in one Beam pipeline."""
    import apache_beam as beam
    from tfx.components.example_gen.csv_example_gen import executor as csv_executor

    outputs = {}
    with beam.Pipeline() as pipeline:
        for name, path in files.items():
            folder = scratch / name
            folder.mkdir(parents=True)
            shutil.copy(path, folder / "data.csv")
            outputs[name] = folder / "examples"
            _ = (
                pipeline
                | f"Read {name}" >> csv_executor._CsvToExample({"input_base": str(folder)}, "*.csv")
                | f"Serialize {name}"
                >> beam.Map(lambda example: example.SerializeToString(deterministic=True))
                | f"Write {name}"
                >> beam.io.WriteToTFRecord(str(outputs[name]), coder=beam.coders.BytesCoder())
            )
    import tensorflow as tf

    return {
        name: sorted(r.numpy() for r in tf.data.TFRecordDataset(sorted(map(str, o.parent.glob("examples*")))))
        for name, o in outputs.items()
    }


def test_quoted_exports_reach_example_gen_as_plain_csv_does(tmp_path, real_spans):
    """A header with quoted names, every field quoted, and quoting mixed within rows: CsvExampleGen splits
    a header line on commas (quotes would become part of the names, and every column read as missing), so
    those files reach it as a normalised copy; its examples are those of the plain file."""
    variants = {
        "header_quoted": (csv.QUOTE_MINIMAL, True, False),
        "every_field_quoted": (csv.QUOTE_ALL, True, False),
        "fields_quoted_header_bare": (csv.QUOTE_ALL, False, False),
        "mixed": (csv.QUOTE_MINIMAL, True, True),
    }
    read = {"plain": real_spans / "span-20162" / "data.csv"}
    for name, (quoting, header_quoted, every_other) in variants.items():
        data_root = tmp_path / name
        shutil.copytree(real_spans, data_root)
        _quoted(data_root / "span-20162" / "data.csv", quoting, header_quoted, every_other)
        settings = folders.Settings(output_dir=tmp_path / f"{name}_outputs", data_root=data_root)
        layout.prepare(settings)
        read[name] = (
            settings.example_gen_input
            / "span-20162"
            / pipeline_config.CURRENT_SPAN_SPLIT
            / "span-20162-data.csv"
        )
        assert read[name].read_text().splitlines()[0] == ",".join(_rows(read["plain"])[0]), name
    # Quoted fields under a bare header are read as they are; a quoted header needs the copy.
    assert (
        tmp_path / "fields_quoted_header_bare_outputs" / "data/checked/spans/span-20162/data.csv"
    ).is_symlink()
    assert not (
        tmp_path / "every_field_quoted_outputs" / "data/checked/spans/span-20162/data.csv"
    ).is_symlink()

    examples = _examples_as_example_gen_reads(read, tmp_path / "example_gen")

    assert len(examples["plain"]) == len(_rows(read["plain"]))
    for name in variants:
        assert examples[name] == examples["plain"], name


def test_a_second_layout_of_unchanged_data_rewrites_nothing(tmp_path, real_spans):
    data_root = tmp_path / "data"
    shutil.copytree(real_spans, data_root)
    newest = data_root / "span-20162" / "data.csv"
    newest.write_bytes(b"\xef\xbb\xbf" + newest.read_bytes())
    settings = folders.Settings(output_dir=tmp_path / "outputs", data_root=data_root)
    layout.prepare(settings)
    before = _file_times(settings.output_dir)
    layout.prepare(settings)
    assert _file_times(settings.output_dir) == before


def test_bad_input_writes_nothing_derived_from_it(tmp_path, real_spans):
    data_root = tmp_path / "data"
    shutil.copytree(real_spans, data_root)
    newest = data_root / "span-20162" / "data.csv"
    lines = newest.read_text().splitlines(keepends=True)
    lines[2] = lines[2].rsplit(",", 1)[0] + "\n"
    newest.write_text("".join(lines))
    settings = folders.Settings(output_dir=tmp_path / "outputs", data_root=data_root)
    with pytest.raises(checks.InputError, match="line 3: 17 field\\(s\\), expected 18"):
        layout.prepare(settings)
    assert not settings.checked_spans_dir.exists() and not settings.example_gen_input.exists()


def test_serving_logs_are_checked_and_laid_out_like_spans(tmp_path, real_spans):
    logs = tmp_path / "logs"
    rows = _rows(real_spans / "span-20162" / "data.csv")
    columns = [c for c in reversed(list(rows[0])) if c != features.TIPS]
    write_csv(logs / "requests.csv", columns, [[r[c] for c in columns] for r in rows], mark="\ufeff")
    settings = folders.Settings(output_dir=tmp_path / "outputs", data_root=real_spans, serving_logs=logs)
    layout.prepare(settings)
    [laid_out] = settings.checked_serving_logs_dir.glob("*.csv")
    assert laid_out.read_text().splitlines()[0] == ",".join(columns)
    assert [dict(r) for r in _rows(laid_out)] == [{c: r[c] for c in columns} for r in rows]


def test_a_request_logs_own_columns_and_shadow_rows_are_left_out_with_one_note(tmp_path, real_spans, capsys):
    """The serving stack's request log, as the folder holds it: several files, each with the log's own
    columns first; a shadowed trip logged twice (stable and shadow) is one trip."""
    logs = tmp_path / "request_log"
    rows = _rows(real_spans / "span-20162" / "data.csv")
    columns = [c for c in rows[0] if c != features.TIPS]
    own = ["request_id", "trip", serving_config.REQUEST_LOG_ROUTE_COLUMN]
    shadowed = 0
    for part in range(3):
        logged = []
        for index, row in enumerate(rows[part::3]):
            for route in ("stable", serving_config.SHADOW_ROUTE) if index % 2 else ("stable",):
                logged.append([f"{part}-{index}", "0", route, *[row[c] for c in columns]])
                shadowed += route == serving_config.SHADOW_ROUTE
        write_csv(logs / f"requests-{part}.csv", own + columns, logged)
    settings = folders.Settings(output_dir=tmp_path / "outputs", data_root=real_spans, serving_logs=logs)

    layout.prepare(settings)

    laid_out = [r for path in sorted(settings.checked_serving_logs_dir.glob("*.csv")) for r in _rows(path)]
    expected = [{c: r[c] for c in columns} for part in range(3) for r in rows[part::3]]
    assert [dict(r) for r in laid_out] == expected and shadowed > 0
    # The rows ExampleGen must read, shadow answers left out.
    counts = json.loads((settings.checked_serving_logs_dir / pipeline_config.CHECKED_ROWS_FILE).read_text())
    assert counts == {f"requests-{part}.csv": len(rows[part::3]) for part in range(3)}
    notes = [line for line in capsys.readouterr().out.splitlines() if line.startswith("note:")]
    assert notes == [
        f"note: 3 files in {logs}: column(s) the pipeline does not use: request_id, trip, route. They are "
        "left out of what ExampleGen reads.",
        f"note: {shadowed} request-log row(s) of a shadow's answers in {logs} are left out: stable answered the "
        "same trips, which are read once.",
    ]


def test_a_request_log_is_read_since_production_was_pushed(tmp_path, real_spans, capsys):
    """Files last written before the push are not read, rows answered before it are left out, and the
    archive is never read; `serving_logs_hours` reads a period instead."""
    logs = tmp_path / "request_log"
    rows = _rows(real_spans / "span-20162" / "data.csv")
    columns = [c for c in rows[0] if c != features.TIPS]
    own = ["request_id", serving_config.REQUEST_LOG_TIME_COLUMN]
    pushed = 1_800_000_000  # production's version: the push's Unix time
    iso = lambda t: datetime.datetime.fromtimestamp(t, tz=datetime.timezone.utc).isoformat()  # noqa: E731

    def log(path, times, first):
        write_csv(
            path,
            own + columns,
            [[str(first + i), iso(t), *[rows[first + i][c] for c in columns]] for i, t in enumerate(times)],
        )
        os.utime(path, (times[-1], times[-1]))

    log(logs / "requests-a.csv", [pushed - 7200, pushed - 3600], 0)  # all before the push
    log(logs / "requests-b.csv", [pushed - 60, pushed + 60, pushed + 120], 2)  # straddles it
    log(logs / "archive" / "requests-old.csv", [pushed + 10], 5)  # archived: never read
    settings = folders.Settings(output_dir=tmp_path / "outputs", data_root=real_spans, serving_logs=logs)
    pushed_version(settings.serving_model_dir, str(pushed), b"a pushed model")

    layout.prepare(settings)

    laid_out = [r for path in sorted(settings.checked_serving_logs_dir.glob("*.csv")) for r in _rows(path)]
    assert [dict(r) for r in laid_out] == [{c: rows[i][c] for c in columns} for i in (3, 4)]
    assert (
        "note: 1 request-log row(s) answered before the window are left out: reading since production (version 1800000000) was pushed"
        in capsys.readouterr().out
    )

    hours = dataclasses.replace(settings, serving_logs_hours=(time.time() - pushed + 7300) / 3600)
    layout.prepare(hours)
    laid_out = [r for path in sorted(settings.checked_serving_logs_dir.glob("*.csv")) for r in _rows(path)]
    assert len(laid_out) == 5


def test_windows_train_on_older_spans_and_evaluate_on_newer(tmp_path):
    spans = {number: [write_span(tmp_path / "raw", number)] for number in (1, 2, 3, 4, 5)}
    written = layout.write_example_gen_input(
        spans, tmp_path / "egi", training_window_spans=2, evaluation_spans=2
    )
    assert written == [3, 4, 5]

    def linked(span, split):
        return sorted(p.name for p in (tmp_path / "egi" / f"span-{span}" / split).glob("*.csv"))

    assert linked(5, "eval") == ["span-4-data.csv", "span-5-data.csv"]
    assert linked(5, "train") == ["span-2-data.csv", "span-3-data.csv"]
    assert linked(3, "train") == ["span-1-data.csv"]
    # Data validation compares each span with the one before it, both alone.
    assert linked(5, "current_span") == ["span-5-data.csv"]
    assert linked(5, "previous_span") == ["span-4-data.csv"]
    assert (tmp_path / "egi" / "span-5" / "eval" / "span-5-data.csv").read_text() == HEADER + "1.0,0.5,A\n"


def test_rewriting_windows_keeps_existing_links(tmp_path):
    spans = {number: [write_span(tmp_path / "raw", number)] for number in (1, 2, 3)}
    layout.write_example_gen_input(spans, tmp_path / "egi", 1, 1)
    link = tmp_path / "egi" / "span-3" / "train" / "span-2-data.csv"
    before = link.lstat().st_mtime_ns
    layout.write_example_gen_input(spans, tmp_path / "egi", 1, 1)
    assert link.lstat().st_mtime_ns == before


def test_windows_of_other_data_are_removed(tmp_path):
    old_spans = {number: [write_span(tmp_path / "old", number)] for number in (20161, 20162)}
    layout.write_example_gen_input(old_spans, tmp_path / "egi", 1, 1)
    new_spans = {number: [write_span(tmp_path / "new", number)] for number in (1, 2, 3)}
    layout.write_example_gen_input(new_spans, tmp_path / "egi", 1, 1)
    assert sorted(p.name for p in (tmp_path / "egi").iterdir()) == ["span-2", "span-3"]


def test_too_few_spans_is_explained(tmp_path):
    spans = {1: [write_span(tmp_path, 1)]}
    with pytest.raises(checks.InputError, match="at least 2"):
        layout.write_example_gen_input(spans, tmp_path / "egi", training_window_spans=3, evaluation_spans=1)


def test_schema_snapshot_path_changes_with_content(tmp_path):
    schema = tmp_path / "schema.pbtxt"
    schema.write_text("feature { name: 'a' type: INT }")
    first = layout.snapshot_schema(schema, tmp_path / "snapshots")
    assert layout.snapshot_schema(schema, tmp_path / "snapshots") == first
    schema.write_text("feature { name: 'a' type: FLOAT }")
    second = layout.snapshot_schema(schema, tmp_path / "snapshots")
    assert second != first and second.read_text() == schema.read_text()


def test_split_rows_counts_the_rows_of_the_newest_or_the_given_span(tmp_path):
    rows_by_span = {8: 1, 9: 2, 10: 3, 11: 4}  # span-10 and span-11 sort after span-9 by number
    spans = {
        span: [write_span(tmp_path / "raw", span, rows="1.0,0.5,A\n" * rows)]
        for span, rows in rows_by_span.items()
    }
    layout.write_example_gen_input(spans, tmp_path / "egi", training_window_spans=1, evaluation_spans=2)
    assert layout.split_rows(tmp_path / "egi", pipeline_config.EVAL_SPLIT) == 3 + 4
    assert layout.split_rows(tmp_path / "egi", pipeline_config.TRAIN_SPLIT) == 2
    assert layout.split_rows(tmp_path / "egi", pipeline_config.EVAL_SPLIT, span=10) == 2 + 3
    assert layout.split_rows(tmp_path / "egi", pipeline_config.EVAL_SPLIT, span=99) == 0
    assert layout.split_rows(tmp_path / "missing", pipeline_config.EVAL_SPLIT) == 0
