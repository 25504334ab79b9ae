"""Corrupted data the input checks refuse before anything runs: each case names the file and the fault.

These faults break parsing (or hide from statistics: a span written twice has the distributions of the
original), so they are caught by `inputs.layout` before the pipeline starts, with exit status 2 and
nothing stored touched. tests/e2e/test_corrupted_data.py has the faults the pipeline itself catches.
"""

import shutil

import pytest

from tests.support import corrupted_data
from tests.support.outputs import assert_refused, run_cli, tree_digest
from tests.support.spans import write_sampled_spans


@pytest.fixture(scope="module")
def real_spans(tmp_path_factory):
    data_root = tmp_path_factory.mktemp("real") / "data"
    write_sampled_spans(data_root, keep_every=1)
    return data_root


@pytest.mark.parametrize(
    "corrupt, expected",
    [
        (corrupted_data.missing_column, ["lacks the required column(s) trip_miles"]),
        (corrupted_data.truncated, ["field(s), expected 18", "truncated or garbled"]),
        (corrupted_data.garbled, ["not readable as UTF-8 CSV", "garbled"]),
        (corrupted_data.empty_span, ["has a header but no rows", "the span is empty"]),
        (
            corrupted_data.duplicated_rows,
            ["404 of its 808 rows repeat an earlier row", "line 406 repeats line 2"],
        ),
    ],
    ids=lambda value: getattr(value, "__name__", ""),
)
def test_input_checks_refuse_the_corrupted_span(
    tmp_path, real_spans, output_dir_with_pushed_model, corrupt, expected
):
    data_root = tmp_path / "data"
    shutil.copytree(real_spans, data_root)
    corrupt(data_root)
    before = tree_digest(output_dir_with_pushed_model / "serving_model")

    result = run_cli(output_dir_with_pushed_model, "--data-root", str(data_root))

    assert result.returncode == 2
    assert_refused(
        result,
        output_dir_with_pushed_model,
        before,
        str(corrupted_data.newest_span_file(data_root)),
        *expected,
    )
