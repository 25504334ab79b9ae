"""The training reference: the newest span the pipeline read, never the loop's own exports, and its share
of empty values per model input."""

import pytest

from config import folders
from config import pipeline as pipeline_config
from models import features
from monitoring import spans, training_reference


def _write(path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [",".join(features.REQUIRED_COLUMNS)]
    lines += [",".join(str(row.get(c, "1")) for c in features.REQUIRED_COLUMNS) for row in rows]
    path.write_text("\n".join(lines) + "\n")


def test_the_newest_span_with_data_of_its_own_is_the_reference(tmp_path):
    settings = folders.Settings(output_dir=tmp_path / "outputs", data_root=None)
    assert training_reference.newest_span(settings) is None
    assert training_reference.missing_ratios(settings) == {}
    checked = settings.checked_spans_dir
    _write(
        checked / f"{pipeline_config.SPAN_FOLDER_PREFIX}20161" / "data.csv",
        [{}, {"fare": ""}, {}, {"fare": " "}],
    )
    # The newest span holds only trips the loop exported from served traffic: not training data.
    _write(
        checked / f"{pipeline_config.SPAN_FOLDER_PREFIX}20162" / f"{spans.FILE_PREFIX}1.csv", [{"fare": ""}]
    )
    span, files = training_reference.newest_span(settings)
    assert span == f"{pipeline_config.SPAN_FOLDER_PREFIX}20161" and [f.name for f in files] == ["data.csv"]
    ratios = training_reference.missing_ratios(settings)
    assert set(ratios) == set(features.MODEL_INPUTS)
    assert ratios["fare"] == pytest.approx(0.5) and ratios["trip_miles"] == 0
