"""The replay's workspace: the sample's spans up to 2016 H1 to train on, 2016 H2 set apart as the trips
to replay, written once."""

import csv

from config import pipeline as pipeline_config
from inputs import taxi_sample
from monitoring import replay_workspace


def test_2016_h2_is_set_apart_to_replay_and_the_rest_is_training_data(tmp_path):
    settings, header, rows = replay_workspace.workspace(tmp_path / "clean", keep_every=10)
    spans = sorted(p.name for p in settings.data_root.iterdir())
    assert spans[-1] == f"{pipeline_config.SPAN_FOLDER_PREFIX}20161"
    assert f"{pipeline_config.SPAN_FOLDER_PREFIX}{replay_workspace.REPLAYED_SPAN}" not in spans
    starts = {taxi_sample.span_of(int(row[header.index("trip_start_timestamp")])) for row in rows}
    assert starts == {replay_workspace.REPLAYED_SPAN} and 20 < len(rows) < 60  # ~400 trips, every 10th
    with (settings.data_root / spans[-1] / "data.csv").open(newline="") as handle:
        assert next(csv.reader(handle)) == header
    # A second call reads what the first wrote (a later keep_every does not rewrite it).
    again = replay_workspace.workspace(tmp_path / "clean", keep_every=1)
    assert again == (settings, header, rows)
