"""Batch scoring on a real model and real sample rows: every trip scored once, under a stable id, as the
model itself scores it; bad input is refused naming what is wrong."""

import csv

import numpy as np
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest

from cli import main as cli_main
from clients import raw_examples
from registry import versions
from serving import batch_scoring
from serving.model import LoadedModel
from tests.support import serving_models

SPAN = 20162


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A serving directory with a real model in production, and a span of two CSV files of sample rows
    (some cells empty, as exports leave them)."""
    root = tmp_path_factory.mktemp("scoring")
    versions.write_version(root / "serving", serving_models.train(root / "model"), "100")
    header, rows = serving_models.sample_rows(keep_every=50)
    span = root / "spans" / f"span-{SPAN}"
    span.mkdir(parents=True)
    halves = {"a.csv": rows[: len(rows) // 2], "b.csv": rows[len(rows) // 2 :]}
    for name, part in halves.items():
        with (span / name).open("w", newline="") as handle:
            csv.writer(handle).writerows([header, *part])
    return root, header, halves


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_every_trip_is_scored_once_as_the_model_scores_it(workspace, suffix):
    root, header, halves = workspace
    output = root / f"scores.{suffix}"
    scored = batch_scoring.score_span(root / "spans", SPAN, root / "serving", output)
    table = pq.read_table(output) if suffix == "parquet" else pa_csv.read_csv(output)
    ids = table.column(batch_scoring.TRIP_ID).to_pylist()
    expected_ids = [
        f"{SPAN}/{name}/{row}" for name, part in halves.items() for row in range(1, len(part) + 1)
    ]
    assert scored.trips == len(ids) == len(expected_ids) and ids == expected_ids
    assert scored.version == "100"
    types = raw_examples.column_types()
    model = LoadedModel(root / "serving" / "100")
    expected = model.predict_examples(
        [raw_examples.serialized_example(header, row, types) for part in halves.values() for row in part]
    )
    got = table.column(batch_scoring.PROBABILITY).to_numpy()
    assert np.abs(got - np.asarray(expected)).max() < 1e-5


def test_the_command_names_a_missing_span_and_a_missing_production(workspace, tmp_path, capsys):
    root, _, _ = workspace
    arguments = ["score", "--output-dir", str(tmp_path), "--data-root", str(root / "spans")]
    assert cli_main.main([*arguments, "--span", "20151"]) == 2
    assert (
        f"span-20151 holds no CSV file to score; span folders in {root / 'spans'}: span-{SPAN}"
        in capsys.readouterr().err
    )
    assert cli_main.main([*arguments, "--span", str(SPAN)]) == 2
    assert "holds no model in production to score with" in capsys.readouterr().err


def test_the_command_writes_where_it_says_with_a_progress_line(workspace, capsys):
    root, _, halves = workspace
    output_dir = root / "outputs"
    versions.write_version(output_dir / "serving_model", root / "serving" / "100", "100")
    arguments = [
        "score",
        "--output-dir",
        str(output_dir),
        "--data-root",
        str(root / "spans"),
        "--span",
        str(SPAN),
    ]
    assert cli_main.main([*arguments, "--format", "parquet"]) == 0
    printed = capsys.readouterr()
    trips = sum(len(part) for part in halves.values())
    assert f"scored {trips:,} trips of span {SPAN}" in printed.err
    assert f"Scored {trips:,} trips of span {SPAN} with version 100" in printed.out
    assert pq.read_table(output_dir / "scores" / f"span-{SPAN}.parquet").num_rows == trips


def test_a_file_of_many_blocks_is_scored_whole_under_ids_numbered_across_blocks(
    workspace, tmp_path, monkeypatch
):
    root, _, _ = workspace
    header, rows = serving_models.sample_rows(keep_every=1)
    span = tmp_path / "spans" / f"span-{SPAN}"
    span.mkdir(parents=True)
    with (span / "all.csv").open("w", newline="") as handle:
        csv.writer(handle).writerows([header, *rows])
    monkeypatch.setattr(batch_scoring, "BLOCK_BYTES", 64 << 10)  # the sample's 2 MB in about 30 blocks
    output = tmp_path / "scores.parquet"
    scored = batch_scoring.score_span(tmp_path / "spans", SPAN, root / "serving", output)
    ids = pq.read_table(output).column(batch_scoring.TRIP_ID).to_pylist()
    assert scored.trips == len(rows) and ids == [f"{SPAN}/all.csv/{row}" for row in range(1, len(rows) + 1)]
