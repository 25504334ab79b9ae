"""Shared fixtures: small real taxi data laid out as spans."""

from pathlib import Path

import pytest

from registry import versions
from tests.support.spans import write_sampled_spans


@pytest.fixture
def small_taxi_spans(tmp_path) -> Path:
    """About 2,100 real taxi rows (every 7th), as eight half-year span folders."""
    data_root = tmp_path / "data"
    write_sampled_spans(data_root, keep_every=7)
    return data_root


@pytest.fixture(scope="module")
def small_taxi_spans_module(tmp_path_factory) -> Path:
    """The same rows, shared by the tests of one module (which must not change them)."""
    data_root = tmp_path_factory.mktemp("small") / "data"
    write_sampled_spans(data_root, keep_every=7)
    return data_root


@pytest.fixture
def output_dir_with_pushed_model(tmp_path) -> Path:
    """An output folder holding a previously pushed model, which a failed run must not touch."""
    output_dir = tmp_path / "outputs"
    model = tmp_path / "previously_pushed"
    (model / "variables").mkdir(parents=True)
    (model / "saved_model.pb").write_bytes(b"previously pushed model")
    # Written as a Pusher writes it (with its completion record): a bare folder would be quarantined.
    (output_dir / "serving_model").mkdir(parents=True)
    versions.write_version(output_dir / "serving_model", model, "1700000000")
    return output_dir
