"""The training and evaluation windows ExampleGen reads, laid out from span folders."""

import pytest

from pipeline import configs, input_checks, inputs
from pipeline.input_checks_test import HEADER, write_span


def test_windows_train_on_older_spans_and_evaluate_on_newer(tmp_path):
    spans = {number: [write_span(tmp_path / "raw", number)] for number in (1, 2, 3, 4, 5)}
    written = inputs.write_example_gen_input(
        spans, tmp_path / "egi", training_window_spans=2, evaluation_spans=2
    )
    assert written == [3, 4, 5]

    def linked(span, split):
        return sorted(p.name for p in (tmp_path / "egi" / f"span-{span}" / split).iterdir())

    assert linked(5, "eval") == ["span-4-data.csv", "span-5-data.csv"]
    assert linked(5, "train") == ["span-2-data.csv", "span-3-data.csv"]
    assert linked(3, "train") == ["span-1-data.csv"]
    # Data validation compares each span with the one before it, both alone.
    assert linked(5, "current_span") == ["span-5-data.csv"]
    assert linked(5, "previous_span") == ["span-4-data.csv"]
    assert (tmp_path / "egi" / "span-5" / "eval" / "span-5-data.csv").read_text() == HEADER + "1.0,0.5,A\n"


def test_rewriting_windows_keeps_existing_links(tmp_path):
    spans = {number: [write_span(tmp_path / "raw", number)] for number in (1, 2, 3)}
    inputs.write_example_gen_input(spans, tmp_path / "egi", 1, 1)
    link = tmp_path / "egi" / "span-3" / "train" / "span-2-data.csv"
    before = link.lstat().st_mtime_ns
    inputs.write_example_gen_input(spans, tmp_path / "egi", 1, 1)
    assert link.lstat().st_mtime_ns == before


def test_windows_of_other_data_are_removed(tmp_path):
    old_spans = {number: [write_span(tmp_path / "old", number)] for number in (20161, 20162)}
    inputs.write_example_gen_input(old_spans, tmp_path / "egi", 1, 1)
    new_spans = {number: [write_span(tmp_path / "new", number)] for number in (1, 2, 3)}
    inputs.write_example_gen_input(new_spans, tmp_path / "egi", 1, 1)
    assert sorted(p.name for p in (tmp_path / "egi").iterdir()) == ["span-2", "span-3"]


def test_too_few_spans_is_explained(tmp_path):
    spans = {1: [write_span(tmp_path, 1)]}
    with pytest.raises(input_checks.InputError, match="at least 2"):
        inputs.write_example_gen_input(spans, tmp_path / "egi", training_window_spans=3, evaluation_spans=1)


def test_schema_snapshot_path_changes_with_content(tmp_path):
    schema = tmp_path / "schema.pbtxt"
    schema.write_text("feature { name: 'a' type: INT }")
    first = inputs.snapshot_schema(schema, tmp_path / "snapshots")
    assert inputs.snapshot_schema(schema, tmp_path / "snapshots") == first
    schema.write_text("feature { name: 'a' type: FLOAT }")
    second = inputs.snapshot_schema(schema, tmp_path / "snapshots")
    assert second != first and second.read_text() == schema.read_text()


def test_split_rows_counts_the_rows_of_the_newest_or_the_given_span(tmp_path):
    rows_by_span = {8: 1, 9: 2, 10: 3, 11: 4}  # span-10 and span-11 sort after span-9 by number
    spans = {
        span: [write_span(tmp_path / "raw", span, rows="1.0,0.5,A\n" * rows)]
        for span, rows in rows_by_span.items()
    }
    inputs.write_example_gen_input(spans, tmp_path / "egi", training_window_spans=1, evaluation_spans=2)
    assert inputs.split_rows(tmp_path / "egi", configs.EVAL_SPLIT) == 3 + 4
    assert inputs.split_rows(tmp_path / "egi", configs.TRAIN_SPLIT) == 2
    assert inputs.split_rows(tmp_path / "egi", configs.EVAL_SPLIT, span=10) == 2 + 3
    assert inputs.split_rows(tmp_path / "egi", configs.EVAL_SPLIT, span=99) == 0
    assert inputs.split_rows(tmp_path / "missing", configs.EVAL_SPLIT) == 0
